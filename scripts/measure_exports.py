"""Load a folder of mapped exports into a throw-away database and account for every source row.

    .venv/bin/python scripts/measure_exports.py [--on-raw] EXPORTS_DIR [MAPPINGS_DIR]

Each `NAME.mapping.yaml` (in MAPPINGS_DIR, default EXPORTS_DIR) is paired with its export, both are copied into a
scratch folder, and every source is validated against what the database already holds and loaded in its own
transaction, parents first (functions, departments, roles, responsibilities, personas, agents, JTBDs), as the
Dagster assets do. The table printed (Markdown) counts, per file: the records in the export as Python's csv/json
modules read them, then loaded, loaded with warnings, quarantined, and vanished (records that are in none of the
three: always 0, or the script fails). With `--on-raw`, the committed registries of raw/ are loaded first, as the
main job would (the exports then meet the platform's own org structure). The scratch database is dropped at the end.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

from vital_pipelines import config
from vital_pipelines.db import connect
from vital_pipelines.db.scratch import loader_url, scratch_database
from vital_pipelines.loading.registry import IntegrityProblem, database_references, load_workbook
from vital_pipelines.spreadsheets.mapping import MAPPING_SUFFIX, apply_mapping, read_source
from vital_pipelines.spreadsheets.validation import SheetRefused
from vital_pipelines.spreadsheets.workbooks import mapped_sources, validate_mapped_source, validate_registry_workbook


def independent_record_count(path: Path, header_row: int) -> int:
    """Records below the header, counted without the pipeline's reader (blank records are not records)."""
    if path.suffix.lower() == ".json":
        return len(json.loads(path.read_text(encoding="utf-8-sig")))
    with path.open(encoding="utf-8-sig", newline="") as handle:
        records = list(csv.reader(handle))
    return sum(1 for r in records[header_row:] if any(cell.strip() for cell in r))


def measure(exports: Path, mappings: Path, on_raw: bool = False) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as scratch_dir, \
            scratch_database(config.owner_database_url(), "vital_exports", schema_dir=config.SCHEMA_DIR) as url:
        folder = Path(scratch_dir)
        for mapping in sorted(mappings.glob(f"*{MAPPING_SUFFIX}")):
            shutil.copy(mapping, folder / mapping.name)
            stem = mapping.name[: -len(MAPPING_SUFFIX)]
            for export in exports.glob(f"{stem}.*"):
                if not export.name.endswith(MAPPING_SUFFIX):
                    shutil.copy(export, folder / export.name)
        if on_raw:
            for workbook in ("org_structure.xlsx", "personas.xlsx", "agents.xlsx", "jtbds.xlsx"):
                sheets = validate_registry_workbook(config.RAW_DIR / workbook, isolated=False)
                with connect(loader_url(url)) as conn:
                    load_workbook(conn, workbook, sheets, source_path=config.RAW_DIR / workbook)
        for source in mapped_sources(folder):
            with connect(loader_url(url)) as conn:
                try:
                    sheets = validate_mapped_source(source, raw_dir=folder, references=database_references(conn),
                                                    isolated=False)
                except SheetRefused as refused:
                    rows.append({"file": source.path.name, "entity": source.contract.sheet, "refused": str(refused)})
                    continue
                try:
                    result = load_workbook(conn, source.workbook, sheets, source_path=source.path,
                                           source_name=source.path.name)
                except IntegrityProblem as problem:
                    raise SystemExit(f"{source.path.name}: {problem}") from None
            [account] = result.accounts.values()
            header_row = apply_mapping(read_source(source.path, source.mapping.sheet, source.mapping.entity,
                                                   isolated=False), source.mapping, source.mapping_file.name).header_row
            records = independent_record_count(source.path, header_row)
            rules = Counter(f.rule for f in result.failures)
            warned = Counter(w.rule.removesuffix("_warning") for w in result.warnings)
            vanished = records - account["loaded"] - account["loaded_with_warnings"] - account["quarantined"]
            shown = set()
            for finding in result.failures + result.warnings:
                if (finding.column, finding.rule) not in shown:
                    shown.add((finding.column, finding.rule))
                    print(f"  {finding.location}: {finding.message}", file=sys.stderr)
            rows.append({"file": source.path.name, "entity": source.contract.sheet, "rows_in": records, **account,
                         "vanished": vanished, "errors": dict(rules.most_common(4)),
                         "warnings": dict(warned.most_common(4))})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| file | entity | rows in | loaded | loaded with warnings | quarantined | vanished | main errors | "
             "main warnings |", "|---|---|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        if "refused" in r:
            lines.append(f"| {r['file']} | {r['entity']} | refused: {r['refused']} |")
            continue
        errors = ", ".join(f"{k} {v}" for k, v in r["errors"].items()) or "–"
        warnings = ", ".join(f"{k} {v}" for k, v in r["warnings"].items()) or "–"
        lines.append(f"| {r['file']} | {r['entity']} | {r['rows_in']} | {r['loaded']} | {r['loaded_with_warnings']} "
                     f"| {r['quarantined']} | {r['vanished']} | {errors} | {warnings} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    on_raw = "--on-raw" in argv
    argv = [a for a in argv if a != "--on-raw"]
    if not argv or len(argv) > 2:
        print(__doc__, file=sys.stderr)
        return 2
    exports = Path(argv[0])
    rows = measure(exports, Path(argv[1]) if len(argv) > 1 else exports, on_raw)
    print(markdown(rows))
    return 1 if any(r.get("vanished") or "refused" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
