"""Blank template workbooks and the documented sheet formats, both generated from the contracts."""

from __future__ import annotations

import datetime
from pathlib import Path

import xlsxwriter

from vital_pipelines.spreadsheets.contracts import CONTRACTS, WORKBOOKS, SheetContract

# Every generated workbook says it was made at this moment, so the same declarations give the same bytes.
GENERATED_AT = datetime.datetime(2025, 11, 13, tzinfo=datetime.timezone.utc)

_KIND_WORDS = {"text": "text", "key": "code / key", "int": "whole number", "float": "number", "bool": "yes/no",
               "list": "list (`a; b`, one per line, `{a,b}` or a JSON array)", "enum": "one of a fixed list",
               "json": "JSON object"}


def columns(contract: SheetContract) -> list[dict]:
    """Per column: name, meaning, type, required, allowed values, example, aliases, references."""
    described = []
    for name, column in contract.schema.columns.items():
        meta = column.metadata or {}
        allowed = next((c.statistics.get("allowed_values") for c in column.checks if c.name == "isin"), None)
        described.append({
            "name": name, "meaning": column.description or "", "type": _KIND_WORDS[meta.get("kind", "text")],
            "required": not column.nullable and meta.get("default") is None,
            "allowed": list(allowed) if allowed else None, "example": meta.get("example", ""),
            "aliases": meta.get("aliases", []), "default": meta.get("default"), "references": meta.get("references"),
            "derive": meta.get("derive"),
        })
    return described


def format_markdown() -> str:
    """The documented format of every registry sheet."""
    lines = ["# Registry workbook formats", "",
             "Generated from the entity catalog, `vital_pipelines/entities/catalog.py`, which the contracts, the loads "
             "and the Dagster assets also read (`vital-pipelines generate --docs` writes this file, "
             "`vital-pipelines generate --templates` the matching blank workbooks). Each registry workbook is "
             "loaded after the workbooks it references.", "",
             "Headers match case-, space- and punctuation-blind (`Function Code` = `function_code`), and by the "
             "aliases listed. A header that resembles a column the sheet lacks (a misspelling) or data under a "
             "blank header refuses the sheet; other extra columns are reported and not loaded. A column the sheet "
             "lacks leaves stored values as they are; an empty cell in a present column means empty. Cells are "
             "trimmed; non-breaking and zero-width spaces and control characters are removed. Booleans accept "
             "TRUE/FALSE, yes/no, t/f, 1/0, ✓/-. Lists accept `a; b`, one item per line, `a, b`, `{a,b}` (items "
             "may be double-quoted) or a JSON array `[\"a\", \"b, c\"]`.", "",
             "**Errors and warnings.** A bad value in a key, a required column or a required reference rejects the "
             "row (it is quarantined with its message). A bad value in an optional column does not: the row loads "
             "without that value (a value already stored is kept) and the steward gets a warning with the cell, the "
             "value and the fix. A reference may name its row by code or by name, blind to case, spaces and "
             "punctuation (`IT/Digital` is the function `IT`); an empty reference marked *derived* is taken from "
             "another reference of the row (a persona's department from its role). Exports in other layouts are "
             "read through a mapping file: see `docs/mapping-files.md`.", ""]
    for workbook, contracts in WORKBOOKS.items():
        lines.append(f"## {workbook}")
        for contract in contracts:
            entity = contract.entity
            into = f"rows of `{entity.table}`" if not entity.links_only else f"links in `{entity.table}`"
            linked = [f"`{c.name}` → `{c.link.table}`" for c in entity.links]
            lines += ["", f"### sheet `{contract.sheet}` (natural key: {', '.join(contract.key)})", "",
                      f"{entity.description} Loads {into}"
                      + (f"; junctions: {', '.join(linked)}" if linked else "")
                      + ("; the sheet is optional" if entity.optional else "") + ".", "",
                      "| column | meaning | type | required | allowed values | example | aliases |",
                      "|---|---|---|---|---|---|---|"]
            for c in columns(contract):
                allowed = ", ".join(c["allowed"]) if c["allowed"] else ""
                if c["references"]:
                    allowed = f"an existing {c['references']}"
                required = "yes" if c["required"] else (f"no (default {c['default']})" if c["default"] is not None else "no")
                if c["derive"]:
                    required += f" (derived from {c['derive'][0]} when empty)"
                lines.append(f"| {c['name']} | {c['meaning']} | {c['type']} | {required} | {allowed} | "
                             f"{c['example']} | {', '.join(c['aliases'])} |")
        lines.append("")
    lines += ["## solution_industry_matrix.xlsx", "",
              "Sheet `matrix`: solutions as rows (first column), industries as columns (Phrm, Btch, MedD, Payers, "
              "Digital, Consult, or their full names), `✓` (available) or `-` (not) in every cell. Optional sheet "
              "`fit_scores`: the same grid with whole numbers 1–10 (empty where not available).", ""]
    return "\n".join(lines)


def write_templates(out_dir: Path) -> list[Path]:
    """One blank workbook per registry workbook: headers with comments, drop-downs on enum columns."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for workbook_name, contracts in WORKBOOKS.items():
        path = out_dir / workbook_name.replace(".xlsx", ".template.xlsx")
        workbook = xlsxwriter.Workbook(str(path))
        workbook.set_properties({"title": path.stem, "created": GENERATED_AT})  # the same bytes on every run
        header_format = workbook.add_format({"bold": True, "bg_color": "#DDEBF7"})
        required_format = workbook.add_format({"bold": True, "bg_color": "#F8CBAD"})
        for contract in contracts:
            sheet = workbook.add_worksheet(contract.sheet)
            for index, c in enumerate(columns(contract)):
                sheet.write_string(0, index, c["name"], required_format if c["required"] else header_format)
                note = [c["meaning"], f"Type: {c['type']}.", "Required." if c["required"] else "Optional."]
                if c["allowed"]:
                    note.append("Allowed: " + ", ".join(c["allowed"]) + ".")
                if c["references"]:
                    note.append(f"Must match an existing {c['references']}.")
                note.append(f"Example: {c['example']}")
                sheet.write_comment(0, index, "\n".join(note), {"x_scale": 2, "y_scale": 2})
                sheet.set_column(index, index, max(14, len(c["name"]) + 2))
                if c["allowed"] and len(",".join(c["allowed"])) < 255:
                    sheet.data_validation(1, index, 10_000, index, {"validate": "list", "source": c["allowed"]})
            sheet.freeze_panes(1, 0)
        workbook.close()
        written.append(path)
    return written


__all__ = ["CONTRACTS", "columns", "format_markdown", "write_templates"]
