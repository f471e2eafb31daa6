"""A steward's corrections applied to a copy of the file: cell → new value, for an Excel workbook (openpyxl, the
rest of the workbook as it was) or a CSV export (rewritten with its own delimiter, as UTF-8). The file's cells are
named as the findings name them: sheet, column letter and row (a CSV's row being the record's, header = 1).

The new value is written as text, never re-typed: a value that starts with `=` stays text, so an edit cannot plant
a formula. The edited copy of a workbook holds values: a formula becomes the value it last calculated (what the
pipeline reads from it anyway), since openpyxl writes no calculated values and the copy would otherwise be refused
for formulas without one.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from vital_pipelines.spreadsheets.csv_source import delimiter_of, decode

_CELL = re.compile(r"^([A-Z]{1,3})([1-9][0-9]{0,6})$")
MAX_VALUE_CHARS = 32_767  # Excel's own limit for a cell


class EditProblem(ValueError):
    """An edit that cannot be applied; the message names the cell."""


@dataclass(frozen=True)
class CellEdit:
    sheet: str
    cell: str
    value: str

    def __post_init__(self):
        if not _CELL.match(self.cell or ""):
            raise EditProblem(f"{self.cell!r} is not a cell (a column letter and a row number, like C7)")
        if len(self.value) > MAX_VALUE_CHARS:
            raise EditProblem(f"{self.sheet} › {self.cell}: the new value is longer than a cell holds")

    @property
    def column_index(self) -> int:
        index = 0
        for char in _CELL.match(self.cell).group(1):
            index = index * 26 + ord(char) - 64
        return index

    @property
    def row(self) -> int:
        return int(_CELL.match(self.cell).group(2))


def apply_edits(path: Path, edits: list[CellEdit]) -> bytes:
    """The file's bytes with every edit applied (the last edit of a cell wins)."""
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        return _edit_workbook(path, edits)
    if path.suffix.lower() == ".csv":
        return _edit_csv(path, edits)
    raise EditProblem(f"{path.suffix or 'this'} files cannot be edited in the page; correct the file and upload it "
                      f"again")


def _edit_workbook(path: Path, edits: list[CellEdit]) -> bytes:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, data_only=True)
    except Exception as error:  # a workbook openpyxl cannot read back: said in one sentence, the upload unchanged
        raise EditProblem(f"this workbook cannot be edited in the page ({type(error).__name__}); correct the file "
                          f"and upload it again") from None
    for edit in edits:
        if edit.sheet not in book.sheetnames:
            raise EditProblem(f"the workbook has no sheet {edit.sheet!r}")
        cell = book[edit.sheet].cell(row=edit.row, column=edit.column_index)
        cell.value = edit.value if edit.value != "" else None
        if isinstance(cell.value, str):
            cell.data_type = "s"  # text, even when it starts with `=`
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _edit_csv(path: Path, edits: list[CellEdit]) -> bytes:
    text = decode(path, path.read_bytes())
    delimiter = delimiter_of(text)
    records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    for edit in edits:
        if edit.row > len(records):
            raise EditProblem(f"{edit.sheet} › {edit.cell}: the file has {len(records)} row(s)")
        record = records[edit.row - 1]
        record.extend([""] * (edit.column_index - len(record)))
        record[edit.column_index - 1] = edit.value
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(records)
    return out.getvalue().encode("utf-8")
