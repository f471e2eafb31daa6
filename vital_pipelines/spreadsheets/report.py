"""What a steward sees: failures as a table and as markdown, a one-sentence summary, and an annotated copy of
the workbook in which every bad cell is highlighted and carries a comment with the fix.

The annotated copy is written by openpyxl (with defusedxml installed, as DESIGN.md requires). Values are
never re-typed: a text cell that starts with `=`, `+`, `-` or `@` stays text, so opening the copy cannot run a
formula a hostile file smuggled in.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections import Counter
from pathlib import Path

import openpyxl
from openpyxl.comments import Comment
from openpyxl.styles import PatternFill

from vital_pipelines.spreadsheets.validation import Failure

MAX_TABLE_ROWS = 200
_FILL = PatternFill(start_color="FFFFC7CE", end_color="FFFFC7CE", fill_type="solid")  # a failure: light red
_WARNING_FILL = PatternFill(start_color="FFFFEB9C", end_color="FFFFEB9C", fill_type="solid")  # a warning: amber


def plain(message: str) -> str:
    """A message without the Markdown backticks around names and values, for tables that show them raw."""
    return message.replace("`", "")


# Rules as a steward reads them; a rule not listed reads as its identifier's words.
RULE_WORDS = {
    "reference": "names nothing known",
    "allowed_values": "not an allowed value",
    "required": "empty but required",
    "unique": "used by more than one row",
    "format": "not in the expected format",
    "type": "wrong kind of value",
    "shared_key": "also loaded from another source",
    "tenant_of_source": "belongs to another tenant",
    "unknown_column": "not a column of the sheet",
    "missing_column": "a required column is missing",
    "duplicate_header": "the header is used twice",
    "missing_sheet": "the sheet is missing",
    "hidden_sheet": "the sheet is hidden",
    "formula": "a formula, not a value",
    "formula_without_value": "a formula without a saved value",
    "merged_cells": "merged cells",
    "unreadable_file": "the file cannot be read",
    "mapping": "the mapping file",
    "empty_sheet": "the sheet is empty",
    "normalise_collision_warning": "two values became one",
}


def rule_words(rule: str) -> str:
    words = RULE_WORDS.get(rule) or RULE_WORDS.get(rule.removesuffix("_warning"))
    return words or rule.removesuffix("_warning").replace("_", " ")


def short(value, width: int = 30) -> str:
    text = " ".join(str(value if value is not None else "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def markdown_table(failures: list[Failure], limit: int = MAX_TABLE_ROWS) -> str:
    """Short columns first and the message last, so the table reads without scrolling sideways."""
    def cell(text) -> str:
        return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")

    lines = ["| sheet | cell | value | rule | what to fix |", "|---|---|---|---|---|"]
    lines += [f"| {cell(f.sheet)} | {f.cell} | {cell(short(f.value))} | {f.rule} | {cell(plain(f.message))} |"
              for f in failures[:limit]]
    if len(failures) > limit:
        lines.append(f"| … | | | | {len(failures) - limit} more not shown: the full report lists every one |")
    return "\n".join(lines)


REPORT_COLUMNS = ("file", "sheet", "cell", "row", "column", "value", "rule", "message", "severity")


def failures_csv(findings: list[dict]) -> str:
    """Findings (`Failure.as_dict()` with a `severity`) as CSV for a spreadsheet: a value that a spreadsheet would
    run as a formula is quoted with a leading apostrophe."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=REPORT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for finding in findings:
        writer.writerow({k: (f"'{v}" if isinstance(v, str) and v[:1] in "=+-@" else v) for k, v in finding.items()})
    return out.getvalue()


def summary(failures: list[Failure]) -> str:
    if not failures:
        return "Every row meets its contract."
    rows = len({(f.file, f.sheet, f.row) for f in failures})
    rules = ", ".join(f"{rule_words(rule)} ({n})" for rule, n in Counter(f.rule for f in failures).most_common())
    names = sorted({f.file for f in failures})
    files = ", ".join(names)
    if any(name.startswith("tenants/") for name in names):
        fix = ("Fix the cells named above in the tenant's file (the steward portal's report and its annotated copy "
               "mark each one), then upload it again.")
    elif all(name.lower().endswith(".xlsx") for name in names):
        fix = ("Fix the highlighted cells in the annotated copy (each has a comment saying what is expected) in the "
               "original workbook, then re-run.")
    else:
        fix = ("Fix each cell named above in the export, or the rule in its mapping file (a missing column: map "
               "one to it, or give a constant with `value:`), then re-run.")
    grouped = groups(failures)
    return f"{len(failures)} problem(s) in {rows} row(s) of {files} — {rules}. {fix}" + (
        " Most of it: " + "; ".join(grouped) + "." if grouped else "")


# How a group of findings of one kind is said, and what fixes it, by rule (warnings share their rule's words).
_GROUP_WORDS = {
    "reference": ("names no {target} the load can find", "fix with a crosswalk (`vital-pipelines crosswalk --suggest "
                                                          "{file}`) or load the missing rows first"),
    "allowed_values": ("is not one of the allowed values",
                       "correct the cells (an export: add a `values:` synonym to its mapping)"),
    "required": ("is empty", "fill the cells, or map a column or a `default:` to it"),
    "unique": ("is used by more than one row", "keep one row per value"),
    "format": ("is not written in the key's format", "correct the cells, or add `normalise:` in the mapping"),
    "type": ("is not of the column's type", "correct the cells"),
    "shared_key": ("is also loaded from another source", "keep each row in one source"),
}


def groups(findings: list[Failure], limit: int = 3) -> list[str]:
    """The biggest groups of findings of one kind (one file, sheet, column and rule), each said once with its count
    of rows and of distinct values, a few of them, and the fix: `629 row(s) of personas.csv › personas: role_code
    names no role the load can find (169 distinct values: `Medical Director` ×12, …); fix with a crosswalk …`.
    Only groups of more than one row: a single finding is said where it is."""
    grouped: dict[tuple, list[Failure]] = {}
    for finding in findings:
        if finding.column:
            rule = finding.rule.removesuffix("_warning")
            grouped.setdefault((finding.file, finding.sheet, finding.column, rule), []).append(finding)
    said = []
    for (file, sheet, column, rule), items in sorted(grouped.items(), key=lambda kv: -len(kv[1]))[:limit]:
        rows = len({f.row for f in items})
        if rows < 2:
            continue
        values = Counter(str(f.value) for f in items if f.value is not None)
        shown = ", ".join(f"`{short(v, 40)}`" + (f" ×{n}" if n > 1 else "") for v, n in values.most_common(3))
        what, fix = _GROUP_WORDS.get(rule, (f"fails `{rule}`", "see each finding"))
        target = column.removesuffix("_code").removesuffix("_slug").removesuffix("_key")
        said.append(f"{rows} row(s) of {file} › {sheet}: `{column}` {what.format(target=target)} "
                    f"({len(values)} distinct value(s): {shown}{', …' if len(values) > 3 else ''}); "
                    + fix.format(file=file))
    return said


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class AnnotationError(RuntimeError):
    """The annotated copy could not be written; the message says why in one sentence."""


def annotate_workbook(source: Path, failures: list[Failure], destination: Path,
                      warnings: list[Failure] = ()) -> Path:
    """Copy `source` to `destination`, highlighting and commenting every failing cell (light red) and every warned
    cell (amber; a cell with both is red). Formulas become the values
    they last calculated (a copy that runs nothing), the copy is written to a temporary file and renamed into place
    (never half-written), and never over `source`. Any failure is an `AnnotationError` with the reason."""
    source, destination = Path(source), Path(destination)
    if destination.resolve() == source.resolve():
        raise AnnotationError(f"the annotated copy would overwrite {source.name}; choose another path")
    try:
        workbook = openpyxl.load_workbook(source, rich_text=False, data_only=True)
        by_cell: dict[tuple[str, str], list[tuple[str, Failure]]] = {}
        for severity, found in (("failure", failures), ("warning", warnings)):
            for failure in found:
                if failure.row is not None:
                    by_cell.setdefault((failure.sheet, f"{failure.letter or 'A'}{failure.row}"), []).append(
                        (severity, failure))
        for (sheet_name, ref), items in by_cell.items():
            if sheet_name not in workbook.sheetnames:
                continue
            cell = workbook[sheet_name][ref]
            cell.fill = _FILL if any(severity == "failure" for severity, _f in items) else _WARNING_FILL
            text = _CONTROL.sub("", "\n".join(f"[{severity}: {rule_words(f.rule)}] {f.message}"
                                               for severity, f in items))
            cell.comment = Comment(text[:2000], "vital-pipelines", width=320, height=120)
        destination.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=destination.parent, prefix=f".{destination.name}.", suffix=".tmp",
                                         delete=False) as temporary:
            partial = Path(temporary.name)
        try:
            workbook.save(partial)
            os.replace(partial, destination)
        finally:
            partial.unlink(missing_ok=True)
    except AnnotationError:
        raise
    except Exception as error:  # disk full, a path under a file, a cell openpyxl refuses: one sentence, no trace
        raise AnnotationError(f"the annotated copy {destination} could not be written "
                              f"({type(error).__name__}: {error})") from None
    return destination
