"""Crash recovery that never mistakes a process on another machine for a dead one, and the executor choice."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid

import dagster as dg
import pytest

from vital_pipelines.config import ConfigurationError
from vital_pipelines.defs.common.housekeeping import ORCHESTRATOR_TAG, release_abandoned_runs
from vital_pipelines.defs.common.distributed import executor_choice


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _started_run(instance: dg.DagsterInstance, tags: dict) -> str:
    run = instance.add_run(dg.DagsterRun(job_name="refresh_everything", run_id=str(uuid.uuid4()), tags=tags,
                                         status=dg.DagsterRunStatus.STARTED))
    return run.run_id


def test_only_the_orchestrators_own_host_releases_a_run_whose_orchestrator_is_gone(tmp_path):
    dead = _dead_pid()
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        elsewhere = _started_run(instance, {ORCHESTRATOR_TAG: f"another-host.example:{dead}"})
        alive_here = _started_run(instance, {ORCHESTRATOR_TAG: f"{socket.gethostname()}:{subprocess.os.getpid()}"})
        gone_here = _started_run(instance, {ORCHESTRATOR_TAG: f"{socket.gethostname()}:{dead}"})

        assert release_abandoned_runs(instance) == [gone_here]
        assert instance.get_run_by_id(gone_here).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(elsewhere).status == dg.DagsterRunStatus.STARTED
        assert instance.get_run_by_id(alive_here).status == dg.DagsterRunStatus.STARTED


def test_the_executor_is_chosen_by_vital_executor(monkeypatch):
    from vital_pipelines.definitions import defs

    monkeypatch.setenv("VITAL_EXECUTOR", "celery")
    monkeypatch.setenv("VITAL_CELERY_BROKER_URL", "pyamqp://someone:secret@broker.invalid:5672//")
    job = defs().get_repository_def().get_job("refresh_everything")
    assert job.executor_def.name == "celery"
    assert defs().get_repository_def().get_job("reload_changed_registries").executor_def.name == "in_process"

    monkeypatch.setenv("VITAL_EXECUTOR", "kubernetes")
    with pytest.raises(ConfigurationError, match="VITAL_EXECUTOR='kubernetes' is not an executor"):
        executor_choice()
