"""Releasing runs whose worker died: a `dagster job execute` killed mid-step leaves its run STARTED and its pool
slots claimed, and without the daemon's run monitoring nothing frees them, so the next run would wait forever.

    python -m vital_pipelines.defs.common.housekeeping      # scripts/run calls this first
"""

from __future__ import annotations

import os

import dagster as dg

IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def _worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    records = instance.get_records_for_run(run_id, limit=5).records
    return next((r.event_log_entry.dagster_event.pid for r in records
                 if r.event_log_entry.dagster_event is not None and r.event_log_entry.dagster_event.pid), None)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every in-progress run whose worker process no longer exists on this machine, and free the pool
    slots it held. Runs whose worker cannot be identified are left alone."""
    released = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=IN_PROGRESS)):
        run = record.dagster_run
        pid = _worker_pid(instance, run.run_id)
        if pid is None or _alive(pid):
            continue
        instance.report_run_failed(run, f"The run worker (pid {pid}) is gone; released by housekeeping.")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    return released


if __name__ == "__main__":
    for run_id in release_abandoned_runs(dg.DagsterInstance.get()):
        print(f"released abandoned run {run_id} and its pool slots")
