"""Benchmark: a second, unchanged load of one workbook against its first load, as the registry assets do them.

    .venv/bin/python bench/unchanged_load.py [--scale 1] [--repeat 3]

For each repeat, a throw-away database gets the org structure, then `personas.xlsx` (generated at `--scale`) is
loaded twice the way the `personas` asset loads it: hash the bytes, ask whether the source and the database are as
the last load left them (`skip_if_unchanged`), and only if not validate and load. The first load reads, validates
and writes; the second must recognise the unchanged source and database and write nothing. Medians are printed as
JSON with the ratio second / first (target ≤ 0.20).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vital_pipelines import config  # noqa: E402
from vital_pipelines.db import connect  # noqa: E402
from vital_pipelines.db.scratch import loader_url, scratch_database  # noqa: E402
from vital_pipelines.files import file_sha256  # noqa: E402
from vital_pipelines.loading.registry import load_workbook, skip_if_unchanged  # noqa: E402
from samples.generate import generate  # noqa: E402
from vital_pipelines.spreadsheets.workbooks import validate_registry_workbook  # noqa: E402


def _asset_like_load(url: str, raw: Path, workbook: str) -> tuple[float, bool]:
    started = time.perf_counter()
    path = raw / workbook
    sha = file_sha256(path)
    with connect(loader_url(url)) as conn:
        skipped = skip_if_unchanged(conn, workbook, source_name=path.name, sha256=sha, policy="quarantine")
        if skipped is None:
            sheets = validate_registry_workbook(path, raw_dir=raw)
            load_workbook(conn, workbook, sheets, source_path=path, source_sha256=sha)
    return time.perf_counter() - started, skipped is not None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    firsts, seconds = [], []
    with tempfile.TemporaryDirectory() as folder:
        raw = Path(folder)
        generate(raw, scale=args.scale)
        for _ in range(args.repeat):
            with scratch_database(config.owner_database_url(), "vital_bench", schema_dir=config.SCHEMA_DIR) as url:
                _asset_like_load(url, raw, "org_structure.xlsx")
                first, first_skipped = _asset_like_load(url, raw, "personas.xlsx")
                second, second_skipped = _asset_like_load(url, raw, "personas.xlsx")
                assert not first_skipped and second_skipped, "the second load must recognise the unchanged source"
                firsts.append(first)
                seconds.append(second)
    first, second = statistics.median(firsts), statistics.median(seconds)
    print(json.dumps({"scale": args.scale, "repeat": args.repeat, "first_load_s": round(first, 3),
                      "unchanged_load_s": round(second, 3), "ratio": round(second / first, 3)}, indent=2))


if __name__ == "__main__":
    main()
