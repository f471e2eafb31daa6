"""Benchmark: what row history (schema 28) costs a load: the ×N personas workbook loaded into a database whose history
triggers are on, and into one whose history triggers are off (the same schema otherwise), in turn.

    .venv/bin/python bench/row_history_cost.py [--scale 100] [--repeat 3]

Each repeat: two throw-away databases get the org structure; then the personas workbook is loaded (every row an
insert: the history's worst case, one entry per row holding the whole row) and loaded again after an edit of every
tenth description (updates: one entry per changed row, changed columns only). Medians in seconds, the ratio with /
without, and the history's size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import openpyxl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vital_pipelines import config  # noqa: E402
from vital_pipelines.db import connect  # noqa: E402
from vital_pipelines.db.scratch import loader_url, scratch_database  # noqa: E402
from vital_pipelines.loading.registry import load_workbook  # noqa: E402
from samples.generate import generate  # noqa: E402
from vital_pipelines.spreadsheets.workbooks import validate_registry_workbook  # noqa: E402


def _load(url: str, raw: Path, workbook: str) -> float:
    sheets = validate_registry_workbook(raw / workbook, raw_dir=raw)
    started = time.perf_counter()
    with connect(loader_url(url)) as conn:
        load_workbook(conn, workbook, sheets, source_path=raw / workbook)
    return time.perf_counter() - started


def _history_off(url: str) -> None:
    with connect(url) as conn:
        for (table,) in conn.execute("select unnest(private.history_tables())").fetchall():
            for event in ("inserted", "updated", "deleted"):
                conn.execute(f'alter table public."{table}" disable trigger "{table}_history_{event}"')
        conn.commit()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {f"{kind}_{history}": [] for kind in ("insert", "update") for history in ("on", "off")}
    size = {}
    with tempfile.TemporaryDirectory() as folder:
        raw = Path(folder)
        generate(raw, scale=args.scale)
        edited = raw / "edited"
        edited.mkdir()
        for name in ("org_structure.xlsx", "personas.xlsx"):
            (edited / name).write_bytes((raw / name).read_bytes())
        book = openpyxl.load_workbook(edited / "personas.xlsx")
        sheet = book["personas"]
        column = next(c.column for c in sheet[1] if c.value == "description")
        rows = 0
        for row in range(2, sheet.max_row + 1, 10):
            sheet.cell(row, column).value = f"Edited description {row}."
            rows += 1
        book.save(edited / "personas.xlsx")
        for _ in range(args.repeat):
            for history in ("on", "off"):
                with scratch_database(config.owner_database_url(), "vital_bench", schema_dir=config.SCHEMA_DIR) as url:
                    if history == "off":
                        _history_off(url)
                    _load(url, raw, "org_structure.xlsx")
                    times[f"insert_{history}"].append(_load(url, raw, "personas.xlsx"))
                    times[f"update_{history}"].append(_load(url, edited, "personas.xlsx"))
                    if history == "on":
                        with connect(url) as conn:
                            size = dict(zip(("entries", "bytes"), conn.execute(
                                "select count(*), pg_total_relation_size('row_history') from row_history").fetchone()))
    medians = {key: round(statistics.median(values), 3) for key, values in times.items()}
    result = {"scale": args.scale, "edited_rows": rows, "medians_s": medians,
              "insert_ratio": round(medians["insert_on"] / medians["insert_off"], 2),
              "update_ratio": round(medians["update_on"] / medians["update_off"], 2), "history": size}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
