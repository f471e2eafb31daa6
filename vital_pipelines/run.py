"""The main job from a terminal: every asset materialised in this one process, and a summary of what happened.

    python -m vital_pipelines.run [--verbose]        # scripts/run calls this after its set-up

Two runs are recorded in the Dagster instance (DAGSTER_HOME), as the UI and the schedule record them: the
`refresh_everything` job (schema, registries, document registry, agent vectors), then one run over every knowledge
document partition. Both execute in-process: the steps are cheap when nothing changed, and a process per step would
cost more than the work (each one imports the whole code location). The summary says, per asset, the rows
inserted / updated / unchanged / soft-deleted / rejected / warned, the chunks embedded and kept, and the time; the
Dagster event stream is shown with `--verbose` and always kept in the instance for the UI.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Iterable

import dagster as dg

LOG_LEVEL_QUIET = "WARNING"


def _run_config(verbose: bool) -> dict:
    return {} if verbose else {"loggers": {"console": {"config": {"log_level": LOG_LEVEL_QUIET}}}}


def _value(metadata: dict, key: str):
    entry = metadata.get(key)
    return getattr(entry, "value", entry)


def step_seconds(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    """Seconds from start to end of each step of a run, from its event log."""
    started: dict[str, float] = {}
    took: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in started:
            took[event.step_key] = entry.timestamp - started[event.step_key]
    return took


SUMMED = ("chunks_added", "chunks_kept", "chunks_removed", "chunks_embedded", "documents_failed")


def _summed(materializations: list[dg.AssetMaterialization]) -> dict:
    """The counts of one run's partitions added up (each partition's materialisation describes its own document)."""
    return {key: sum(_value(m.metadata, key) or 0 for m in materializations) for key in SUMMED}


def describe(materialization: dg.AssetMaterialization, metadata: dict | None = None) -> str:
    """One line of what a materialisation did, from its metadata (or from `metadata`, e.g. a run's totals)."""
    meta = metadata if metadata is not None else materialization.metadata
    if "chunks_embedded" in meta:
        return (f"{_value(meta, 'chunks_embedded')} chunk(s) embedded, {_value(meta, 'chunks_kept')} kept, "
                f"{_value(meta, 'chunks_removed')} removed, {_value(meta, 'documents_failed')} document(s) failed")
    if "embedded" in meta:
        return f"{_value(meta, 'embedded')} profile(s) embedded, {_value(meta, 'unchanged')} unchanged"
    if "applied" in meta:
        return f"{_value(meta, 'applied')} phase file(s) applied, {_value(meta, 'unchanged')} unchanged"
    if "inserted" in meta:
        tables = _value(meta, "tables") or {}
        table = tables.get(materialization.asset_key.to_user_string())
        counts = table if table else {"inserted": _value(meta, "inserted"), "updated": _value(meta, "updated"),
                                      "unchanged": _value(meta, "unchanged"), "deleted": _value(meta, "soft_deleted")}
        line = (f"{counts['inserted']} inserted, {counts['updated']} updated, {counts['unchanged']} unchanged, "
                f"{counts['deleted']} soft-deleted; {_value(meta, 'rejected')} rejected, "
                f"{_value(meta, 'warnings')} warning(s) in the source")
        if _value(meta, "skipped"):
            line += " (source and database as last loaded: not read again)"
        return line
    if "documents" in meta:
        return f"{_value(meta, 'documents')} document(s) registered"
    return ", ".join(f"{k} {_value(meta, k)}" for k in list(meta)[:4] if not k.startswith("dagster/"))


def summary(instance: dg.DagsterInstance, results: Iterable[dg.ExecuteInProcessResult], seconds: float) -> str:
    lines = []
    ok = True
    for result in results:
        ok = ok and result.success
        took = step_seconds(instance, result.run_id)
        partitions: dict[str, list[dg.AssetMaterialization]] = {}
        for event in result.all_events:
            if event.event_type_value == "ASSET_MATERIALIZATION":
                materialization = event.event_specific_data.materialization
                name = materialization.asset_key.to_user_string()
                if materialization.partition is not None:
                    # one line for a run over many partitions, with their counts added up (below)
                    partitions.setdefault(name, []).append(materialization)
                    if len(partitions[name]) > 1:
                        continue
                step = f"{took[event.step_key]:5.1f} s" if event.step_key in took else "       "
                lines.append(f"  {name:<26} {step}  {describe(materialization)}")
            elif event.event_type_value == "ASSET_CHECK_EVALUATION":
                evaluation = event.event_specific_data
                if not evaluation.passed:
                    lines.append(f"  check {evaluation.check_name:<22} FAILED: "
                                 f"{(evaluation.description or '').splitlines()[0][:160]}")
            elif event.event_type_value == "STEP_FAILURE":
                data = event.event_specific_data
                reason = (data.user_failure_data.description if data.user_failure_data else None) or \
                    (data.error.message.strip().splitlines()[-1] if data.error else "failed")
                lines.append(f"  step {event.step_key:<23} FAILED: {reason[:300]}")
        for name, materializations in partitions.items():
            index = next(i for i, line in enumerate(lines) if line.startswith(f"  {name} "))
            head = lines[index][: len(f"  {name:<26} ") + 9]
            lines[index] = (f"{head}{describe(materializations[0], _summed(materializations))} "
                            f"({len(materializations)} partitions, one run)")
    lines.append(f"{'done' if ok else 'FAILED'} in {seconds:.1f} s; the full event log is in the Dagster UI (dg dev)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vital_pipelines.run", description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="show Dagster's event stream as the runs go")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    from vital_pipelines.defs.common.housekeeping import orchestrator_tags, release_abandoned_runs
    from vital_pipelines.defs.knowledge.partitions import document_range, range_tags
    from vital_pipelines.definitions import defs

    progress = logging.getLogger("vital_pipelines.progress")
    progress.setLevel(logging.INFO)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("  … %(message)s"))
    progress.addHandler(handler)
    instance = dg.DagsterInstance.get()
    for run_id in release_abandoned_runs(instance):
        print(f"released abandoned run {run_id} and its pool slots")
    repository = defs().get_repository_def()
    run_config = _run_config(args.verbose)
    results = [repository.get_job("refresh_everything").execute_in_process(
        instance=instance, run_config=run_config, raise_on_error=False, tags=orchestrator_tags())]
    bounds = document_range(instance)
    if results[0].success and bounds:
        results.append(repository.get_job("embed_knowledge").execute_in_process(
            instance=instance, run_config=run_config, raise_on_error=False,
            tags={**range_tags(*bounds), **orchestrator_tags()}))
    from vital_pipelines.defs.knowledge.resources import models_loaded

    print(summary(instance, results, time.perf_counter() - started))
    print(f"embedding model weights loaded: {'yes' if models_loaded() else 'no (nothing to embed)'}")
    return 0 if all(r.success for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
