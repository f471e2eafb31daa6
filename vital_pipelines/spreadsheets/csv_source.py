"""Reading a CSV export as a sheet: every value text, positioned by its line in the file.

The same guarantees as a workbook: a size limit, every value read as text (nothing guessed from the first rows),
and a located failure for every problem. The encoding is UTF-8 (with or without a byte-order mark) or UTF-16 with a
byte-order mark; anything else is refused with the fix, never guessed. The delimiter (comma, semicolon, tab or bar)
is sniffed from the first lines. Lines of junk above the header (a psql notice, a title) are left to the header
search, which looks at the first rows for the best match with the contract. Each record keeps the line it starts
on, so a multi-line quoted cell does not shift the rows after it: a finding names the record's row (what a
spreadsheet shows) and, where it differs, the line.
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import polars as pl

from vital_pipelines.spreadsheets.reader import ROW, RawSheet
from vital_pipelines.spreadsheets.safety import Limits, UnsafeWorkbookError, check_file, column_letter

DELIMITERS = ",;\t|"
MAX_COLUMNS = 16_384
_SNIFF_BYTES = 64 * 1024


def decode(path: Path, data: bytes) -> str:
    """The file's text: UTF-8 (a BOM is dropped), or UTF-16 announced by its BOM; otherwise refused."""
    if data.startswith(codecs.BOM_UTF16_LE) or data.startswith(codecs.BOM_UTF16_BE):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as error:
            raise UnsafeWorkbookError(f"{path.name}: announces UTF-16 but is not ({error.reason} at byte "
                                      f"{error.start}); export it again as CSV UTF-8.") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UnsafeWorkbookError(
            f"{path.name}: not UTF-8 (byte 0x{data[error.start]:02x} on line {line}); it is probably Windows-1252 "
            f"or Latin-1. Save or export it as 'CSV UTF-8' (Excel: File › Save As › CSV UTF-8) and try again."
        ) from None


def delimiter_of(text: str) -> str:
    sample = text[:_SNIFF_BYTES]
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        counts = {d: sample.count(d) for d in DELIMITERS}
        return max(counts, key=counts.get) if any(counts.values()) else ","


def read_csv_sheet(path: Path, sheet: str, limits: Limits = Limits()) -> RawSheet:
    """All values of a CSV file as text, as the sheet `sheet`: columns named by letter, `_row` the record's number
    (the row a spreadsheet opens it on), and the line each record starts on where that differs."""
    path = Path(path)
    check_file(path, limits)
    text = decode(path, path.read_bytes())
    if "\x00" in text:
        raise UnsafeWorkbookError(f"{path.name}: holds NUL bytes, so it is not a text export; export it again as CSV.")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter_of(text))
    lines, records, width = [], [], 0
    start = 1
    try:
        for record in reader:
            if len(record) > MAX_COLUMNS:
                raise UnsafeWorkbookError(f"{path.name}: line {start} has {len(record):,} values "
                                          f"(limit {MAX_COLUMNS:,}); is the delimiter right?")
            if len(records) >= limits.max_rows:
                raise UnsafeWorkbookError(f"{path.name}: more than {limits.max_rows:,} lines.")
            lines.append(start)
            records.append(record)
            width = max(width, len(record))
            start = reader.line_num + 1
    except csv.Error as error:
        raise UnsafeWorkbookError(f"{path.name}: line {reader.line_num}: {error}; check the quoting.") from None
    letters = [column_letter(i + 1) for i in range(width)]
    columns = {letter: [r[i] if i < len(r) and r[i] != "" else None for r in records] for i, letter in enumerate(letters)}
    rows = list(range(1, len(records) + 1))
    frame = pl.DataFrame({ROW: pl.Series(ROW, rows, dtype=pl.Int64),
                          **{letter: pl.Series(letter, values, dtype=pl.Utf8) for letter, values in columns.items()}})
    moved = {row: line for row, line in zip(rows, lines) if row != line}
    return RawSheet(path.name, sheet, frame, 1 if rows else 0, lines=moved)
