"""Holding a sheet to its contract: header matching, typing every cell, Pandera's rules, cross-sheet references.

The result separates valid rows (typed, ready to load) from rejected ones, and explains every rejection as a
`Failure` that names the file, sheet, cell, value, rule and a fix in plain words.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import difflib
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
from vital_pipelines.spreadsheets.safety import SheetInfo, UnsafeWorkbookError, WorkbookInfo, column_index, inspect_workbook

HEADER_SEARCH_ROWS = 10


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

    def as_dict(self) -> dict:
        return {"file": self.file, "sheet": self.sheet, "cell": self.cell, "row": self.row, "column": self.column,
                "value": self.value, "rule": self.rule, "message": self.message,
                **({"line": self.line} if self.line else {})}


class SheetRefused(ValueError):
    """The whole sheet cannot be read (missing, hidden, bad headers, merged cells, formulas without values)."""

    def __init__(self, failures: list[Failure]):
        self.failures = failures
        super().__init__("; ".join(f"{f.location}: {f.message}" for f in failures))


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


def _fail(raw: RawSheet, row, column, letter, value, rule, message) -> Failure:
    return Failure(raw.file, raw.sheet, row, column, letter, value, rule, message, raw.lines.get(row))


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
        raise SheetRefused([_fail(raw, raw.header_row or 1, None, None, None, "headers",
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
            failures.append(_fail(raw, header_row, name, letter, text, "duplicate_header",
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
                failures.append(_fail(raw, header_row, None, letter, None, "blank_header",
                                      f"column {letter} has data in {filled.height} row(s) (first {letter}"
                                      f"{filled[ROW][0]}) but no header; write the column's name in {letter}"
                                      f"{header_row}, or delete the data"))
            continue
        guess = _closest(text, lookup)
        if guess is not None and guess not in letters:
            failures.append(_fail(raw, header_row, None, letter, text, "unknown_header",
                                  f"`{text}` is not a column of `{contract.sheet}`; did you mean `{guess}`? Rename "
                                  f"the header (its data would not be loaded)"))
        else:
            hint = f" (the closest documented column is `{guess}`, already in column {letters[guess]})" if guess else ""
            warnings.append(_fail(raw, header_row, None, letter, text, "unknown_header",
                                  f"`{text}` is not a column of `{contract.sheet}`{hint}; its values are not loaded"))
    def derivable(name: str, depth: int = 0) -> bool:
        derive = (columns[name].metadata or {}).get("derive")
        return bool(derive) and depth < len(columns) and (derive[0] in letters or derivable(derive[0], depth + 1))

    missing = [n for n, c in columns.items() if _required(c) and n not in letters and not derivable(n)]
    if missing:
        failures.append(_fail(raw, header_row, None, None, None, "missing_header",
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
        allowed = ", ".join(stats.get("allowed_values", []))
        return "allowed_values", f"`{column}` must be one of {allowed}; got {shown}"
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


def singular(word: str) -> str:
    """`responsibilities` → `responsibility`, `roles` → `role`: how a message names one row of a sheet."""
    if word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") else word


@dataclass(frozen=True)
class ReferenceIndex:
    """What a reference may name, per target (`sheet.key`): its keys, and its keys by name (blind: case, spaces,
    accents and punctuation ignored), so `IT/Digital` finds the function whose code is `IT`."""

    keys: Mapping[str, set[str]]
    names: Mapping[str, Mapping[str, set[str]]] = field(default_factory=dict)
    titles: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # target → key → name as written
    # target → key → the row's own references (a role's `department_code`, a department's `function_code`)
    parents: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)
    _options: dict = field(default_factory=dict, compare=False, repr=False)  # target → {blind key: code}
    _suggestions: dict = field(default_factory=dict, compare=False, repr=False)  # (target, text) → hint

    def resolve(self, target: str, text: str, cased: str) -> tuple[str | None, set[str]]:
        """(the key `text` names, or None; the candidates when a name fits several keys)."""
        known = self.keys.get(target, set())
        if cased in known:
            return cased, set()
        blind = normalise.blind_key(text)
        by_key = {normalise.blind_key(k): k for k in known}
        if blind in by_key:
            return by_key[blind], set()
        candidates = set(self.names.get(target, {}).get(blind, set()))
        if len(candidates) == 1:
            return next(iter(candidates)), set()
        return None, candidates

    def digest(self) -> str:
        """A hash of what the index knows, for a cache whose entries depend on it."""
        text = json.dumps([sorted((t, sorted(v)) for t, v in self.keys.items()),
                           sorted((t, sorted((n, sorted(c)) for n, c in v.items())) for t, v in self.names.items()),
                           sorted((t, sorted(v.items())) for t, v in self.titles.items()),
                           sorted((t, sorted((k, sorted(p.items())) for k, p in v.items()))
                                  for t, v in self.parents.items())])
        return hashlib.sha256(text.encode()).hexdigest()

    def suggestion(self, target: str, text: str) -> str:
        """`; did you mean `IT` (IT/Digital)?` from the closest keys and names, or nothing. The candidates of a target
        are built once, and compared by rapidfuzz (difflib's ratio per candidate made a sheet of 1,000 unknown
        names cost seconds)."""
        from rapidfuzz import fuzz, process

        remembered = self._suggestions.get((target, text))
        if remembered is not None:
            return remembered
        options = self._options.get(target)
        if options is None:
            options = {normalise.blind_key(k): k for k in self.keys.get(target, set())}
            for name_key, codes in self.names.get(target, {}).items():
                if len(codes) == 1:
                    options.setdefault(name_key, next(iter(codes)))
            self._options[target] = options
        close = process.extract(normalise.blind_key(text), list(options), scorer=fuzz.ratio, limit=2,
                                score_cutoff=70)
        titles = self.titles.get(target, {})
        shown = [f"`{code}`" + (f" ({titles[code]})" if titles.get(code) and titles[code] != code else "")
                 for code in dict.fromkeys(options[c] for c, _score, _i in close)]
        hint = f"; did you mean {' or '.join(shown)}?" if shown else ""
        self._suggestions[(target, text)] = hint
        return hint


def reference_index(results: Mapping[str, "ValidatedSheet"], base: ReferenceIndex | None = None) -> ReferenceIndex:
    """The index of `base` (e.g. what the database holds) plus the valid rows of `results`."""
    keys = {t: set(v) for t, v in (base.keys if base else {}).items()}
    names = {t: {n: set(c) for n, c in v.items()} for t, v in (base.names if base else {}).items()}
    titles = {t: dict(v) for t, v in (base.titles if base else {}).items()}
    parents = {t: {k: dict(p) for k, p in v.items()} for t, v in (base.parents if base else {}).items()}
    for sheet, result in results.items():
        if len(result.contract.key) != 1:
            continue
        key = result.contract.key[0]
        target = f"{sheet}.{key}"
        keys.setdefault(target, set()).update(result.keys(key))
        label = result.contract.entity.label if result.contract.entity else "name"
        if label in result.valid.columns and key != label:
            by_name = names.setdefault(target, {})
            for code, name in result.valid.select(key, label).iter_rows():
                if code is not None and name is not None:
                    by_name.setdefault(normalise.blind_key(name), set()).add(code)
                    titles.setdefault(target, {})[code] = name
        if "metadata" in result.valid.columns:
            # the id the source system gave the row (a platform export's `id`, kept in metadata) names it too
            by_name = names.setdefault(target, {})
            source_ids = result.valid.select(key, pl.col("metadata").str.json_path_match("$.id"))
            for code, source_id in source_ids.iter_rows():
                if code is not None and source_id:
                    by_name.setdefault(normalise.blind_key(source_id), set()).add(code)
        linked = [c for c in PARENT_COLUMNS if c in result.valid.columns]
        if linked:
            own = parents.setdefault(target, {})
            for record in result.valid.select(key, *linked).iter_rows(named=True):
                if record[key] is not None:
                    own[record[key]] = {c: record[c] for c in linked if record[c] is not None}
    return ReferenceIndex(keys, names, titles, parents)


# The references a row's parent rows carry, from which an empty reference can be derived (see `_derive`).
PARENT_COLUMNS = ("department_code", "function_code")


def _derive(frame: pl.DataFrame, columns: dict[str, pa.Column], index: ReferenceIndex) -> pl.DataFrame:
    """Empty references filled from another reference of the same row, where the contract says so: a persona's
    department is its role's department, its function that department's function. Only empty cells are filled;
    a value the sheet gives is checked as written."""
    for _ in range(2):  # function ← department ← role: a second pass sees the department the first one filled
        for name, column in columns.items():
            derive = (column.metadata or {}).get("derive")
            if not derive or name not in frame.columns or derive[0] not in frame.columns:
                continue
            via, attribute = derive
            target = (columns[via].metadata or {}).get("references")
            known = index.parents.get(target, {})
            if not known:
                continue
            found = frame.get_column(via).replace_strict(
                {key: parent.get(attribute) for key, parent in known.items()}, default=None, return_dtype=pl.Utf8)
            frame = frame.with_columns(pl.coalesce(pl.col(name), found).alias(name))
    return frame


def _as_index(references) -> ReferenceIndex:
    if isinstance(references, ReferenceIndex):
        return references
    return ReferenceIndex(dict(references or {}))


def _resolve_names(frame: pl.DataFrame, cleaned: Mapping[str, pl.Series], columns: dict[str, pa.Column],
                   index: ReferenceIndex, contract: SheetContract) -> tuple[pl.DataFrame, dict[tuple[str, str], set[str]]]:
    """Reference cells that name a row by name (or by a differently spelt key) rewritten to its key; the cells
    whose name fits several keys, with the candidates, for the message."""
    ambiguous: dict[tuple[str, str], set[str]] = {}
    for name, column in columns.items():
        target = (column.metadata or {}).get("references")
        if not target or name not in cleaned or target.split(".")[0] == contract.sheet or target not in index.keys:
            continue
        def fix(value: str) -> str:
            resolved, candidates = index.resolve(target, value, value)
            if candidates:
                ambiguous[(name, value)] = candidates
            return resolved or value

        series = frame.get_column(name)
        if isinstance(series.dtype, pl.List):
            out = series.map_elements(lambda items: [fix(i) for i in items], return_dtype=series.dtype,
                                      skip_nulls=True)
        else:
            unique = [v for v in series.unique().to_list() if v is not None]
            mapping = {v: fix(v) for v in unique}
            out = series.replace_strict(mapping, default=series, return_dtype=series.dtype) if mapping else series
        frame = frame.with_columns(out.alias(name))
    return frame, ambiguous


def _reference_failures(frame: pl.DataFrame, columns: dict[str, pa.Column], letters: dict[str, str],
                        index: ReferenceIndex, own_keys: Mapping[str, set[str]], raw: RawSheet,
                        contract: SheetContract, workbook_of: Mapping[str, str],
                        written: Mapping[str, pl.Series], ambiguous: Mapping[tuple[str, str], set[str]]
                        ) -> list[tuple[int, Failure]]:
    found = []
    for name, column in columns.items():
        target = (column.metadata or {}).get("references")
        if not target or name not in frame.columns:
            continue
        own = target.split(".")[0] == contract.sheet
        known = own_keys.get(target) if own else index.keys.get(target)
        if known is None:
            continue
        sheet, key = target.split(".")
        where = f"{workbook_of.get(sheet, sheet)} › {sheet}"
        as_written = written.get(name)
        is_list = isinstance(frame.schema[name], pl.List)
        for position, item in _unknown_references(frame.get_column(name), known):
            row = frame[ROW][position]
            shown = item
            if as_written is not None and not is_list:
                shown = as_written[position] or item
            elif as_written is not None and as_written[position] is not None:
                # a list item as written: the parsed item was cased like the key
                spelt = {i.lower(): i for i in normalise.parse_list(as_written[position]) or []}
                shown = spelt.get(item.lower(), item)
            candidates = ambiguous.get((name, shown), set())
            if candidates:
                message = (f"`{name}` `{shown}` is the name of {len(candidates)} {sheet} "
                           f"({', '.join(sorted(candidates))}); write the {key} of the one you mean")
            else:
                hint = "" if own else index.suggestion(target, shown)
                message = (f"`{name}` must name an existing {singular(sheet)} (its {key} or name, in the "
                           f"database or in {where}); `{shown}` is not there or was rejected{hint}")
            found.append((position, _fail(raw, row, name, letters.get(name), shown, "reference", message)))
    return found


def _unknown_references(values: pl.Series, known: set[str]) -> list[tuple[int, str]]:
    """(row position, item) for every reference (a list column's items one by one, in order) not among `known`."""
    frame = pl.DataFrame({"_position": pl.int_range(0, values.len(), dtype=pl.UInt32, eager=True), "item": values})
    if isinstance(values.dtype, pl.List):
        frame = frame.explode("item")
    known_keys = pl.Series(list(known), dtype=pl.Utf8)
    return frame.filter(pl.col("item").is_not_null() & ~pl.col("item").is_in(known_keys.implode())).rows()


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
    index = _as_index(references)
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
                _fail(raw, rows[position], name, letters[name], cleaned[name][position], "type", f"`{name}` {message}"))
    frame = pl.DataFrame(typed)
    frame, ambiguous = _resolve_names(frame, cleaned, columns, index, contract)
    frame = _derive(frame, columns, index)

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
                _fail(raw, rows[position], name, letters.get(name), original, rule, message))

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
        new = [(p, f) for p, f in _reference_failures(frame, columns, letters, index, own_keys, raw, contract,
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
    rejected_rows = {f.row for f in ordered}
    warnings = list(raw.notes) + warnings + sorted((w for w in soft_warnings if w.row not in rejected_rows),
                                 key=lambda w: (w.row or 0, column_index(w.letter or "A")))
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
    known = _as_index(references)
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
