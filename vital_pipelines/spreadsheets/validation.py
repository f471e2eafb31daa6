"""Holding a sheet to its contract: header matching, typing every cell, Pandera's rules, cross-sheet references.

The result separates valid rows (typed, ready to load) from rejected ones, and explains every rejection as a
`Failure` that names the file, sheet, cell, value, rule and a fix in plain words.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandera.polars as pa
import polars as pl

from vital_pipelines.spreadsheets import normalise
from vital_pipelines.entities.catalog import PATTERN_WORDS as _PATTERN_WORDS
from vital_pipelines.spreadsheets.contracts import CONTRACTS, SheetContract
from vital_pipelines.spreadsheets.csv_source import read_csv_sheet
from vital_pipelines.spreadsheets.json_source import JSON_SUFFIXES, read_json_sheet
from vital_pipelines.spreadsheets.reader import ROW, RawSheet, ReaderChild, read_sheets
from vital_pipelines.spreadsheets.findings import Failure, SheetRefused, fail, singular
from vital_pipelines.spreadsheets.references import (
    ReferenceIndex, as_index, derive as derive_references, reference_failures, reference_index, resolve_names,
)
from vital_pipelines.spreadsheets.safety import SheetInfo, UnsafeWorkbookError, WorkbookInfo, column_index, inspect_workbook

HEADER_SEARCH_ROWS = 10


@dataclass
class ValidatedSheet:
    """`letters` maps each contract column found in the header to its column letter: a column the sheet lacks is
    absent from it, and the loaders leave what is stored for such a column as it is. `warnings` are findings that
    reject nothing (an extra column that is not loaded)."""

    contract: SheetContract
    file: str
    valid: pl.DataFrame
    rejected: pl.DataFrame
    failures: list[Failure]
    letters: dict[str, str] = field(default_factory=dict)
    warnings: list[Failure] = field(default_factory=list)
    withheld: set[int] = field(default_factory=set)  # valid rows the database refuses (see loading.registry)

    @property
    def present(self) -> set[str]:
        return set(self.letters)

    @property
    def total_rows(self) -> int:
        return self.valid.height + self.rejected.height

    def keys(self, column: str) -> set[str]:
        return set(self.valid.get_column(column).drop_nulls().to_list())


def _columns(contract: SheetContract) -> dict[str, pa.Column]:
    return dict(contract.schema.columns)


def _required(column: pa.Column) -> bool:
    return not column.nullable and (column.metadata or {}).get("default") is None


def _header_lookup(contract: SheetContract) -> dict[str, str]:
    lookup = {}
    for name, column in _columns(contract).items():
        lookup[normalise.header_key(name)] = name
        for alias in (column.metadata or {}).get("aliases", []):
            lookup.setdefault(normalise.header_key(alias), name)
    return lookup


def _closest(text: str, lookup: dict[str, str]) -> str | None:
    """The documented column whose name or alias is closest to a header the contract does not know."""
    close = difflib.get_close_matches(normalise.header_key(text), list(lookup), n=1, cutoff=0.75)
    return lookup[close[0]] if close else None


def _locate_header(raw: RawSheet, contract: SheetContract) -> tuple[int, dict[str, str], list[Failure]]:
    """The header's Excel row, {canonical column: letter} and warnings. Refuses missing or duplicate headers, a
    header that looks like a misspelt column the sheet lacks, and data under a blank header: in each case loading
    would leave out what the steward wrote."""
    lookup = _header_lookup(contract)
    columns = _columns(contract)
    best: tuple[int, int, list[tuple[str, str, str]]] | None = None
    for record in raw.frame.head(HEADER_SEARCH_ROWS).iter_rows(named=True):
        matches = []
        for letter in raw.letters:
            text = normalise.clean_cell(record[letter])
            if text and normalise.header_key(text) in lookup:
                matches.append((lookup[normalise.header_key(text)], letter, text))
        if matches and (best is None or len(matches) > best[1]):
            best = (record[ROW], len(matches), matches)
    if best is None:
        required = [n for n, c in columns.items() if _required(c)]
        raise SheetRefused([fail(raw, raw.header_row or 1, None, None, None, "headers",
                                  f"no header row found in the first {HEADER_SEARCH_ROWS} rows; expected columns "
                                  f"{', '.join(required)}")])
    header_row, _count, matches = best
    letters: dict[str, str] = {}
    texts: dict[str, str] = {}
    failures, warnings = [], []
    for name, letter, text in matches:
        if name in letters:
            first = texts[name]
            same = f"`{text}`" if first == text else f"`{first}` and `{text}` both mean `{name}`"
            failures.append(fail(raw, header_row, name, letter, text, "duplicate_header",
                                  f"the column `{name}` appears twice: {same} (columns "
                                  f"{raw.reported(letters[name])} and {raw.reported(letter)}); delete or rename one "
                                  "of them"))
        else:
            letters[name] = letter
            texts[name] = text
    matched = {letter for _n, letter, _t in matches}
    header = raw.frame.filter(pl.col(ROW) == header_row).row(0, named=True)
    body = raw.frame.filter(pl.col(ROW) > header_row)
    for letter in raw.letters:
        if letter in matched:
            continue
        text = normalise.clean_cell(header[letter])
        if text is None:
            filled = body.filter(pl.col(letter).map_elements(normalise.clean_cell, return_dtype=pl.Utf8).is_not_null())
            if filled.height:
                failures.append(fail(raw, header_row, None, letter, None, "blank_header",
                                      f"column {letter} has data in {filled.height} row(s) (first {letter}"
                                      f"{filled[ROW][0]}) but no header; write the column's name in {letter}"
                                      f"{header_row}, or delete the data"))
            continue
        guess = _closest(text, lookup)
        if guess is not None and guess not in letters:
            failures.append(fail(raw, header_row, None, letter, text, "unknown_header",
                                  f"`{text}` is not a column of `{contract.sheet}`; did you mean `{guess}`? Rename "
                                  f"the header (its data would not be loaded)"))
        else:
            hint = f" (the closest documented column is `{guess}`, already in column {letters[guess]})" if guess else ""
            warnings.append(fail(raw, header_row, None, letter, text, "unknown_header",
                                  f"`{text}` is not a column of `{contract.sheet}`{hint}; its values are not loaded"))
    def derivable(name: str, depth: int = 0) -> bool:
        derive = (columns[name].metadata or {}).get("derive")
        return bool(derive) and depth < len(columns) and (derive[0] in letters or derivable(derive[0], depth + 1))

    missing = [n for n, c in columns.items() if _required(c) and n not in letters and not derivable(n)]
    if missing:
        failures.append(fail(raw, header_row, None, None, None, "missing_header",
                              f"required column(s) {', '.join(missing)} missing from the header row {header_row}"))
    if failures:
        raise SheetRefused(failures)
    return header_row, letters, warnings


def _parse_column(values: pl.Series, column: pa.Column, name: str) -> tuple[pl.Series, dict[int, str]]:
    """The typed column and {position: message} for cells that do not parse. Text is cased in polars; other kinds
    parse each distinct value once (sheets repeat their enums, numbers and lists)."""
    meta = column.metadata or {}
    kind, case = meta.get("kind", "text"), meta.get("case")
    dtype = column.dtype.type
    errors: dict[int, str] = {}
    if kind not in ("int", "float", "bool", "list", "enum", "json"):
        out = values.str.to_lowercase() if case == "lower" else values.str.to_uppercase() if case == "upper" else values
    elif kind == "list":  # every text is a list (no parse errors), in polars but for bracketed forms
        distinct = values.drop_nulls().unique()
        lookup = pl.DataFrame({"text": distinct, "value": normalise.parse_lists(distinct, case)})
        out = pl.DataFrame({"text": values.cast(pl.Utf8)}).join(lookup, on="text", how="left",
                                                                 maintain_order="left").get_column("value")
    else:
        matcher = None
        if kind == "enum":
            allowed = next(c.statistics["allowed_values"] for c in column.checks if c.name == "isin")
            matcher = normalise.enum_matcher(allowed)

        def convert(text: str):
            if kind == "int":
                return normalise.parse_int(text)
            if kind == "float":
                return normalise.parse_float(text)
            if kind == "bool":
                return normalise.parse_bool(text)
            if kind == "json":
                return normalise.parse_json_object(text)
            return matcher(text)

        parsed, bad = {}, {}
        for value in values.drop_nulls().unique().to_list():
            try:
                parsed[value] = convert(value)
            except normalise.ParseError as error:
                bad[value] = str(error)
        lookup = pl.DataFrame({"text": pl.Series(list(parsed), dtype=pl.Utf8),
                               "value": pl.Series(list(parsed.values()), dtype=dtype)})
        out = pl.DataFrame({"text": values.cast(pl.Utf8)}).join(lookup, on="text", how="left",
                                                                 maintain_order="left").get_column("value")
        if bad:
            positions = values.is_in(list(bad)).arg_true().to_list()
            errors = {p: bad[values[p]] for p in positions}
    out = out.cast(dtype).alias(name)
    default = meta.get("default")
    if default is not None:
        failed = pl.Series([False] * out.len(), dtype=pl.Boolean)
        if errors:
            failed = failed.scatter(list(errors), True)
        out = pl.select(pl.when(failed).then(None).otherwise(out.fill_null(default)).alias(name)).to_series()
    return out, errors


def _describe(check: str, column: str, value, stats: Mapping) -> tuple[str, str]:
    shown = f"`{value}`" if value not in (None, "null") else "an empty cell"
    if check == "not_nullable":
        return "required", f"`{column}` is required; the cell is empty"
    if check.startswith("isin"):
        options = [str(a) for a in stats.get("allowed_values", [])]
        return "allowed_values", f"`{column}` must be one of {', '.join(options)}; got {shown}" + _closest_allowed(value, options)
    if check.startswith("str_matches"):
        pattern = stats.get("pattern")
        pattern = getattr(pattern, "pattern", pattern)
        return "format", f"`{column}` must be {_PATTERN_WORDS.get(pattern, f'in the form {pattern}')}; got {shown}"
    if check.startswith("greater_than_or_equal_to"):
        return "range", f"`{column}` must be at least {stats.get('min_value')}; got {shown}"
    if check.startswith("less_than_or_equal_to"):
        return "range", f"`{column}` must be at most {stats.get('max_value')}; got {shown}"
    if check.startswith("str_length"):
        return "length", f"`{column}` must be at most {stats.get('max_value')} characters; got {len(str(value))}"
    if check == "field_uniqueness":
        return "unique", f"`{column}` must be unique; {shown} appears on more than one row"
    if check.startswith("dtype"):
        return "type", f"`{column}` has the wrong type: {check}"
    return check, f"`{column}` breaks the rule {check}; got {shown}"


def _closest_allowed(value, options: list[str]) -> str:
    """`; did you mean `senior`?` for a value a typo away from one allowed value, or nothing."""
    if value in (None, "null") or not options:
        return ""
    return _closest_of(normalise.blind_key(str(value)), tuple(options))


@functools.lru_cache(maxsize=4096)
def _closest_of(text: str, options: tuple[str, ...]) -> str:
    """Once per distinct value: a column of 30,000 `Seinor` asks rapidfuzz once."""
    from rapidfuzz import fuzz, process

    found = process.extractOne(text, options, scorer=fuzz.ratio, score_cutoff=70)
    return f"; did you mean `{found[0]}`?" if found else ""


KEEP = "_keep"  # per valid row: the contract columns whose stored value the load keeps (the cell was not loadable)


def _drop_consequences(failures: dict[int, list[Failure]], columns: dict[str, pa.Column]) -> None:
    """An empty derived cell whose source reference failed says nothing new: the row keeps the failure that
    explains it (`role_code` names no role) and not `department_code is required`."""
    for position, found in failures.items():
        failing = {f.column for f in found}
        kept = [f for f in found if not (f.rule == "required" and f.column in columns and
                                         ((columns[f.column].metadata or {}).get("derive") or ("",))[0] in failing)]
        failures[position] = kept or found


def _soft(column: pa.Column, name: str, contract: SheetContract) -> bool:
    """A failure in this column warns instead of rejecting: the column is optional (nullable) and not a key."""
    return column.nullable and name not in contract.key


def _warned(failure: Failure) -> Failure:
    outcome = ("the row is loaded and keeps the link it had" if failure.rule == "reference"
               else "the row is loaded without this value (a stored value is kept)")
    return dataclasses.replace(failure, rule=f"{failure.rule}_warning",
                               message=f"{failure.message.rstrip('.')}; {outcome}")


def validate_sheet(raw: RawSheet, contract: SheetContract, references: Mapping[str, set[str]] | ReferenceIndex | None = None,
                   workbook_of: Mapping[str, str] | None = None) -> ValidatedSheet:
    """Type and validate every row of `raw` against `contract`; see the module docstring. A failure in a key,
    required column or required reference rejects the row; one in an optional column is a warning: the row loads,
    and the load keeps what is stored for that cell (nothing, for a new row)."""
    index = as_index(references)
    workbook_of = {**{c.sheet: c.workbook for c in CONTRACTS.values()}, **(workbook_of or {})}
    columns = _columns(contract)
    try:
        header_row, letters, warnings = _locate_header(raw, contract)
    except SheetRefused as refused:
        raise SheetRefused(_reported(raw, refused.failures)) from None
    body = raw.frame.filter(pl.col(ROW) > header_row)
    cleaned_columns = normalise.clean_columns(body, list(letters.values()))
    text_frame = body.select(pl.col(ROW).cast(pl.Int64),
                             *[cell.cast(pl.Utf8).alias(name) for name, cell in zip(letters, cleaned_columns)])
    text_frame = text_frame.filter(pl.any_horizontal([pl.col(n).is_not_null() for n in letters]))
    rows = text_frame.get_column(ROW).to_list()
    cleaned = {name: text_frame.get_column(name) for name in letters}

    failures: dict[int, list[Failure]] = {}
    typed = {ROW: text_frame.get_column(ROW)}
    for name, column in columns.items():
        if name not in cleaned:
            typed[name] = pl.Series(name, [(column.metadata or {}).get("default")] * len(rows), dtype=column.dtype.type)
            continue
        series, errors = _parse_column(cleaned[name], column, name)
        typed[name] = series
        for position, message in errors.items():
            failures.setdefault(position, []).append(
                fail(raw, rows[position], name, letters[name], cleaned[name][position], "type", f"`{name}` {message}"))
    frame = pl.DataFrame(typed)
    frame, ambiguous = resolve_names(frame, cleaned, columns, index, contract)
    frame = derive_references(frame, columns, index)

    try:
        contract.schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        stats = {(name, check.name): check.statistics for name, column in columns.items() for check in column.checks}
        for case in errors.failure_cases.iter_rows(named=True):
            position, name = case["index"], case["column"]
            if position is None or name not in columns:
                continue
            if any(f.column == name for f in failures.get(position, [])):
                continue
            check = case["check"]
            check_stats = next((s for (n, c), s in stats.items() if n == name and check.startswith(c)), {})
            original = cleaned[name][position] if name in cleaned else None
            rule, message = _describe(check, name, original if original is not None else case["failure_case"],
                                      check_stats)
            derive = (columns[name].metadata or {}).get("derive")
            if rule == "required" and derive:
                target = (columns[derive[0]].metadata or {}).get("references", "").split(".")[0]
                message += f", and `{derive[0]}` names no {singular(target)} it could be taken from"
            failures.setdefault(position, []).append(
                fail(raw, rows[position], name, letters.get(name), original, rule, message))

    # Failures in optional columns warn: the cell is emptied, and the load keeps the stored value for the row.
    keep: dict[int, set[str]] = {}
    soft_warnings: list[Failure] = []
    for position in list(failures):
        hard = []
        for failure in failures[position]:
            if failure.column in columns and _soft(columns[failure.column], failure.column, contract):
                soft_warnings.append(_warned(failure))
                keep.setdefault(position, set()).add(failure.column)
            else:
                hard.append(failure)
        if hard:
            failures[position] = hard
        else:
            del failures[position]
    if keep:
        for name in {c for cs in keep.values() for c in cs}:
            hit = pl.Series([name in keep.get(i, ()) for i in range(len(rows))], dtype=pl.Boolean)
            frame = frame.with_columns(pl.when(hit).then(None).otherwise(pl.col(name)).alias(name))

    own_key_columns = {f"{contract.sheet}.{k}" for k in contract.key}
    while True:
        valid_mask = [i not in failures for i in range(len(rows))]
        own_keys = {target: set(frame.get_column(target.split(".")[1]).filter(pl.Series(valid_mask)).drop_nulls().to_list())
                    for target in own_key_columns} if rows else {t: set() for t in own_key_columns}
        new = [(p, f) for p, f in reference_failures(frame, columns, letters, index, own_keys, raw, contract,
                                                       workbook_of, cleaned, ambiguous)
               if not any(x.column == f.column and x.value == f.value for x in failures.get(p, []))
               and not (f.column in keep.get(p, ()) and f.rule == "reference")]
        if not new:
            break
        for position, failure in new:
            if _soft(columns[failure.column], failure.column, contract):
                # An optional reference to nothing: the row loads and keeps the link it had.
                soft_warnings.append(_warned(failure))
                keep.setdefault(position, set()).add(failure.column)
            else:
                failures.setdefault(position, []).append(failure)

    frame = _with_kept_columns(frame, keep)
    _drop_consequences(failures, columns)
    rejected_mask = pl.Series([i in failures for i in range(len(rows))], dtype=pl.Boolean)
    ordered = _name_duplicates(
        [f for p in sorted(failures) for f in sorted(failures[p], key=lambda f: column_index(f.letter or "A"))])
    # A rejected row's warnings are said too, so that one round trip fixes all of the row (the accounts count a
    # row with warnings only when it loaded).
    warnings = list(raw.notes) + warnings + sorted(soft_warnings, key=lambda w: (w.row or 0,
                                                                                column_index(w.letter or "A")))
    return ValidatedSheet(contract=contract, file=raw.file, valid=frame.filter(~rejected_mask),
                          rejected=text_frame.filter(rejected_mask), failures=_reported(raw, ordered),
                          letters={n: raw.reported(l) for n, l in letters.items()},
                          warnings=_reported(raw, warnings))


def _with_kept_columns(frame: pl.DataFrame, keep: Mapping[int, set[str]]) -> pl.DataFrame:
    """The KEEP column: per row, the sorted columns whose stored value the load keeps; built from the few rows that
    have any (a Python list per row would cost more than the rest of the validation)."""
    pairs = sorted((position, name) for position, names in keep.items() for name in names)
    kept = (pl.DataFrame(pairs, schema={"_position": pl.UInt32, KEEP: pl.Utf8}, orient="row")
            .group_by("_position", maintain_order=True).agg(pl.col(KEEP)))
    return (frame.with_row_index("_position").join(kept, on="_position", how="left", maintain_order="left")
            .drop("_position").with_columns(pl.col(KEEP).fill_null(pl.lit([], dtype=pl.List(pl.Utf8)))))


def _reported(raw: RawSheet, failures: list[Failure]) -> list[Failure]:
    """Failures naming the source's column letters (a mapped sheet's columns are not where they were)."""
    if not raw.reported_letters:
        return failures
    return [dataclasses.replace(f, letter=raw.reported(f.letter)) for f in failures]


def _formula_warnings(name: str, info: WorkbookInfo, contract: SheetContract) -> list[Failure]:
    sheet = next(s for n, s in info.sheets.items() if n.strip().lower() == contract.sheet)
    found = []
    for ref in sheet.formulas_with_value:
        match = re.match(r"([A-Z]+)(\d+)", ref)
        found.append(Failure(name, sheet.name, int(match.group(2)), None, match.group(1), None, "formula",
                             "the cell holds a formula; its last calculated value is what loads, not the formula. "
                             "Paste the value instead if the formula's inputs may change"))
    return found


def _name_duplicates(failures: list[Failure]) -> list[Failure]:
    """A duplicate-key failure names the other rows that hold the same value, so each can be found from the other."""
    rows: dict[tuple, list[int]] = {}
    for f in failures:
        if f.rule == "unique":
            rows.setdefault((f.column, f.value), []).append(f.row)
    out = []
    for f in failures:
        if f.rule == "unique":
            others = [str(r) for r in rows[(f.column, f.value)] if r != f.row]
            f = dataclasses.replace(f, message=f"{f.message} (also on row{'s' if len(others) > 1 else ''} "
                                               f"{', '.join(others)}); keep one of them, or give each its own value")
        out.append(f)
    return out


def _sheet_problems(name: str, info: WorkbookInfo, contract: SheetContract) -> tuple[SheetInfo | None, list[Failure]]:
    sheet = _contract_sheet(info, contract)
    if sheet is None:
        return None, [Failure(name, contract.sheet, None, None, None, None, "missing_sheet",
                              f"the workbook has no sheet `{contract.sheet}` (it has: {', '.join(info.sheets) or 'none'})")]
    problems = []
    if not sheet.visible:
        problems.append(Failure(name, sheet.name, None, None, None, None, "hidden_sheet",
                                f"the sheet `{sheet.name}` is hidden; unhide it (right-click the sheet tab › Unhide) "
                                "so that what is loaded is what people see"))
    for ref in sheet.formulas_without_value[:50]:
        match = re.match(r"([A-Z]+)(\d+)", ref)
        problems.append(Failure(name, sheet.name, int(match.group(2)), None, match.group(1), None, "formula_without_value",
                                "the cell holds a formula with no stored result; open the file in Excel, let it "
                                "calculate, and save it (or paste the values)"))
    for ref in sheet.merged_ranges[:50]:
        start = re.match(r"([A-Z]+)(\d+)", ref)
        problems.append(Failure(name, sheet.name, int(start.group(2)), None, start.group(1), ref, "merged_cells",
                                f"merged cells {ref} in the data area; unmerge them and fill in every cell"))
    return sheet, problems


def _contract_sheet(info: WorkbookInfo, contract: SheetContract) -> SheetInfo | None:
    return next((s for n, s in info.sheets.items() if n.strip().lower() == contract.sheet), None)


def inspect_and_open(path: Path, contracts: tuple[SheetContract, ...], *,
                     isolated: bool = True) -> tuple[WorkbookInfo, dict[str, RawSheet]]:
    """`inspect_workbook` then `open_sheets`, with the isolated reader started as soon as the package checks
    passed, so that it reads while the sheets are scanned; it is cancelled if the scan refuses the file."""
    started: list[ReaderChild] = []

    def start_reader(package: WorkbookInfo) -> None:
        names = [sheet.name for c in contracts if (sheet := _contract_sheet(package, c)) is not None]
        if isolated and names:
            started.append(ReaderChild(str(path), names))

    try:
        info = inspect_workbook(path, on_package=start_reader)
        if started:  # idle until the reader is done: spend it on what the validation would do first anyway
            for contract in contracts:
                contract.prepare()
        return info, open_sheets(path, info, contracts, isolated=isolated, started=started[0] if started else None)
    finally:
        for reader in started:
            reader.cancel()


def open_sheets(path: Path, info: WorkbookInfo, contracts: tuple[SheetContract, ...], *,
                isolated: bool = True, started: ReaderChild | None = None) -> dict[str, RawSheet]:
    """The sheets named by `contracts`, refused when missing, hidden, merged or holding formulas without values;
    read by `started` when it reads exactly these sheets."""
    found, problems = [], []
    for contract in contracts:
        sheet, sheet_problems = _sheet_problems(path.name, info, contract)
        problems += sheet_problems
        if sheet is not None:
            found.append((contract, sheet))
    if problems:
        raise SheetRefused(problems)
    raws = read_sheets(path, [sheet for _c, sheet in found], isolated=isolated, started=started)
    return {contract.sheet: raw for (contract, _s), raw in zip(found, raws)}


def validate_workbook(path: Path, contracts: tuple[SheetContract, ...],
                      references: Mapping[str, set[str]] | None = None, *,
                      workbook_of: Mapping[str, str] | None = None, isolated: bool = True) -> dict[str, ValidatedSheet]:
    """Validate the sheets of one workbook (or of a one-sheet CSV export) in order; each sheet's valid keys feed the
    references of the next."""
    path = Path(path)
    known = as_index(references)
    workbook_of = {**(workbook_of or {}), **{c.sheet: c.workbook for c in contracts}}
    results = {}
    if path.suffix.lower() in (".csv", *JSON_SUFFIXES):
        if len(contracts) != 1:
            raise UnsafeWorkbookError(f"{path.name}: a {path.suffix[1:].upper()} file holds one sheet, and this "
                                      f"registry has {len(contracts)} ({', '.join(c.sheet for c in contracts)}); "
                                      "use the workbook.")
        read = read_csv_sheet if path.suffix.lower() == ".csv" else read_json_sheet
        info, raws = None, {contracts[0].sheet: read(path, contracts[0].sheet)}
    else:
        info, raws = inspect_and_open(path, contracts, isolated=isolated)
    for contract in contracts:
        result = validate_sheet(raws[contract.sheet], contract, known, workbook_of)
        if info is not None:
            result.warnings += _formula_warnings(path.name, info, contract)
        results[contract.sheet] = result
        if contract is not contracts[-1]:  # the last sheet's keys are for the caller to index if it needs them
            known = reference_index({contract.sheet: result}, known)
    return results


def valid_keys(results: Mapping[str, ValidatedSheet]) -> dict[str, set[str]]:
    """`sheet.key` → the keys of the valid rows, for sheets with a one-column natural key: what other sheets
    may reference."""
    return {f"{sheet}.{result.contract.key[0]}": result.keys(result.contract.key[0])
            for sheet, result in results.items() if len(result.contract.key) == 1}


__all__ = ["Failure", "KEEP", "ReferenceIndex", "SheetRefused", "UnsafeWorkbookError", "ValidatedSheet",
           "open_sheets", "reference_index", "valid_keys", "validate_sheet", "validate_workbook"]
