"""Writing small workbooks for tests, and editing copies of the committed ones."""

from __future__ import annotations

from pathlib import Path

import openpyxl

from samples.generate import write_workbook

__all__ = ["delete_rows", "edit_cells", "write_workbook"]


def edit_cells(path: Path, sheet: str, changes: dict[str, object]) -> Path:
    """Set cells of a copy in place, through openpyxl, as a steward's Excel would: by reference ({"C17": "x"}) or
    by header and row ({"tenant@17": "x"}), which holds when columns are added to the sheet."""
    workbook = openpyxl.load_workbook(path)
    headers = {str(c.value).strip().lower(): c.column_letter for c in workbook[sheet][1] if c.value is not None}
    for ref, value in changes.items():
        if "@" in ref:
            header, row = ref.split("@")
            ref = f"{headers[header]}{row}"
        workbook[sheet][ref].value = value
    workbook.save(path)
    return path


def delete_rows(path: Path, sheet: str, first: int, count: int = 1) -> Path:
    workbook = openpyxl.load_workbook(path)
    workbook[sheet].delete_rows(first, count)
    workbook.save(path)
    return path
