"""The distributed mode: the same jobs, their steps executed by Celery workers on any number of hosts.

Dagster's Celery executor (dagster-celery) sends each step to a RabbitMQ queue; `vital-pipelines worker` processes
take them. Settings live in one YAML file (celery.yaml, or VITAL_CELERY_CONFIG) read by both sides, so the
orchestrator and the workers always agree; secrets come from environment variables named there.

    VITAL_EXECUTOR=celery dagster asset materialize --select ... -m vital_pipelines.definitions
    vital-pipelines worker --name alpha            # on every worker host
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import yaml

from vital_pipelines import config
from vital_pipelines.defs.common.lifecycle import arm_parent_death_signal

EXECUTOR_VARIABLE = "VITAL_EXECUTOR"
CONFIG_VARIABLE = "VITAL_CELERY_CONFIG"
BROKER_VARIABLE = "VITAL_CELERY_BROKER_URL"
EXECUTORS = ("", "multiprocess", "celery")


def executor_choice() -> str:
    """`celery` when the steps go to Celery workers, else `multiprocess` (Dagster's default on one machine)."""
    choice = os.environ.get(EXECUTOR_VARIABLE, "").strip().lower()
    if choice not in EXECUTORS:
        raise config.ConfigurationError(f"{EXECUTOR_VARIABLE}={choice!r} is not an executor this project runs: "
                                        f"use 'celery' (distributed) or leave it unset (one machine).")
    return choice or "multiprocess"


def celery_config_path() -> Path:
    return Path(os.environ.get(CONFIG_VARIABLE) or config.PROJECT_ROOT / "celery.yaml")


def executor_config() -> dict[str, Any]:
    """The executor's configuration as written: environment references (`env: NAME`) stay references, so no
    secret reaches a run's configuration or the event log."""
    path = celery_config_path()
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise config.ConfigurationError(f"cannot read the Celery settings {path}: {error.strerror}") from error
    settings = (document.get("execution") or {}).get("config")
    if not isinstance(settings, dict):
        raise config.ConfigurationError(f"{path} has no `execution: config:` block for the Celery executor")
    return settings


def executor_definition():
    """Dagster's Celery executor with the project's settings; the run's orchestrator records where it runs (host and
    pid), so housekeeping on that host, and only there, can tell a dead orchestrator from one on another machine."""
    import dagster as dg
    from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor
    from dagster._core.execution.retries import RetryMode

    from vital_pipelines.defs.common.housekeeping import orchestrator_tags

    class RecordingCeleryExecutor(CeleryExecutor):
        def execute(self, plan_context, execution_plan):
            plan_context.instance.add_run_tags(plan_context.run_id, orchestrator_tags())
            try:
                yield from super().execute(plan_context, execution_plan)
            finally:
                # The loop ends once no step is in flight. A step that failed on its worker before it started (bad
                # environment, import error) never reports its end, and its pool slot would stay claimed by a
                # finished run, so every later run waiting on that pool would wait forever.
                plan_context.instance.event_log_storage.free_concurrency_slots_for_run(plan_context.run_id)

    @dg.executor(name="celery", config_schema=CELERY_CONFIG, requirements=dg.multiple_process_executor_requirements())
    def celery(init_context):
        settings = init_context.executor_config
        return RecordingCeleryExecutor(broker=settings.get("broker"), backend=settings.get("backend"),
                                       config_source=settings.get("config_source"), include=settings.get("include"),
                                       retries=RetryMode.from_config(settings["retries"]))

    return celery.configured(executor_config(), name="celery")


def _resolved_settings() -> dict[str, Any]:
    """The settings with environment references resolved, as a worker needs them (in memory only)."""
    from dagster._config import post_process_config, validate_config
    from dagster_celery import celery_executor

    config_type = celery_executor.config_schema.config_type
    raw = executor_config()
    validated = validate_config(config_type, raw)
    if not validated.success:
        problems = "; ".join(error.message for error in validated.errors)
        raise config.ConfigurationError(f"{celery_config_path()}: {problems}")
    resolved = post_process_config(config_type, raw)
    if not resolved.success:
        problems = "; ".join(error.message for error in resolved.errors)
        raise config.ConfigurationError(f"{celery_config_path()}: {problems} (is {BROKER_VARIABLE} set?)")
    settings = dict(resolved.value)
    settings.pop("retries", None)
    return settings


def worker_app():
    """The Celery app a worker runs: dagster-celery's step task, with the executor's own settings."""
    from celery.signals import worker_process_init
    from dagster_celery.executor import CeleryExecutor
    from dagster_celery.make_app import make_app
    from dagster_celery.tasks import create_task

    app = make_app(CeleryExecutor.for_cli(**_resolved_settings()).app_args())
    create_task(app)
    # A pool process dies with its worker (kill -9 of the worker, an OOM kill): otherwise it would run on and commit a
    # step the broker has already handed to another worker; its transaction is rolled back instead.
    worker_process_init.connect(lambda **_: arm_parent_death_signal(os.getppid()), weak=False)
    return app


def worker_name(name: str | None) -> str:
    return f"{name or 'vital'}@{socket.gethostname()}"


def run_worker(name: str | None, concurrency: int | None, loglevel: str = "INFO") -> None:
    """Serve steps until stopped (SIGTERM finishes the running steps first; SIGQUIT or kill -9 hands them back)."""
    argv = ["worker", "--hostname", worker_name(name), "--queues", "dagster", "--loglevel", loglevel,
            "--prefetch-multiplier", "1", "--without-gossip", "--without-mingle"]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    worker_app().worker_main(argv)
