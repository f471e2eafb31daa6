"""Reading a JSON export as a sheet: an array of objects, or JSON Lines (one object per line).

The keys become the header (in the order they first appear) and every value becomes text as a steward would have
typed it: strings as they are, numbers and booleans as JSON writes them, a list as a `{…}` array literal (so items
with commas stay whole), an object as its JSON text, null as an empty cell. Row numbers count the header as row 1:
the first object is row 2. The size limit and the UTF-8 rule are the CSV reader's.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from vital_pipelines.spreadsheets.csv_source import decode
from vital_pipelines.spreadsheets.reader import ROW, RawSheet
from vital_pipelines.spreadsheets.safety import Limits, UnsafeWorkbookError, check_file, column_letter

JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        items = ['"' + str(_text(item) or "").replace("\\", "\\\\").replace('"', '\\"') + '"' for item in value]
        return "{" + ",".join(items) + "}"
    return json.dumps(value, ensure_ascii=False)


def _records(path: Path, text: str) -> list[dict]:
    stripped = text.lstrip()
    try:
        if stripped.startswith("["):
            records = json.loads(stripped)
            where = [f"item {i + 1}" for i in range(len(records))]
        else:
            records, where = [], []
            for number, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    records.append(json.loads(line))
                    where.append(f"line {number}")
    except json.JSONDecodeError as error:
        raise UnsafeWorkbookError(f"{path.name}: not valid JSON ({error.msg} at line {error.lineno}, column "
                                  f"{error.colno}).") from None
    except RecursionError:
        raise UnsafeWorkbookError(f"{path.name}: nested too deeply to be a table export.") from None
    for record, place in zip(records, where):
        if not isinstance(record, dict):
            raise UnsafeWorkbookError(f"{path.name}: {place} is a {type(record).__name__}, not an object; the "
                                      "export must be an array of objects or one object per line.")
    return records


def read_json_sheet(path: Path, sheet: str, limits: Limits = Limits()) -> RawSheet:
    """The objects of a JSON export as the rows of the sheet `sheet`, under a header row made of their keys."""
    path = Path(path)
    check_file(path, limits)
    records = _records(path, decode(path, path.read_bytes()))
    if len(records) >= limits.max_rows:
        raise UnsafeWorkbookError(f"{path.name}: more than {limits.max_rows - 1:,} records.")
    keys: dict[str, None] = {}
    for record in records:
        keys.update(dict.fromkeys(record))
    letters = [column_letter(i + 1) for i in range(len(keys))]
    columns = {letter: [key] + [_text(record.get(key)) for record in records] for letter, key in zip(letters, keys)}
    frame = pl.DataFrame({ROW: pl.Series(ROW, range(1, len(records) + 2), dtype=pl.Int64),
                          **{letter: pl.Series(letter, values, dtype=pl.Utf8) for letter, values in columns.items()}})
    return RawSheet(path.name, sheet, frame, 1)
