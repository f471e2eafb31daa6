"""A steward's corrections applied to a copy of the file: cell → new value, for an Excel workbook or a CSV export
(rewritten with its own delimiter, as UTF-8). The file's cells are named as the findings name them: sheet, column
letter and row (a CSV's row being the record's, header = 1).

A workbook is edited in its package: only the edited cells of the sheet's XML change (each becomes an inline string
that keeps the cell's style); every other part, formula, drop-down and format is copied byte for byte, so the new
version is the steward's workbook plus the edits, and editing costs a pass over one sheet's XML (openpyxl's load and
save of a 33,500-row sheet took 12 s). A cell that holds a formula is edited through openpyxl instead, whose copy
holds values (each formula's last calculated value, what the pipeline reads anyway), so that no stale calculation
chain is left behind.

The new value is written as text, never re-typed: a value that starts with `=` stays text, so an edit cannot plant
a formula.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from vital_pipelines.spreadsheets.csv_source import delimiter_of, decode
from vital_pipelines.spreadsheets.safety import column_index, column_letter, sheet_paths

_CELL = re.compile(r"^([A-Z]{1,3})([1-9][0-9]{0,6})$")
MAX_VALUE_CHARS = 32_767  # Excel's own limit for a cell


def is_cell(reference: str | None) -> bool:
    """Whether a finding names one cell (`C7`) that an edit can change, not a row or a whole sheet."""
    return bool(_CELL.match(reference or ""))


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
        return column_index(_CELL.match(self.cell).group(1))

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
    try:
        return _edit_package(path, edits)
    except _NeedsOpenpyxl:
        return _edit_with_openpyxl(path, edits)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
        if isinstance(error, EditProblem):
            raise
        raise EditProblem(f"this workbook cannot be edited in the page ({type(error).__name__}); correct the file "
                          f"and upload it again") from None


class _NeedsOpenpyxl(Exception):
    """An edit the package patch does not make (a formula cell); openpyxl makes it."""


_ROW = re.compile(rb"<(?P<p>(?:[A-Za-z_][\w.-]*:)?)row\b(?P<a>[^>]*?)(?P<end>/>|>)")
_CELL_XML = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c\b(?P<a>[^>]*?)(?:/>|>(?P<body>.*?)</(?:[A-Za-z_][\w.-]*:)?c>)", re.S)
_R = re.compile(rb"""\br\s*=\s*["']([A-Z]*)([0-9]+)["']""")
_STYLE = re.compile(rb"""\bs\s*=\s*["']([0-9]+)["']""")
_SHEET_DATA = re.compile(rb"<(?P<p>(?:[A-Za-z_][\w.-]*:)?)sheetData\b[^>]*?(?P<end>/>|>)")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _edit_package(path: Path, edits: list[CellEdit]) -> bytes:
    with zipfile.ZipFile(path) as package:
        parts = {name: part for name, part, _visible in sheet_paths(package)}
        by_part: dict[str, dict[tuple[int, int], str]] = {}
        for edit in edits:
            if edit.sheet not in parts:
                raise EditProblem(f"the workbook has no sheet {edit.sheet!r}")
            by_part.setdefault(parts[edit.sheet], {})[(edit.row, edit.column_index)] = edit.value
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
            for info in package.infolist():
                data = package.read(info)
                if info.filename in by_part:
                    data = _patched_sheet(data, by_part[info.filename])
                target.writestr(info, data)
    return out.getvalue()


def _cell_xml(prefix: bytes, row: int, column: int, value: str, style: bytes | None) -> bytes:
    ref = f"{column_letter(column)}{row}".encode()
    styled = b' s="' + style + b'"' if style else b""
    if value == "":
        return b"<" + prefix + b'c r="' + ref + b'"' + styled + b"/>"
    text = escape(_NOT_XML.sub("", value)).encode("utf-8")
    return (b"<" + prefix + b'c r="' + ref + b'"' + styled + b' t="inlineStr"><' + prefix + b"is><" + prefix
            + b't xml:space="preserve">' + text + b"</" + prefix + b"t></" + prefix + b"is></" + prefix + b"c>")


def _patched_sheet(data: bytes, cells: dict[tuple[int, int], str]) -> bytes:
    """The sheet's XML with `cells` ((row, column) → text) written; rows and cells are kept in order."""
    wanted: dict[int, dict[int, str]] = {}
    for (row, column), value in cells.items():
        wanted.setdefault(row, {})[column] = value
    found = _SHEET_DATA.search(data)
    if found is None:
        raise _NeedsOpenpyxl()
    prefix = found.group("p")
    if found.group("end") == b"/>":  # an empty sheet: the rows are all new
        rows = b"".join(_new_row(prefix, row, wanted[row]) for row in sorted(wanted))
        return data[:found.start()] + b"<" + prefix + b"sheetData>" + rows + b"</" + prefix + b"sheetData>" \
            + data[found.end():]
    pieces, position = [data[:found.end()]], found.end()
    closing = data.index(b"</" + prefix + b"sheetData>", position)
    pending = deque(sorted(wanted))
    for row_tag in _ROW.finditer(data, position, closing):
        numbered = _R.search(row_tag.group("a"))
        if numbered is None:
            raise _NeedsOpenpyxl()  # a row without its number: its place is only known by counting
        number = int(numbered.group(2))
        while pending and pending[0] < number:  # rows the sheet does not have yet
            new = pending.popleft()
            pieces += [data[position:row_tag.start()], _new_row(prefix, new, wanted[new])]
            position = row_tag.start()
        if not pending or number != pending[0]:
            continue
        pending.popleft()
        if row_tag.group("end") == b"/>":
            pieces += [data[position:row_tag.start()], _new_row(prefix, number, wanted[number], row_tag.group("a"))]
            position = row_tag.end()
            continue
        row_end = data.index(b"</" + prefix + b"row>", row_tag.end())
        pieces.append(data[position:row_tag.end()])
        pieces.append(_patched_row(data[row_tag.end():row_end], prefix, number, wanted[number]))
        position = row_end
    pieces.append(data[position:closing])
    pieces += [_new_row(prefix, row, wanted[row]) for row in pending]
    pieces.append(data[closing:])
    return b"".join(pieces)


def _new_row(prefix: bytes, row: int, cells: dict[int, str], attributes: bytes | None = None) -> bytes:
    opening = b"<" + prefix + b"row" + (attributes.rstrip(b"/").rstrip() if attributes else f' r="{row}"'.encode())
    return opening + b">" + b"".join(_cell_xml(prefix, row, column, cells[column], None)
                                     for column in sorted(cells)) + b"</" + prefix + b"row>"


def _patched_row(body: bytes, prefix: bytes, row: int, cells: dict[int, str]) -> bytes:
    pieces, position, pending = [], 0, dict(cells)
    for cell in _CELL_XML.finditer(body):
        ref = _R.search(cell.group("a"))
        if ref is None:
            raise _NeedsOpenpyxl()  # a cell without its reference: its place is only known by counting
        column = column_index(ref.group(1).decode())
        for new in sorted(c for c in pending if c < column):
            pieces += [body[position:cell.start()], _cell_xml(prefix, row, new, pending.pop(new), None)]
            position = cell.start()
        if column in pending:
            if cell.group("body") and re.search(rb"<(?:[A-Za-z_][\w.-]*:)?f\b", cell.group("body")):
                raise _NeedsOpenpyxl()
            style = _STYLE.search(cell.group("a"))
            pieces += [body[position:cell.start()],
                       _cell_xml(prefix, row, column, pending.pop(column), style.group(1) if style else None)]
            position = cell.end()
    pieces.append(body[position:])
    pieces += [_cell_xml(prefix, row, column, pending[column], None) for column in sorted(pending)]
    return b"".join(pieces)


def _edit_with_openpyxl(path: Path, edits: list[CellEdit]) -> bytes:
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
