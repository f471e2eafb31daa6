"""Benchmark: the knowledge backfill (every document partition, one run) in one process against the same backfill on
Celery workers (1 and 2), measured in turn in one run.

    .venv/bin/python bench/distributed_backfill.py [--documents 16] [--repeat 2]

Each measurement starts from a fresh database with the schema applied and Dagster's instance in its own PostgreSQL
database; the workers are started (and their model loaded on first use) before the clock starts, as they would be on
a cluster. On this 2-core machine two workers cannot be faster than one process: the figure is the overhead of the
distributed path (broker round trips, a step per task, the job rebuilt on the worker). Needs RabbitMQ (VITAL_CELERY_
BROKER_URL, else the local server).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import publish  # noqa: E402

from vital_pipelines import config  # noqa: E402
from vital_pipelines.db.scratch import create_database, drop_database, loader_url  # noqa: E402

ROOT = config.PROJECT_ROOT
IN_PROCESS = ["--config-json", '{"execution": {"config": {"in_process": {}}}}']


def _storage_url(conninfo: str) -> str:
    p = psycopg.conninfo.conninfo_to_dict(conninfo)
    return f"postgresql+psycopg2://{p['user']}:{p.get('password', '')}@{p.get('host', 'localhost')}:{p.get('port', 5432)}/{p['dbname']}"


def _dagster(env: dict, *args: str) -> None:
    subprocess.run(["dagster", *args, "-m", "vital_pipelines.definitions"], env=env, cwd=ROOT, check=True,
                   capture_output=True, timeout=1800)


def measure(mode: str, workers: int, corpus: Path, broker: str, scratch: Path) -> float:
    server = config.owner_database_url()
    url, instance = create_database(server, "vital_bench"), create_database(server, "vital_bench_dagster")
    home = Path(tempfile.mkdtemp(dir=scratch))
    shutil.copy(ROOT / "dagster.postgres.yaml", home / "dagster.yaml")
    env = {**os.environ, "DATABASE_URL": loader_url(url), "DATABASE_OWNER_URL": url, "DAGSTER_HOME": str(home),
           "DAGSTER_PG_URL": _storage_url(instance), "VITAL_KNOWLEDGE_DIR": str(corpus), "HF_HUB_OFFLINE": "1"}
    processes = []
    try:
        # The schema and the document registry (which registers one partition per document), not timed.
        _dagster(env, "asset", "materialize", "--select", "database_schema,knowledge_sources", *IN_PROCESS)
        if mode == "celery":
            env.update(VITAL_EXECUTOR="celery", VITAL_CELERY_BROKER_URL=broker)
            for n in range(workers):
                log = home / f"worker{n}.log"
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "vital_pipelines.cli", "worker", "--name", f"w{n}", "--concurrency", "1"],
                    env=env, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True))
            deadline = time.monotonic() + 120
            while not all(" ready." in (home / f"worker{n}.log").read_text() for n in range(workers)):
                if time.monotonic() > deadline:
                    raise RuntimeError("workers did not start")
                time.sleep(0.5)
        keys = sorted(subprocess.run([sys.executable, "-c", (
            "from pathlib import Path; from vital_pipelines.knowledge.documents import discover; "
            f"print(' '.join(discover(Path({str(corpus)!r}))))")], capture_output=True, text=True, check=True,
            env=env).stdout.split())
        selection = ["asset", "materialize", "--select", "knowledge_sources,knowledge_chunks",
                     "--partition-range", f"{keys[0]}...{keys[-1]}"]
        started = time.perf_counter()
        _dagster(env, *selection, *(IN_PROCESS if mode == "in_process" else []))
        return time.perf_counter() - started
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)
        drop_database(url)
        drop_database(instance)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    broker = os.environ.get("VITAL_CELERY_BROKER_URL") or "pyamqp://guest:guest@127.0.0.1:5672/"
    vhost = None
    if shutil.which("rabbitmqctl") and not os.environ.get("VITAL_CELERY_BROKER_URL"):
        vhost = f"vital_bench_{uuid.uuid4().hex[:8]}"
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True,
                       capture_output=True)
        broker = f"{broker.rstrip('/')}/{vhost}"
    scratch = Path(tempfile.mkdtemp(prefix="vital_bench_"))
    corpus = scratch / "knowledge"
    corpus.mkdir()
    for name in sorted(os.listdir(config.KNOWLEDGE_DIR))[: args.documents]:
        shutil.copy(config.KNOWLEDGE_DIR / name, corpus / name)
    runs: dict[str, list[float]] = {"in_process": [], "celery_1_worker": [], "celery_2_workers": []}
    try:
        for _ in range(args.repeat):
            runs["in_process"].append(measure("in_process", 0, corpus, broker, scratch))
            runs["celery_1_worker"].append(measure("celery", 1, corpus, broker, scratch))
            runs["celery_2_workers"].append(measure("celery", 2, corpus, broker, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if vhost:
            subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)
    medians = {mode: round(statistics.median(values), 2) for mode, values in runs.items()}
    publish("distributed_backfill", {
        "documents": args.documents, "repeat": args.repeat, "seconds": runs, "median_seconds": medians,
        "celery_1_worker_over_in_process": round(medians["celery_1_worker"] / medians["in_process"], 2),
        "celery_2_workers_over_in_process": round(medians["celery_2_workers"] / medians["in_process"], 2)})


if __name__ == "__main__":
    main()
