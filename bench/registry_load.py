"""Benchmark: read, validate and load the registry workbooks at ×1, ×10 and ×100 into a throw-away database.

    .venv/bin/python bench/registry_load.py [--scales 1 10 100]

Each scale runs in its own process so peak memory is per scale. The workbooks are read and validated once, then
loaded `--repeat` times (default 3), each time into a fresh throw-away database; load rows/s is rows written
(rows + links) over the seconds spent in `load_workbook`, for the best and the median load. Reports peak RSS of
this process and, separately, of the isolated reader's child. Needs the local server set up by scripts/setup.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vital_pipelines import config  # noqa: E402
from vital_pipelines.db import connect  # noqa: E402
from vital_pipelines.db.scratch import loader_url, scratch_database  # noqa: E402
from vital_pipelines.loading.registry import load_workbook  # noqa: E402
from vital_pipelines.spreadsheets.contracts import WORKBOOKS  # noqa: E402
from samples.generate import generate  # noqa: E402
from vital_pipelines.spreadsheets.safety import inspect_workbook  # noqa: E402
from vital_pipelines.spreadsheets.validation import open_sheets, valid_keys, validate_sheet  # noqa: E402
from vital_pipelines.spreadsheets.workbooks import REGISTRY_WORKBOOKS  # noqa: E402


def _load_all(validated: dict, raw: Path) -> tuple[float, int]:
    """Load every workbook into a fresh database; (seconds spent in the loads, rows written)."""
    with scratch_database(config.owner_database_url(), "vital_bench", schema_dir=config.SCHEMA_DIR) as url:
        seconds, written = 0.0, 0
        for workbook, sheets in validated.items():
            started = time.perf_counter()
            with connect(loader_url(url)) as conn:
                result = load_workbook(conn, workbook, sheets, source_path=raw / workbook)
            seconds += time.perf_counter() - started
            assert result.rejected == 0, result.failures[:3]
            written += sum(c.inserted for c in result.tables.values())
        return seconds, written


def run_scale(scale: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp)
        generate(raw, scale=scale)
        totals = {"rows": 0, "read_s": 0.0, "validate_s": 0.0}
        references: dict[str, set[str]] = {}
        validated = {}
        for workbook in REGISTRY_WORKBOOKS:
            path = raw / workbook
            started = time.perf_counter()
            raws = open_sheets(path, inspect_workbook(path), WORKBOOKS[workbook])
            read_done = time.perf_counter()
            sheets = {}
            for contract in WORKBOOKS[workbook]:
                sheets[contract.sheet] = validate_sheet(raws[contract.sheet], contract, references)
                references.update(valid_keys({contract.sheet: sheets[contract.sheet]}))
            validated[workbook] = sheets
            totals["rows"] += sum(s.total_rows for s in sheets.values())
            totals["read_s"] += read_done - started
            totals["validate_s"] += time.perf_counter() - read_done
        # Each load goes into a database of its own; the VM's noise is why there are several.
        loads = sorted(_load_all(validated, raw) for _ in range(repeat))
    best, median = loads[0], loads[len(loads) // 2]
    totals.update({
        "scale": scale,
        "written_rows": best[1],
        "load_s": best[0],
        "load_median_s": median[0],
        "read_rows_per_s": round(totals["rows"] / totals["read_s"]),
        "validate_rows_per_s": round(totals["rows"] / totals["validate_s"]),
        "load_rows_per_s": round(best[1] / best[0]),
        "load_median_rows_per_s": round(median[1] / median[0]),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "reader_child_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
    })
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--repeat", type=int, default=3, help="loads per scale, each into a fresh database")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_scale(args.one, args.repeat)))
        return
    print(f"{'scale':>5} {'rows':>8} {'read s':>7} {'read r/s':>9} {'valid s':>8} {'valid r/s':>9} {'written':>8} "
          f"{'load s':>7} {'load r/s':>9} {'median r/s':>10} {'peak MiB':>9} {'reader MiB':>10}")
    for scale in args.scales:
        out = subprocess.run([sys.executable, __file__, "--one", str(scale), "--repeat", str(args.repeat)],
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if out.returncode:
            print(out.stderr[-3000:])
            raise SystemExit(1)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['scale']:>5} {r['rows']:>8} {r['read_s']:>7.2f} {r['read_rows_per_s']:>9} {r['validate_s']:>8.2f} "
              f"{r['validate_rows_per_s']:>9} {r['written_rows']:>8} {r['load_s']:>7.2f} {r['load_rows_per_s']:>9} "
              f"{r['load_median_rows_per_s']:>10} {r['peak_rss_mib']:>9} {r['reader_child_peak_rss_mib']:>10}")


if __name__ == "__main__":
    main()
