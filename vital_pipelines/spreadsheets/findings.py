"""What a check found: a `Failure` names the file, sheet, cell (and a text file's line), value, rule and the fix, in
plain words; the same type carries warnings (rule `…_warning`). Shared by reading, mapping, validation and loading."""

from __future__ import annotations

import re

from dataclasses import dataclass

from vital_pipelines.spreadsheets.reader import RawSheet


@dataclass(frozen=True)
class Failure:
    file: str
    sheet: str
    row: int | None
    column: str | None
    letter: str | None
    value: str | None
    rule: str
    message: str
    line: int | None = None  # a text export's physical line where its record starts, when that is another number
    offer: str | None = None  # the value that fixes the cell, when the check knows it (the file's own tenant)

    @property
    def cell(self) -> str:
        if self.letter and self.row:
            return f"{self.letter}{self.row}"
        return str(self.row or "")

    @property
    def location(self) -> str:
        """Where a spreadsheet user finds it: file › sheet › cell, the row being the record's row (as a spreadsheet
        opens a CSV, multi-line cells and all), and the physical line of a text file in addition."""
        parts = [self.file, self.sheet] + ([self.cell] if self.cell else [])
        return " › ".join(parts) + (f" (line {self.line} of the file)" if self.line else "")

    @property
    def suggestion(self) -> str | None:
        """The value the message's `did you mean` offers first (the closest key or name, a header's spelling), which
        a steward can take with one click; None when the message offers none."""
        if self.offer is not None:
            return self.offer
        found = _SUGGESTED.search(self.message or "")
        return found.group(1) if found else None

    def as_dict(self) -> dict:
        return {"file": self.file, "sheet": self.sheet, "cell": self.cell, "row": self.row, "column": self.column,
                "value": self.value, "rule": self.rule, "message": self.message,
                **({"line": self.line} if self.line else {}),
                **({"suggestion": offered} if (offered := self.suggestion) else {})}


# How every "did you mean" of the validation is written (references.suggestion, the header check): its first
# backticked value is the closest candidate.
_SUGGESTED = re.compile(r"did you mean `([^`]+)`")


class SheetRefused(ValueError):
    """The whole sheet cannot be read (missing, hidden, bad headers, merged cells, formulas without values)."""

    def __init__(self, failures: list[Failure]):
        self.failures = failures
        super().__init__("; ".join(f"{f.location}: {f.message}" for f in failures))


def fail(raw: RawSheet, row, column, letter, value, rule, message) -> Failure:
    return Failure(raw.file, raw.sheet, row, column, letter, value, rule, message, raw.lines.get(row))


def singular(word: str) -> str:
    """`responsibilities` → `responsibility`, `roles` → `role`: how a message names one row of a sheet."""
    if word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") else word


__all__ = ["Failure", "SheetRefused", "fail", "singular"]
