"""The distributed mode: the same runs with their steps on two Celery workers (RabbitMQ broker, Dagster's instance in
PostgreSQL), compared with a run in one process; then a worker killed mid-step."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.waiting import wait_until
from vital_pipelines import config
from vital_pipelines.db import connect
from vital_pipelines.db.scratch import loader_url

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

BROKER = os.environ.get("VITAL_CELERY_BROKER_URL") or "pyamqp://guest:guest@127.0.0.1:5672/"
# Tables that record the runs themselves (when, which run, how long), not the data.
BOOKKEEPING = {"pipeline_loads", "audit_log", "row_history"}
DOCUMENTS = 4


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    """A virtual host of its own on the local RabbitMQ, so no other session's workers take these steps."""
    if os.environ.get("VITAL_CELERY_BROKER_URL") or not shutil.which("rabbitmqctl"):
        yield BROKER
        return
    vhost = f"vital_test_{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True, timeout=60)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True,
                   capture_output=True, timeout=60)
    yield f"{BROKER.rstrip('/')}/{vhost}"
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("knowledge")
    for name in sorted(os.listdir(config.KNOWLEDGE_DIR))[:DOCUMENTS]:
        shutil.copy(config.KNOWLEDGE_DIR / name, folder / name)
    return folder


def _storage_url(conninfo: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    return (f"postgresql+psycopg2://{params.get('user', 'vital')}:{params.get('password', '')}@"
            f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/{params['dbname']}")


def _env(url: str, home: Path, corpus: Path, **extra: str) -> dict:
    return {**os.environ, "DATABASE_URL": loader_url(url), "DATABASE_OWNER_URL": url, "DAGSTER_HOME": str(home),
            "VITAL_KNOWLEDGE_DIR": str(corpus), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **extra}


class Cluster:
    """Two named workers and the orchestrator's environment, all sharing one broker and one Dagster instance."""

    def __init__(self, env: dict, logs: Path):
        self.env = env
        self.logs = logs
        self.workers: dict[str, subprocess.Popen] = {}

    def start(self, name: str) -> None:
        log = (self.logs / f"{name}.log").open("w")
        self.workers[name] = subprocess.Popen(
            [sys.executable, "-m", "vital_pipelines.cli", "worker", "--name", name, "--concurrency", "1"],
            env=self.env, cwd=config.PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        assert wait_until(lambda: " ready." in self.log(name), seconds=120, step=0.5), self.log(name)[-3000:]

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def kill(self, name: str) -> None:
        os.killpg(self.workers[name].pid, signal.SIGKILL)
        self.workers[name].wait(timeout=30)

    def stop(self) -> None:
        for process in self.workers.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.workers.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def dagster(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["dagster", *args, "-m", "vital_pipelines.definitions"], env=self.env,
                              cwd=config.PROJECT_ROOT, capture_output=True, text=True, timeout=400)

    def backfill_command(self) -> list[str]:
        bounds = subprocess.run([sys.executable, "-m", "vital_pipelines.defs.knowledge.partitions"], env=self.env,
                                capture_output=True, text=True, timeout=120, check=True).stdout.strip()
        return ["asset", "materialize", "--select", "knowledge_sources,knowledge_chunks", "--partition-range", bounds]


def _state(url: str) -> dict[str, list[str]]:
    """Every row of every table, timestamps left out; ids derived from keys and content must match."""
    state = {}
    with connect(url) as conn:
        tables = [t for (t,) in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'public' "
            "and table_type = 'BASE TABLE' order by 1")]
        for table in tables:
            if table in BOOKKEEPING:
                continue
            columns = [c for c, kind in conn.execute(
                "select column_name, data_type from information_schema.columns where table_schema = 'public' "
                "and table_name = %s order by ordinal_position", (table,)) if not kind.startswith("timestamp")]
            rows = conn.execute(sql.SQL("select {} from {}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table))).fetchall()
            state[table] = sorted(repr(tuple(map(_stable, row))) for row in rows)
    return state


def _stable(value):
    """Random ids (uuid4: the schema's seed rows, a load's id in provenance) differ between any two databases;
    derived ones (uuid5) may not."""
    if isinstance(value, dict):
        return {key: _stable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_stable(item) for item in value]
    if isinstance(value, str) and len(value) == 36:
        try:
            value = uuid.UUID(value)
        except ValueError:
            return value
    return "<random id>" if isinstance(value, uuid.UUID) and value.version == 4 else value


def _differences(one: dict, other: dict) -> str:
    tables = sorted(t for t in one.keys() | other.keys() if one.get(t) != other.get(t))
    return "; ".join(f"{t}: {sorted(set(one.get(t, [])) ^ set(other.get(t, [])))[:2]}" for t in tables)[:3000]


def _workers_of(home: Path, instance_url: str) -> dict[str, str]:
    """Step key -> the Celery worker that executed it, from Dagster's event log (the last attempt wins)."""
    import dagster as dg

    ran = {}
    previous = os.environ.get("DAGSTER_PG_URL")
    os.environ["DAGSTER_PG_URL"] = instance_url
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            for run in instance.get_runs():
                for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
                    metadata = entry.dagster_event.engine_event_data.metadata
                    if "Celery worker" in metadata:
                        ran[entry.step_key] = metadata["Celery worker"].value
    finally:
        if previous is None:
            del os.environ["DAGSTER_PG_URL"]
        else:
            os.environ["DAGSTER_PG_URL"] = previous
    return ran


def _duplicates(url: str) -> int:
    with connect(url) as conn:
        return conn.execute("select count(*) - count(distinct (source_id, chunk_index)) from knowledge_chunks "
                            "").fetchone()[0]


@pytest.fixture(scope="module")
def single_process_state(make_database, corpus, tmp_path_factory) -> dict[str, list[str]]:
    url = make_database()
    home = tmp_path_factory.mktemp("dagster_home_single")
    shutil.copy(config.PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    run = subprocess.run([sys.executable, "-m", "vital_pipelines.run"], env=_env(url, home, corpus),
                         cwd=config.PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    state = _state(url)
    assert len(state["knowledge_chunks"]) > DOCUMENTS and len(state["personas"]) == 335
    return state


@pytest.fixture(scope="module")
def cluster(make_database, broker, corpus, tmp_path_factory) -> Iterator[tuple[Cluster, str, str]]:
    url, instance = make_database(), _storage_url(make_database())
    home = tmp_path_factory.mktemp("dagster_home_pg")
    shutil.copy(config.PROJECT_ROOT / "dagster.postgres.yaml", home / "dagster.yaml")
    env = _env(url, home, corpus, DAGSTER_PG_URL=instance, VITAL_EXECUTOR="celery", VITAL_CELERY_BROKER_URL=broker)
    nodes = Cluster(env, tmp_path_factory.mktemp("worker_logs"))
    try:
        nodes.start("alpha")
        nodes.start("beta")
        yield nodes, url, instance
    finally:
        nodes.stop()


def test_steps_spread_over_two_workers_and_the_database_equals_a_single_process_run(cluster, single_process_state):
    nodes, url, instance = cluster
    refresh = nodes.dagster("job", "execute", "-j", "refresh_everything")
    assert refresh.returncode == 0, refresh.stderr[-4000:]
    backfill = nodes.dagster(*nodes.backfill_command())
    assert backfill.returncode == 0, backfill.stderr[-4000:]

    ran = _workers_of(Path(nodes.env["DAGSTER_HOME"]), instance)
    assert {"database_schema", "personas", "agents", "knowledge_chunks"} <= set(ran), ran
    assert {host.split("@")[0] for host in ran.values()} == {"alpha", "beta"}, ran
    state = _state(url)
    assert state == single_process_state, _differences(state, single_process_state)
    assert _duplicates(url) == 0
    # No secret in what the instance keeps: the broker's and the databases' passwords stay in the environment.
    with psycopg.connect(instance.replace("+psycopg2", "")) as conn:
        stored = " ".join(str(v) for (v,) in conn.execute("select event from event_logs")) + " ".join(
            str(v) for (v,) in conn.execute("select run_body from runs"))
    leak = re.search(r"guest:guest|password\s*=\s*(?!\*\*\*)", stored)
    assert leak is None, stored[max(leak.start() - 400, 0):leak.end() + 100]


def test_a_worker_killed_mid_step_hands_its_step_to_the_other_and_nothing_is_duplicated(cluster,
                                                                                       single_process_state):
    nodes, url, _instance = cluster
    if _state(url)["knowledge_chunks"] != single_process_state["knowledge_chunks"]:
        refresh = nodes.dagster("job", "execute", "-j", "refresh_everything")
        assert refresh.returncode == 0, refresh.stderr[-4000:]
    # Every chunk must be embedded again: the step is long enough to be killed in the middle.
    with connect(url) as conn:
        conn.execute("delete from knowledge_chunks")
    marks = {name: len(nodes.log(name)) for name in nodes.workers}
    backfill = subprocess.Popen(["dagster", *nodes.backfill_command(), "-m", "vital_pipelines.definitions"],
                                env=nodes.env, cwd=config.PROJECT_ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    started = 'STEP_START - Started execution of step "knowledge_chunks"'
    victim = wait_until(lambda: next((name for name in nodes.workers if started in nodes.log(name)[marks[name]:]),
                                     None), seconds=240, step=0.2)
    assert victim, "no worker started knowledge_chunks"
    nodes.kill(victim)
    output, _ = backfill.communicate(timeout=400)
    assert backfill.returncode == 0, output[-4000:]
    survivor = next(name for name in nodes.workers if name != victim)
    assert nodes.log(survivor)[marks[survivor]:].count(started) == 1
    state = _state(url)
    assert state == single_process_state, _differences(state, single_process_state)
    assert _duplicates(url) == 0
