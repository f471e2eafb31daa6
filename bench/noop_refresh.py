"""Benchmark: a refresh in which nothing changed (`scripts/run`, the README's main command) against Dagster's own
floor (a trivial graph of two assets through `dagster asset materialize`), measured in turn in one run.

    .venv/bin/python bench/noop_refresh.py [--repeat 3]

`scripts/run` is run once first so that the database holds everything (that run is not counted). Then, `--repeat`
times, the floor and the no-op refresh are timed one after the other (wall seconds, and the CPU seconds of the
child processes); the medians and their ratio are printed as JSON, with what the no-op runs did: rows inserted or
updated, chunks embedded, and whether the model's weights were loaded (all must be 0 / no).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TRIVIAL = '''
import dagster as dg

@dg.asset
def first():
    return 1

@dg.asset
def second(first):
    return first + 1

defs = dg.Definitions(assets=[first, second])
'''


def _timed(command: list[str], env: dict, cwd: Path) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def _work_done(summary: str) -> dict:
    written = sum(int(n) for n in re.findall(r"(\d+) inserted", summary)) + \
        sum(int(n) for n in re.findall(r"(\d+) updated", summary))
    embedded = sum(int(n) for n in re.findall(r"(\d+) chunk\(s\) embedded", summary)) + \
        sum(int(n) for n in re.findall(r"(\d+) profile\(s\) embedded", summary))
    return {"rows_written": written, "vectors_embedded": embedded,
            "model_loaded": "embedding model weights loaded: yes" in summary}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    run = [str(ROOT / "scripts" / "run")]
    _timed(run, env, ROOT)  # everything loaded: what follows is a refresh with nothing to do
    floors, noops, work = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        module = Path(folder) / "trivial_graph.py"
        module.write_text(TRIVIAL)
        floor_env = {**env, "DAGSTER_HOME": str(Path(folder) / "home")}
        (Path(folder) / "home").mkdir()
        (Path(folder) / "home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        floor = ["dagster", "asset", "materialize", "-f", str(module), "--select", "*"]
        for _ in range(args.repeat):
            floors.append(_timed(floor, floor_env, Path(folder))[:2])
            wall, cpu, out = _timed(run, env, ROOT)
            noops.append((wall, cpu))
            work.append(_work_done(out))
    floor_wall = statistics.median(w for w, _ in floors)
    noop_wall = statistics.median(w for w, _ in noops)
    print(json.dumps({
        "repeat": args.repeat,
        "dagster_floor_wall_s": round(floor_wall, 2),
        "dagster_floor_cpu_s": round(statistics.median(c for _, c in floors), 2),
        "noop_refresh_wall_s": round(noop_wall, 2),
        "noop_refresh_cpu_s": round(statistics.median(c for _, c in noops), 2),
        "ratio_wall": round(noop_wall / floor_wall, 2),
        "noop_work": work,
    }, indent=2))


if __name__ == "__main__":
    sys.exit(main())
