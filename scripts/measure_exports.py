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
from vital_pipelines.entities import workbook_entities
from vital_pipelines.loading.registry import IntegrityProblem
from vital_pipelines.loading.sources import NoSource, load_source, registry_sources
from vital_pipelines.spreadsheets.mapping import MAPPING_SUFFIX
from vital_pipelines.spreadsheets.validation import SheetRefused
from vital_pipelines.spreadsheets.workbooks import mapped_sheet


def independent_record_count(path: Path, header_row: int) -> int:
    """Records below the header, counted without the pipeline's reader (blank records are not records)."""
    if path.suffix.lower() == ".json":
        return len(json.loads(path.read_text(encoding="utf-8-sig")))
    with path.open(encoding="utf-8-sig", newline="") as handle:
        records = list(csv.reader(handle))
    return sum(1 for r in records[header_row:] if any(cell.strip() for cell in r))


def measure(exports: Path, mappings: Path, on_raw: bool = False) -> list[dict]:
    """Each mapped export loaded through `load_source`, registry by registry in load order (the committed workbooks
    of raw/ first with `on_raw`), into a fresh database; one row of figures per export."""
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
            for workbook in config.RAW_DIR.glob("*.xlsx"):
                shutil.copy(workbook, folder / workbook.name)
        for workbook in workbook_entities():
            try:
                sources = registry_sources(folder, workbook)
            except NoSource:
                continue
            for source in sources:
                with connect(loader_url(url)) as conn:
                    try:
                        result = load_source(conn, source, raw_dir=folder, reload=True, isolated=False)
                    except SheetRefused as refused:
                        rows.append({"file": source.origin, "entity": workbook, "refused": str(refused)})
                        continue
                    except IntegrityProblem as problem:
                        raise SystemExit(f"{source.origin}: {problem}") from None
                if source.export is None:
                    continue
                [account] = result.accounts.values()
                header_row = mapped_sheet(source.export, source.path, isolated=False).header_row
                records = independent_record_count(source.path, header_row)
                rules = Counter(f.rule for f in result.failures)
                warned = Counter(w.rule.removesuffix("_warning") for w in result.warnings)
                vanished = records - account["loaded"] - account["loaded_with_warnings"] - account["quarantined"]
                shown = set()
                for finding in result.failures + result.warnings:
                    if (finding.column, finding.rule) not in shown:
                        shown.add((finding.column, finding.rule))
                        print(f"  {finding.location}: {finding.message}", file=sys.stderr)
                rows.append({"file": source.origin, "entity": source.export.contract.sheet, "rows_in": records,
                             **account, "vanished": vanished, "errors": dict(rules.most_common(4)),
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
