"""Benchmark: the steward's loop — a fixed workbook is saved into raw/, the sensor notices, the run goes green.

    .venv/bin/python bench/steward_loop.py [--repeat 3]

A throw-away database gets the registries, a copy of raw/ and a Dagster home of their own, and `dagster-daemon`
runs against them (the sensor, the run queue, the run launcher: what a deployment runs). Each repeat edits one cell
of `personas.xlsx` (a steward's fix), then measures the seconds from the save to the run that loaded it finishing
green, and how much of that was waiting for the sensor's next tick. Medians are printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402

from tests.workbooks import edit_cells  # noqa: E402
from vital_pipelines import config  # noqa: E402
from vital_pipelines.db import connect  # noqa: E402
from vital_pipelines.db.scratch import loader_url, scratch_database  # noqa: E402
from vital_pipelines.loading.registry import load_workbook  # noqa: E402
from vital_pipelines.spreadsheets.workbooks import validate_registry_workbook  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, \
            scratch_database(config.owner_database_url(), "vital_bench", schema_dir=config.SCHEMA_DIR) as url:
        raw, home = Path(folder) / "raw", Path(folder) / "home"
        shutil.copytree(config.RAW_DIR, raw, ignore=shutil.ignore_patterns("templates"))
        home.mkdir()
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
        for workbook in ("org_structure.xlsx", "personas.xlsx"):
            with connect(loader_url(url)) as conn:
                load_workbook(conn, workbook, validate_registry_workbook(raw / workbook, isolated=False),
                              source_path=raw / workbook)
        env = {**os.environ, "DATABASE_URL": loader_url(url), "DATABASE_OWNER_URL": url, "DAGSTER_HOME": str(home),
               "VITAL_RAW_DIR": str(raw), "VITAL_KNOWLEDGE_DIR": str(Path(folder) / "no_documents"),
               "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
        daemon = subprocess.Popen(["dagster-daemon", "run", "-m", "vital_pipelines.definitions"], env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            _wait_for_quiet(instance)  # the first tick loads everything raw/ holds: not a steward's loop
            loops, waits = [], []
            for n in range(args.repeat):
                known = {r.run_id for r in instance.get_runs()}
                edit_cells(raw / "personas.xlsx", "personas", {"D2": f"Fixed by a steward ({n})"})
                saved = time.time()
                run_id, created = _wait_for_new_run(instance, known)
                waits.append(created - saved)
                status, ended = _wait_for_end(instance, run_id)
                if status != dg.DagsterRunStatus.SUCCESS:
                    raise SystemExit(f"the run {run_id} ended {status}")
                loops.append(ended - saved)
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(timeout=60)
    print(json.dumps({"repeat": args.repeat, "save_to_green_s": round(statistics.median(loops), 1),
                      "waiting_for_the_sensor_s": round(statistics.median(waits), 1),
                      "all_save_to_green_s": [round(x, 1) for x in loops]}, indent=2))


def _wait_for_quiet(instance: dg.DagsterInstance, seconds: float = 300) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        runs = instance.get_runs()
        if runs and all(r.is_finished for r in runs):
            return
        time.sleep(0.5)
    raise SystemExit("the daemon's first runs did not finish")


def _wait_for_new_run(instance: dg.DagsterInstance, known: set[str], seconds: float = 300):
    deadline = time.time() + seconds
    while time.time() < deadline:
        new = [r for r in instance.get_run_records() if r.dagster_run.run_id not in known]
        if new:
            return new[0].dagster_run.run_id, new[0].create_timestamp.timestamp()
        time.sleep(0.2)
    raise SystemExit("the sensor launched no run")


def _wait_for_end(instance: dg.DagsterInstance, run_id: str, seconds: float = 300):
    deadline = time.time() + seconds
    while time.time() < deadline:
        record = instance.get_run_records(dg.RunsFilter(run_ids=[run_id]))[0]
        if record.dagster_run.is_finished:
            return record.dagster_run.status, record.end_time
        time.sleep(0.2)
    raise SystemExit(f"the run {run_id} did not finish")


if __name__ == "__main__":
    main()
