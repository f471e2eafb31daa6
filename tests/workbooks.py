"""Writing small workbooks for tests, and editing copies of the committed ones."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import xlsxwriter


def write_workbook(path: Path, sheets: dict[str, list[list]], hidden: tuple[str, ...] = ()) -> Path:
    """Each sheet is a list of rows (header first); None leaves a cell empty; str is always written as text."""
    workbook = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False,
                                               "strings_to_urls": False})
    for name, rows in sheets.items():
        sheet = workbook.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, bool):
                    sheet.write_boolean(r, c, value)
                elif isinstance(value, (int, float)):
                    sheet.write_number(r, c, value)
                else:
                    sheet.write_string(r, c, value)
        if name in hidden:
            sheet.hide()
    workbook.close()
    return path


def edit_cells(path: Path, sheet: str, changes: dict[str, object]) -> Path:
    """Set cells (e.g. {"C17": "x"}) of a copy in place, through openpyxl, as a steward's Excel would."""
    workbook = openpyxl.load_workbook(path)
    for ref, value in changes.items():
        workbook[sheet][ref].value = value
    workbook.save(path)
    return path


def delete_rows(path: Path, sheet: str, first: int, count: int = 1) -> Path:
    workbook = openpyxl.load_workbook(path)
    workbook[sheet].delete_rows(first, count)
    workbook.save(path)
    return path
