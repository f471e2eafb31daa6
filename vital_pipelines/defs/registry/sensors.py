"""A changed workbook in raw/ (by content hash, not modification time) launches a run of just the assets that read
it and everything downstream of them; workbooks that changed together share one run. A registry's content is its
workbook together with its other sources, their mapping files and crosswalks (see loading.sources)."""

import json
from pathlib import Path

import dagster as dg

from vital_pipelines.defs.knowledge.partitions import UNPARTITIONED_ASSETS
from vital_pipelines.defs.registry.resources import RegistrySource
from vital_pipelines.loading.sources import (
    WORKBOOK_ASSETS, NoSource, content_tag, registry_content_sha, registry_sources,
)
from vital_pipelines.loading.tenant_sources import approval_in_flight
from vital_pipelines.spreadsheets.mapping import MappingError

MAX_ATTEMPTS = 3
NEEDS_STEWARD_TAG = "vital/needs_steward"
_WAITING = {dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
            dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING}


def _requests(context: dg.SensorEvaluationContext, source: RegistrySource) -> tuple[dict, dict[str, tuple[str, int]]]:
    """(the new cursor, workbook → (content hash, attempt) to run now). The cursor advances for a workbook only when
    a run of its current content succeeded; a failed run is requested again (up to MAX_ATTEMPTS per content) unless
    it failed on the steward's sheet, which only a new save can fix."""
    cursor = json.loads(context.cursor) if context.cursor else {}
    loaded, requested = dict(cursor.get("loaded", {})), dict(cursor.get("requested", {}))
    wanted: dict[str, tuple[str, int]] = {}
    for name in WORKBOOK_ASSETS:
        sha = registry_content_sha(Path(source.raw_dir), name)
        if sha is None:
            continue
        if loaded.get(name) == sha:
            continue
        runs = context.instance.get_runs(filters=dg.RunsFilter(tags={content_tag(name): sha}), limit=1)
        latest = runs[0] if runs else None
        last_sha, attempt = requested.get(name, (None, 0))
        if latest is not None and latest.status == dg.DagsterRunStatus.SUCCESS:
            loaded[name] = sha
        elif latest is not None and latest.status in _WAITING and last_sha != sha:
            requested[name] = [sha, 1]  # launched elsewhere (the portal's approval): wait for that run
        elif last_sha != sha and approval_in_flight(_tenant_files(Path(source.raw_dir), name)):
            continue  # the portal launches this content's run now; a run of it next tick would only wait behind it
        elif last_sha != sha:
            wanted[name] = (sha, 1)
        elif (latest is not None and latest.status not in _WAITING and attempt < MAX_ATTEMPTS
              and latest.tags.get(NEEDS_STEWARD_TAG) != "true"):
            wanted[name] = (sha, attempt + 1)
    requested.update({name: list(value) for name, value in wanted.items()})
    return {"loaded": loaded, "requested": requested}, wanted


def _tenant_files(raw_dir: Path, workbook: str) -> list[Path]:
    try:
        return [each.path for each in registry_sources(raw_dir, workbook) if each.tenant is not None]
    except (NoSource, MappingError):
        return []  # the run says what is wrong with the sources; the sensor only decides when to start it


# The steward's loop (save, reload, green) should take seconds: the sensor looks every 10 s (hashing raw/ costs
# milliseconds), and its runs execute in one process, since a process per step would cost more than the steps.
SENSOR_INTERVAL_SECONDS = 10
reload_changed_registries = dg.define_asset_job(
    "reload_changed_registries", selection=UNPARTITIONED_ASSETS, executor_def=dg.in_process_executor,
    description="What the raw sensor launches: the registries whose sources changed and what depends on them, "
                "in one process.")


@dg.sensor(job=reload_changed_registries, minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Reloads a registry workbook, and what depends on it, when its content changes; retries a "
                       "run that failed for any reason but the sheet itself.")
def raw_workbooks_changed(context: dg.SensorEvaluationContext, registry_source: RegistrySource):
    cursor, wanted = _requests(context, registry_source)
    if not wanted:
        return dg.SensorResult(skip_reason="no workbook in raw/ changed or needs another attempt",
                               cursor=json.dumps(cursor, sort_keys=True))
    changed = sorted(wanted)
    # One run for everything that changed in this tick: assets shared downstream are materialised once.
    readers = [key for name in changed for key in WORKBOOK_ASSETS[name]]
    selection = dg.AssetSelection.assets(*readers).downstream() & UNPARTITIONED_ASSETS
    keys = sorted(selection.resolve(context.repository_def.asset_graph), key=lambda key: key.to_user_string())
    request = dg.RunRequest(run_key=";".join(f"{name}:{wanted[name][0]}:{wanted[name][1]}" for name in changed),
                            asset_selection=keys,
                            tags={"vital/trigger": ", ".join(f"raw/{name}" for name in changed),
                                  **{content_tag(name): wanted[name][0] for name in changed}})
    return dg.SensorResult(run_requests=[request], cursor=json.dumps(cursor, sort_keys=True))
