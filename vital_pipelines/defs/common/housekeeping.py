"""Releasing runs whose orchestrator died: a `dagster job execute` killed mid-step leaves its run STARTED and its pool
slots claimed, and without the daemon's run monitoring nothing frees them, so the next run would wait forever.

    python -m vital_pipelines.defs.common.housekeeping      # scripts/run calls this first

A pid means something only on the machine that owns it. A run says where its orchestrator runs by the tag
`vital/orchestrator` (host:pid; the Celery executor and scripts/run set it), and only that host releases it. A run
without the tag is judged by its first event's pid only when the instance's storage is SQLite, which no other machine
shares; with shared storage it is left to run monitoring (dagster-daemon) and to the host that started it.
"""

from __future__ import annotations

import os
import socket

import dagster as dg

IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
ORCHESTRATOR_TAG = "vital/orchestrator"


def orchestrator_tags() -> dict[str, str]:
    """The tag naming this process as a run's orchestrator."""
    return {ORCHESTRATOR_TAG: f"{socket.gethostname()}:{os.getpid()}"}


def _storage_on_this_machine(instance: dg.DagsterInstance) -> bool:
    from dagster._core.storage.runs import SqliteRunStorage

    return isinstance(instance.run_storage, SqliteRunStorage)


def _first_event_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    records = instance.get_records_for_run(run_id, limit=5).records
    return next((r.event_log_entry.dagster_event.pid for r in records
                 if r.event_log_entry.dagster_event is not None and r.event_log_entry.dagster_event.pid), None)


def _local_orchestrator_pid(instance: dg.DagsterInstance, run: dg.DagsterRun) -> int | None:
    """The pid of the run's orchestrator if it runs (or ran) on this machine; None when unknown or elsewhere."""
    tag = run.tags.get(ORCHESTRATOR_TAG)
    if tag:
        host, _, pid = tag.rpartition(":")
        return int(pid) if host == socket.gethostname() and pid.isdigit() else None
    return _first_event_pid(instance, run.run_id) if _storage_on_this_machine(instance) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every in-progress run whose orchestrator ran on this machine and no longer exists, and free the
    pool slots it held. Runs orchestrated elsewhere, or whose orchestrator cannot be identified, are left alone."""
    released = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=IN_PROGRESS)):
        run = record.dagster_run
        pid = _local_orchestrator_pid(instance, run)
        if pid is None or _alive(pid):
            continue
        instance.report_run_failed(run, f"The run's orchestrator (pid {pid} on {socket.gethostname()}) is gone; "
                                        f"released by housekeeping.")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    return released


def release_abandoned_runs_of_this_host() -> list[str]:
    """`release_abandoned_runs` when this process is a `dagster`/`dg` command (not one of its step processes), so
    that a bare `dagster asset materialize` after a killed run does not wait forever for the dead run's pool slot;
    anything else (a test, the library, a step) is left alone, and so is an instance that cannot be opened."""
    import multiprocessing
    import sys

    if multiprocessing.parent_process() is not None or os.path.basename(sys.argv[0] or "") not in ("dagster", "dg"):
        return []
    try:
        instance = dg.DagsterInstance.get()
    except Exception:  # no DAGSTER_HOME, or a storage that is not there yet: nothing of ours to release
        return []
    released = release_abandoned_runs(instance)
    for run_id in released:
        print(f"released abandoned run {run_id} and its pool slots", file=sys.stderr)
    return released


if __name__ == "__main__":
    for run_id in release_abandoned_runs(dg.DagsterInstance.get()):
        print(f"released abandoned run {run_id} and its pool slots")
