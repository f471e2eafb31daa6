"""Benchmark: reading and validating the personas workbook against a bare calamine read of the same file.

    .venv/bin/python bench/read_validate.py [--scale 100] [--repeat 5]

In turn, `--repeat` times: the bare library call (`pl.read_excel(..., engine="calamine")`, the sheet typed by
polars, nothing checked) and the project's `validate_registry_workbook` (zip and XML inspection, the isolated
reader, contracts, references to the org structure beside it). Medians, rows/s, the project's share of calamine's
speed (target ≥ 0.50) and each side's peak memory (the reader's child process separately: an upper bound, since a forked child's
ru_maxrss starts at its parent's size) are printed as JSON.
Each side runs in a fresh interpreter so that one's peak memory and caches do not count for the other.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _results import publish  # noqa: E402

_SIDES = {
    "calamine": """
import polars as pl
frame = pl.read_excel(PATH, engine="calamine", sheet_name="personas")
rows = frame.height
""",
    "project": """
from vital_pipelines.spreadsheets.workbooks import validate_registry_workbook
result = validate_registry_workbook(PATH)["personas"]
rows = result.total_rows
""",
}

_HARNESS = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
PATH = {path!r}
{imports}
started = time.perf_counter()
{body}
seconds = time.perf_counter() - started
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so it would report the forking parent's size.
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({{"seconds": seconds, "rows": rows, "peak_mib": peak / 1024,
                  "child_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}}))
"""

# Imports are paid once per process by both sides, not per file: they are loaded before the clock starts.
_IMPORTS = {"calamine": "import polars, fastexcel",
            "project": "import polars, fastexcel, pandera.polars\n"
                       "import vital_pipelines.spreadsheets.workbooks, vital_pipelines.spreadsheets.reader"}


def _once(side: str, path: Path) -> dict:
    script = _HARNESS.format(root=str(ROOT), path=str(path), imports=_IMPORTS[side], body=_SIDES[side])
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    from samples.generate import generate

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        raw = Path(folder)
        generate(raw, scale=args.scale)
        path = raw / "personas.xlsx"
        runs: dict[str, list[dict]] = {side: [] for side in _SIDES}
        for _ in range(args.repeat):
            for side in _SIDES:
                runs[side].append(_once(side, path))
        rows = {side: runs[side][0]["rows"] for side in _SIDES}
        assert rows["calamine"] == rows["project"], rows
        medians = {side: statistics.median(r["seconds"] for r in runs[side]) for side in _SIDES}
        publish("read_validate", {
            "scale": args.scale, "rows": rows["project"], "repeat": args.repeat,
            "file_mib": round(path.stat().st_size / 2**20, 2),
            **{f"{side}_s": round(medians[side], 3) for side in _SIDES},
            **{f"{side}_rows_per_s": round(rows[side] / medians[side]) for side in _SIDES},
            "project_share_of_calamine_speed": round(medians["calamine"] / medians["project"], 2),
            **{f"{side}_peak_mib": round(max(r["peak_mib"] for r in runs[side]), 1) for side in _SIDES},
            "project_reader_child_peak_mib": round(max(r["child_peak_mib"] for r in runs["project"]), 1),
        })


if __name__ == "__main__":
    main()
