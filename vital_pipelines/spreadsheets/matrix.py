"""The solution × industry matrix: a grid (solutions as rows, industries as columns, ✓ / - in the cells, as in
the schema spec) and an optional grid of fit scores (1–10), turned into one validated row per cell."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from vital_pipelines.spreadsheets import normalise
from vital_pipelines.entities import Column
from vital_pipelines.spreadsheets.contracts import SheetContract, schema_of
from vital_pipelines.spreadsheets.reader import ROW, RawSheet
from vital_pipelines.spreadsheets.safety import inspect_workbook
from vital_pipelines.spreadsheets.validation import Failure, SheetRefused, ValidatedSheet, open_sheets

WORKBOOK = "solution_industry_matrix.xlsx"
# The seed's solutions and industries (21_seed_data.sql): code, then every spelling a grid may use.
SOLUTIONS = {
    "LAUNCH-EX": ("Launch Excellence",), "BRAND-EX": ("Brand Excellence",),
    "PULSE": ("Strategic Foresight", "Strategic Foresight (PULSE)", "PULSE"),
    "COMM-EX": ("Commercial Excellence",), "MED-EX": ("Medical Excellence",),
}
INDUSTRIES = {
    "pharmaceuticals": ("Pharmaceutical", "Phrm", "Pharma"), "biotechnology": ("Biotechnology", "Btch", "Biotech"),
    "medical_devices": ("Medical Devices", "MedD"), "healthcare_payers": ("Healthcare Payers", "Payers"),
    "digital_health": ("Digital Health", "Digital"), "healthcare_consulting": ("Healthcare Consulting", "Consult", "Consulting"),
}


MATRIX_CELL = (
    Column("solution_code", "key", "The row's solution.", "LAUNCH-EX", required=True, labels=tuple(SOLUTIONS)),
    Column("industry_code", "key", "The column's industry.", "pharmaceuticals", required=True,
           labels=tuple(INDUSTRIES)),
    Column("is_available", "bool", "✓ (available) or - (not available).", "✓", required=True),
    Column("fit_score", "int", "How well it fits, 1–10 (fit_scores sheet).", "8", ge=1, le=10),
)
_CELL_SCHEMA = schema_of(MATRIX_CELL, "matrix")


MATRIX = SheetContract(WORKBOOK, "matrix", _CELL_SCHEMA, ("solution_code", "industry_code"))
FIT_SCORES = SheetContract(WORKBOOK, "fit_scores", _CELL_SCHEMA, ("solution_code", "industry_code"), optional=True)


def _index(spellings: dict[str, tuple[str, ...]]) -> dict[str, str]:
    index = {}
    for code, names in spellings.items():
        for name in (code, *names):
            index[normalise.header_key(name)] = code
    return index


def _grid(raw: RawSheet, parse, rule_words: str) -> tuple[dict[tuple[str, str], tuple], list[Failure]]:
    solutions, industries = _index(SOLUTIONS), _index(INDUSTRIES)
    failures: list[Failure] = []
    rows = [r for r in raw.frame.iter_rows(named=True) if any(normalise.clean_cell(r[c]) for c in raw.letters)]
    if not rows:
        raise SheetRefused([Failure(raw.file, raw.sheet, None, None, None, None, "empty_sheet", "the grid is empty")])
    header, body = rows[0], rows[1:]
    columns: dict[str, str] = {}
    for letter in raw.letters[1:]:
        text = normalise.clean_cell(header[letter])
        if text is None:
            continue
        code = industries.get(normalise.header_key(text))
        if code is None:
            failures.append(Failure(raw.file, raw.sheet, header[ROW], "industry", letter, text, "reference",
                                    f"`{text}` is not one of the industries ({', '.join(n[0] for n in INDUSTRIES.values())})"))
        elif code in columns.values():
            failures.append(Failure(raw.file, raw.sheet, header[ROW], "industry", letter, text, "duplicate_header",
                                    f"the industry `{text}` has two columns"))
        else:
            columns[letter] = code
    cells: dict[tuple[str, str], tuple] = {}
    first = raw.letters[0]
    for record in body:
        name = normalise.clean_cell(record[first])
        solution = solutions.get(normalise.header_key(name or ""))
        if solution is None:
            failures.append(Failure(raw.file, raw.sheet, record[ROW], "solution", first, name, "reference",
                                    f"`{name}` is not one of the solutions ({', '.join(n[0] for n in SOLUTIONS.values())})"))
            continue
        for letter, industry in columns.items():
            text = normalise.clean_cell(record[letter])
            try:
                value = parse(text)
            except normalise.ParseError as error:
                failures.append(Failure(raw.file, raw.sheet, record[ROW], industry, letter, text, "type",
                                        f"the cell {error}"))
                continue
            cells[(solution, industry)] = (value, record[ROW], letter, text)
    return cells, failures


def _availability(text):
    if text is None:
        raise normalise.ParseError("is empty; write ✓ (available) or - (not available)")
    return normalise.parse_bool(text)


def _fit(text):
    return None if text is None or text in {"-", "–", "—"} else normalise.parse_int(text)


def validate_matrix(path: Path, *, isolated: bool = True) -> dict[str, ValidatedSheet]:
    path = Path(path)
    info = inspect_workbook(path)
    wanted = (MATRIX, FIT_SCORES) if any(n.strip().lower() == "fit_scores" for n in info.sheets) else (MATRIX,)
    raws = open_sheets(path, info, wanted, isolated=isolated)
    available, failures = _grid(raws["matrix"], _availability, "✓ or -")
    fits, fit_failures = _grid(raws["fit_scores"], _fit, "1–10") if "fit_scores" in raws else ({}, [])
    failures += fit_failures
    records, bad_rows = [], {f.row for f in failures if f.sheet == "matrix"}
    for (solution, industry), (value, row, letter, _text) in sorted(available.items()):
        fit = fits.get((solution, industry), (None,))[0]
        if fit is not None and not 1 <= fit <= 10:
            failures.append(Failure(path.name, "fit_scores", fits[(solution, industry)][1], industry,
                                    fits[(solution, industry)][2], str(fit), "range",
                                    f"the fit score must be between 1 and 10; got `{fit}`"))
            continue
        records.append({ROW: row, "solution_code": solution, "industry_code": industry, "is_available": value,
                        "fit_score": fit})
    frame = pl.DataFrame(records, schema={ROW: pl.Int64, "solution_code": pl.Utf8, "industry_code": pl.Utf8,
                                          "is_available": pl.Boolean, "fit_score": pl.Int64})
    _CELL_SCHEMA.validate(frame)
    valid = frame.filter(~pl.col(ROW).is_in(list(bad_rows)))
    rejected = frame.filter(pl.col(ROW).is_in(list(bad_rows))).with_columns(pl.all().exclude(ROW).cast(pl.Utf8))
    return {"matrix": ValidatedSheet(MATRIX, path.name, valid, rejected, failures)}
