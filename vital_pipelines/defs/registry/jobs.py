"""Taking a registry load back from the UI or the launchpad: the `undo_load` job, one run per undo."""

import dagster as dg

from vital_pipelines.defs.common.policies import database_errors
from vital_pipelines.defs.common.resources import PostgresResource
from vital_pipelines.loading import history


class UndoConfig(dg.Config):
    load_id: str = ""
    """The load to take back (`vital-pipelines loads list`); or leave empty and name `latest`."""
    latest: str = ""
    """Take back the newest load of this target (e.g. `personas`) that is not undone yet."""
    dry_run: bool = False
    """Only say what would change."""


@dg.op(pool="registry", description="Restore exactly what one registry load changed, as a load of its own "
                                    "(see vital_pipelines/loading/history.py).")
def undo_registry_load(context: dg.OpExecutionContext, config: UndoConfig,
                       postgres: PostgresResource) -> dg.Output[int]:
    if bool(config.load_id) == bool(config.latest):
        raise dg.Failure("Name either `load_id` or `latest` (a target such as personas), not both and not neither.",
                         allow_retries=False)
    with database_errors(context, postgres), postgres.get_connection() as conn:
        try:
            load = config.load_id or history.latest_load(conn, config.latest).load_id
            result = history.undo_load(conn, load, dry_run=config.dry_run, run_id=context.run_id)
        except history.UndoRefused as refusal:
            raise dg.Failure(str(refusal), allow_retries=False) from None
    changes = {f"{table}: {action}": count for (table, action), count in sorted(result.changes.items())}
    context.log.info("undo of load %s: %s %d rows", load, "would change" if config.dry_run else "changed", result.total)
    return dg.Output(result.total, metadata={"load_id": load, "undo_load_id": result.undo_load_id or "",
                                             "dry_run": config.dry_run, "rows": result.total, "changes": changes})


@dg.job(description="Take back one registry load (config: load_id, or latest: a target such as personas; dry_run).")
def undo_load():
    undo_registry_load()
