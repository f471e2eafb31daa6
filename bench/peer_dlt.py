"""Benchmark: end to end (read, validate, load) against the peer, dlt's `merge`, on the same personas workbook.

    .venv/bin/python -m pip install -e '.[dev,bench]'    # dlt is only a benchmark dependency
    .venv/bin/python bench/peer_dlt.py [--scale 100] [--repeat 3]

Per repeat, one throw-away database with the org structure loaded. The peer: polars reads the sheet with calamine,
dlt merges it on `persona_key` into its own schema (first load, then the same file again). The project: the way the
`personas` asset does it, `load_source` — hash, skip if unchanged, and if needed validate (contracts, references) and load
(first load, then the same file again, which is recognised as unchanged; and once more with the check bypassed,
i.e. a full read, validate and upsert that changes nothing). Medians of seconds and rows/s are printed as JSON.
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

import polars as pl  # noqa: E402

from vital_pipelines import config  # noqa: E402
from vital_pipelines.db import connect  # noqa: E402
from vital_pipelines.db.scratch import loader_url, scratch_database  # noqa: E402
from vital_pipelines.loading.sources import Source, load_source  # noqa: E402
from samples.generate import generate  # noqa: E402


def _project(url: str, raw: Path, *, check_unchanged: bool = True) -> float:
    """The way every surface loads a source: `load_source` (hash, skip if unchanged, else validate against the folder
    and the database, and load)."""
    started = time.perf_counter()
    with connect(loader_url(url)) as conn:
        load_source(conn, Source(raw / "personas.xlsx", "personas.xlsx"), raw_dir=raw, reload=not check_unchanged)
    return time.perf_counter() - started


def _dlt(url: str, raw: Path, pipeline_dir: Path) -> float:
    import dlt
    from psycopg import conninfo

    parts = conninfo.conninfo_to_dict(url)
    uri = (f"postgresql://{parts['user']}:{parts.get('password', '')}@{parts.get('host', 'localhost')}:"
           f"{parts.get('port', 5432)}/{parts['dbname']}")
    started = time.perf_counter()
    frame = pl.read_excel(raw / "personas.xlsx", engine="calamine", sheet_name="personas")
    pipeline = dlt.pipeline(pipeline_name="bench_personas", pipelines_dir=str(pipeline_dir),
                            destination=dlt.destinations.postgres(credentials=uri), dataset_name="dlt_bench")
    pipeline.run(frame.to_arrow(), table_name="personas", write_disposition="merge", primary_key="persona_key")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {k: [] for k in ("dlt_first", "dlt_again", "project_first", "project_again",
                                                     "project_again_full")}
    with tempfile.TemporaryDirectory() as folder:
        raw = Path(folder) / "raw"
        generate(raw, scale=args.scale)
        rows = pl.read_excel(raw / "personas.xlsx", engine="calamine", sheet_name="personas").height
        for n in range(args.repeat):
            with scratch_database(config.owner_database_url(), "vital_bench", schema_dir=config.SCHEMA_DIR) as url:
                org = raw / "org_structure.xlsx"
                with connect(loader_url(url)) as conn:
                    load_source(conn, Source(org, "org_structure.xlsx"), raw_dir=raw)
                pipelines = Path(folder) / f"dlt_{n}"
                times["dlt_first"].append(_dlt(url, raw, pipelines))
                times["dlt_again"].append(_dlt(url, raw, pipelines))
                times["project_first"].append(_project(url, raw))
                times["project_again"].append(_project(url, raw))
                times["project_again_full"].append(_project(url, raw, check_unchanged=False))
    medians = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({
        "scale": args.scale, "rows": rows, "repeat": args.repeat,
        **{f"{k}_s": round(v, 3) for k, v in medians.items()},
        **{f"{k}_rows_per_s": round(rows / v) for k, v in medians.items()},
        "project_vs_dlt_first": round(medians["dlt_first"] / medians["project_first"], 2),
        "project_vs_dlt_again": round(medians["dlt_again"] / medians["project_again"], 2),
    }, indent=2))


if __name__ == "__main__":
    main()
