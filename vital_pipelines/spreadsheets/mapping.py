"""Mapping files: how a real export (a CSV, JSON or workbook sheet in someone else's layout) becomes a registry sheet.

A steward writes one YAML file per source and keeps it beside it (`agents_notion_export.mapping.yaml` beside
`agents_notion_export.csv`). It says which entity the source feeds, which source column feeds which contract column
(with value synonyms, extraction rules for relation cells, key normalisation and literal `\\n` turned into newlines),
constants for columns the source lacks, which source columns are kept in the row's `metadata`, and which are
deliberately left out. The mapping is checked as a whole before any row is read: every mistake in it is reported
with its place in the YAML file, and the load is refused (exit 2 in the CLI).

Applying a mapping rewrites the source's cells into the documented layout *without moving them*: each value keeps
its source row, and messages name the source column's letter and header, so a steward fixes the export, not a copy.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vital_pipelines.spreadsheets import normalise
from vital_pipelines.spreadsheets.contracts import CONTRACTS, SheetContract
from vital_pipelines.spreadsheets.reader import ROW, RawSheet
from vital_pipelines.spreadsheets.safety import UnsafeWorkbookError, column_letter

MAPPING_SUFFIX = ".mapping.yaml"
HEADER_SEARCH_ROWS = 10
METADATA_COLUMN = "metadata"

# Relation cells of Notion exports: `Drug Discovery (https://www.notion.so/…)`, several joined by commas.
_RELATION = re.compile(r"\s*([^,(]+?)\s*\((?:https?://[^)]*)\)\s*,?")

EXTRACTIONS = {
    "relation_names": "the names of `Name (https://…)` relation cells, as a list",
    "before_parenthesis": "the text before a ` (…)` suffix",
    "json_list": "a JSON array of strings, as a list",
}
NORMALISATIONS = {
    "slug": "lower-case words joined by hyphens (`Dr. Ada_Lee` → `dr-ada-lee`)",
    "code": "upper-case words joined by hyphens (`role_slug-1` → `ROLE-SLUG-1`)",
}


class MappingError(ValueError):
    """The mapping file itself is wrong; every problem is listed with its place."""

    def __init__(self, file: str, problems: list[str]):
        self.file = file
        self.problems = problems
        super().__init__(f"{file}: " + "; ".join(problems))


class ColumnRule(BaseModel):
    """How one contract column is filled: from a source column (`from`), or a constant (`value`)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: str | list[str] | None = Field(default=None, alias="from")
    value: str | int | float | bool | None = None
    default: str | int | float | bool | None = None
    # keys as YAML reads them: `true:` and `1:` are a boolean and a number, compared as the text they stand for
    values: dict[str | bool | int | float, str | int | float | bool | None] = Field(default_factory=dict)
    extract: Literal["relation_names", "before_parenthesis", "json_list"] | None = None
    pattern: str | None = None
    normalise: Literal["slug", "code"] | None = None
    newlines: bool = False
    # With several `from` columns: every non-empty one, as a list (a wide export's `starter_1_id`, `starter_2_id`, …)
    collect: bool = False

    @property
    def sources(self) -> list[str]:
        """The source columns, in order: with several, a cell takes the first non-empty one."""
        return [] if self.source is None else [self.source] if isinstance(self.source, str) else list(self.source)

    @field_validator("source")
    @classmethod
    def _some_columns(cls, source):
        if isinstance(source, list) and not source:
            raise ValueError("`from` lists no column")
        return source

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern):
        if pattern is not None:
            try:
                compiled = re.compile(pattern)
            except re.error as error:
                raise ValueError(f"`pattern` is not a regular expression ({error})") from None
            if compiled.groups != 1:
                raise ValueError("`pattern` must have exactly one (group): the part of the cell to keep")
        return pattern

    @model_validator(mode="after")
    def _one_origin(self):
        if (self.source is None) == (self.value is None):
            raise ValueError("give either `from` (a source column) or `value` (a constant), not both or neither")
        return self


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity: str
    source: str | None = None
    sheet: str | None = None
    header_row: int | None = Field(default=None, ge=1)
    columns: dict[str, str | ColumnRule] = Field(default_factory=dict)
    metadata: list[str] | Literal["rest"] = Field(default_factory=list)
    ignore: list[str] = Field(default_factory=list)
    # reference column → {value as found: code}, applied after the columns (see crosswalk; a file beside works too)
    crosswalk: dict[str, dict[str | int | float | bool, str | None]] | None = None

    def rules(self) -> dict[str, ColumnRule]:
        return {name: ColumnRule(source=rule) if isinstance(rule, str) else rule for name, rule in self.columns.items()}


def _contract_columns(contract: SheetContract) -> dict:
    return dict(contract.schema.columns)


_UNION_BRANCH = re.compile(r"^(str|int|float|bool|list\[.*\]|function-after\[.*\]|ColumnRule|literal\[.*\])$")


def _place(location) -> str:
    return " › ".join(str(part) for part in location) or "(top level)"


def _check_against_contract(mapping: Mapping) -> list[str]:
    problems = []
    if mapping.entity not in CONTRACTS:
        guess = difflib.get_close_matches(mapping.entity, list(CONTRACTS), n=1)
        return [f"entity: `{mapping.entity}` is not a registry entity"
                + (f"; did you mean `{guess[0]}`?" if guess else "")
                + f" (one of {', '.join(CONTRACTS)})"]
    contract = CONTRACTS[mapping.entity]
    columns = _contract_columns(contract)
    for name, rule in mapping.rules().items():
        if name not in columns:
            guess = difflib.get_close_matches(name, list(columns), n=1, cutoff=0.6)
            problems.append(f"columns › {name}: `{name}` is not a column of `{contract.sheet}`"
                            + (f"; did you mean `{guess[0]}`?" if guess else "")
                            + f" (columns: {', '.join(columns)})")
        elif name == METADATA_COLUMN:
            problems.append(f"columns › {name}: fill `metadata` with the top-level `metadata:` list of source columns")
        elif rule.collect and (columns[name].metadata or {}).get("kind") != "list":
            problems.append(f"columns › {name}: `collect` gathers several cells into a list, and `{name}` is not a "
                            "list column")
    if (mapping.metadata == "rest" or mapping.metadata) and METADATA_COLUMN not in columns:
        problems.append(f"metadata: `{contract.sheet}` rows have no metadata to keep source columns in; list the "
                        "columns under `ignore:` instead")
    return problems


def parse_mapping(text: str, file: str) -> Mapping:
    """A mapping from YAML text; MappingError lists every mistake with its place in the file."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise MappingError(file, [f"{where}not valid YAML ({getattr(error, 'problem', None) or error})"]) from None
    if not isinstance(data, dict):
        raise MappingError(file, ["the file must be a YAML mapping with at least `entity:`"])
    try:
        mapping = Mapping.model_validate(data)
    except ValidationError as error:
        problems: dict[str, list[str]] = {}
        for item in error.errors():
            message = item["msg"].removeprefix("Value error, ")
            if item["type"] == "extra_forbidden":
                message = "is not a mapping setting (entity, source, sheet, header_row, columns, metadata, ignore, crosswalk; " \
                          "per column: from, value, default, values, extract, pattern, normalise, newlines, collect)"
            # A column is a header text or a rule: say what is wrong with the rule, not that it is not a text.
            place = _place([p for p in item["loc"] if not _UNION_BRANCH.match(str(p))])
            branch = [str(p) for p in item["loc"] if _UNION_BRANCH.match(str(p))]
            problems.setdefault(place, []).append((branch[:1] == ["str"], f"{place}: {message}"))
        listed = []
        for found in problems.values():
            specific = [text for is_text_branch, text in found if not is_text_branch]
            listed += specific or [text for _b, text in found]
        raise MappingError(file, listed) from None
    problems = _check_against_contract(mapping)
    if problems:
        raise MappingError(file, problems)
    return mapping


MAX_MAPPING_BYTES = 1_000_000


def load_mapping(path: Path) -> Mapping:
    path = Path(path)
    try:
        if path.stat().st_size > MAX_MAPPING_BYTES:
            raise MappingError(path.name, [f"is {path.stat().st_size:,} bytes; a mapping file is at most "
                                           f"{MAX_MAPPING_BYTES:,} (is this the export rather than its mapping?)"])
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise MappingError(path.name, [f"cannot be read ({error})"]) from None
    return parse_mapping(text, path.name)


def mapping_path_for(source: Path) -> Path:
    """Where the mapping of `source` lives: beside it, named after it (`x.csv` → `x.mapping.yaml`)."""
    source = Path(source)
    return source.with_name(source.name[: -len(source.suffix)] + MAPPING_SUFFIX if source.suffix else source.name
                            + MAPPING_SUFFIX)


def source_for(mapping_file: Path, mapping: Mapping) -> Path:
    """The source a mapping file describes: its `source:` (relative to the mapping's folder), else the one file
    beside it with the same stem."""
    mapping_file = Path(mapping_file)
    if mapping.source:
        candidate = (mapping_file.parent / mapping.source)
        if Path(mapping.source).name != mapping.source:
            raise MappingError(mapping_file.name, [f"source: `{mapping.source}` must be a file name in the same "
                                                   "folder as the mapping"])
        return candidate
    stem = mapping_file.name[: -len(MAPPING_SUFFIX)]
    found = sorted(p for p in mapping_file.parent.glob(f"{stem}.*")
                   if p.name != mapping_file.name and p.suffix.lower() in (".csv", ".json", ".jsonl", ".ndjson", ".xlsx"))
    if len(found) != 1:
        raise MappingError(mapping_file.name, [f"source: {'no' if not found else 'more than one'} file named "
                                               f"`{stem}.csv/.json/.xlsx` beside the mapping; name it with `source:`"])
    return found[0]


# --- applying a mapping ------------------------------------------------------------------------------------------

def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", normalise.fold(text).lower()).strip("-")


def codify(text: str) -> str:
    return slugify(text).upper()


def _extract(text: str, how: str) -> str:
    if how == "relation_names":
        names = [m.group(1) for m in _RELATION.finditer(text)]
        return "{" + ",".join(json.dumps(n) for n in names) + "}" if names else text
    if how == "before_parenthesis":
        # every relation's URL goes (a cell may relate two rows: `A (https://…), B`), then a trailing ` (…)`
        return re.sub(r"\s*\([^()]*\)\s*$", "", re.sub(r"\s*\(https?://[^)]*\)", "", text)).strip()
    if how == "json_list":
        return text  # the list parser reads JSON arrays; the rule documents the intent
    raise AssertionError(how)


@dataclass
class _Transform:
    rule: ColumnRule
    synonyms: dict[str, object] = field(default_factory=dict)

    def __post_init__(self):
        self.synonyms = {normalise.header_key(_as_text(k)) or _as_text(k): v for k, v in self.rule.values.items()}

    def __call__(self, text: str | None) -> str | None:
        rule = self.rule
        if text is None:
            return None if rule.default is None else _as_text(rule.default)
        if rule.newlines:
            text = text.replace("\\r\\n", "\n").replace("\\n", "\n")
        if rule.pattern:
            match = re.search(rule.pattern, text)
            text = match.group(1) if match else text
        if rule.extract:
            text = _extract(text, rule.extract)
        if self.synonyms:
            key = normalise.header_key(text) or text
            if key in self.synonyms:
                replaced = self.synonyms[key]
                return None if replaced is None else _as_text(replaced)
        if rule.normalise == "slug":
            text = slugify(text) or text
        elif rule.normalise == "code":
            text = codify(text) or text
        return text


def _unmerged(outputs: dict) -> tuple[dict, dict[str, list[str]]]:
    """Normalisation must not make two distinct source values one (`heor_specialist_automator` and
    `heor-specialist-automator` are two personas): values it would merge are kept as written. Returns the outputs and
    {the merged form: the source values that would have met there}."""
    meeting: dict[str, list[str]] = {}
    for text, out in outputs.items():
        if text is not None and out is not None:
            meeting.setdefault(out, []).append(text)
    merged = {out: sorted(texts) for out, texts in meeting.items() if len(texts) > 1}
    kept = {text: (text if out in merged else out) for text, out in outputs.items()}
    return kept, merged


def _merge_notes(raw: RawSheet, body: pl.DataFrame, values: pl.Series, merged: dict[str, list[str]], name: str,
                 letter: str | None) -> list:
    """A warning on every row holding a value that normalisation would have merged with another."""
    from vital_pipelines.spreadsheets.validation import Failure

    if not merged:
        return []
    twins = {text: (out, texts) for out, texts in merged.items() for text in texts}
    notes = []
    for row, text in zip(body[ROW].to_list(), values.to_list()):
        if text in twins:
            out, texts = twins[text]
            others = ", ".join(f"`{t}`" for t in texts if t != text)
            notes.append(Failure(raw.file, raw.sheet, row, name, letter, text, "normalise_collision_warning",
                                 f"`{name}` `{text}` and {others} would all become `{out}`; each is kept as written "
                                 "so that they stay apart (remove `normalise` if the source's own keys are meant, or "
                                 "correct the source)", raw.lines.get(row)))
    return notes


def _collected(body: pl.DataFrame, letters: list[str], transform: "_Transform") -> pl.Series:
    """Per row, the non-empty cells of `letters` (each through the rule) as a JSON array, which a list reads."""
    cells = body.select([normalise.clean_column(l).alias(l) for l in letters]).rows()
    items = [[t for t in (transform(c) for c in row if c is not None) if t is not None] for row in cells]
    return pl.Series([json.dumps(i, ensure_ascii=False) if i else None for i in items], dtype=pl.Utf8)


def _as_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _find_header(raw: RawSheet, wanted: list[str], header_row: int | None, file: str) -> tuple[int, dict[str, str]]:
    """The header row and {header text as written: letter}; the row with most of the `wanted` headers in the first
    rows, or the `header_row` the mapping names."""
    wanted_keys = {normalise.header_key(w) for w in wanted}
    best: tuple[int, int, dict[str, str]] | None = None
    for record in raw.frame.head(HEADER_SEARCH_ROWS if header_row is None else header_row + 1).iter_rows(named=True):
        if header_row is not None and record[ROW] != header_row:
            continue
        texts = {}
        for letter in raw.letters:
            text = normalise.clean_cell(record[letter])
            if text is not None:
                texts.setdefault(text, letter)
        score = sum(normalise.header_key(t) in wanted_keys for t in texts)
        if best is None or score > best[1]:
            best = (record[ROW], score, texts)
    if best is None:
        raise MappingError(file, [f"header_row: the source has no row {header_row}" if header_row else
                                  "the source is empty"])
    return best[0], best[2]


def _metadata_value(text: str):
    """A cell kept in metadata: a JSON object or array (a JSON export's nested value) as itself, else the text."""
    if text[:1] in "{[" and text[-1:] in "}]":
        try:
            return json.loads(text)
        except ValueError:
            pass  # a Postgres array literal `{a,b}` or plain text: kept as written
    return text


def apply_mapping(raw: RawSheet, mapping: Mapping, mapping_file: str) -> RawSheet:
    """The source's cells as the documented sheet of `mapping.entity`: one header row of contract column names,
    values rewritten by the rules, each cell on its own source row. Headers the mapping names but the source lacks
    refuse the mapping with the closest header the source has."""
    rules = mapping.rules()
    sourced = [name for r in rules.values() for name in r.sources]
    listed = sourced + (mapping.metadata if isinstance(mapping.metadata, list) else []) + mapping.ignore
    header_row, headers = _find_header(raw, listed or [], mapping.header_row, raw.file)
    by_key: dict[str, str] = {}
    for text, letter in headers.items():
        by_key.setdefault(normalise.header_key(text), letter)
    problems = []

    def letter_of(text: str, place: str) -> str | None:
        letter = by_key.get(normalise.header_key(text))
        if letter is None:
            guess = difflib.get_close_matches(text, list(headers), n=1, cutoff=0.5)
            problems.append(f"{place}: the source has no column `{text}`"
                            + (f"; did you mean `{guess[0]}`?" if guess else "")
                            + f" (its header, row {header_row}: {', '.join(headers)})")
        return letter

    body = raw.frame.filter(pl.col(ROW) > header_row)
    notes = list(raw.notes)
    used: set[str] = set()
    mapped: list[tuple[str, pl.Series]] = []
    reported: dict[str, str] = {}
    for name, rule in rules.items():
        if rule.source is not None:
            found = [letter_of(text, f"columns › {name} › from") for text in rule.sources]
            if None in found:
                continue
            used.update(found)
            letter = found[0]
            if rule.collect:
                mapped.append((name, _collected(body, found, _Transform(rule))))
                reported[f"M{len(mapped)}"] = letter
                continue
            values = body.select(pl.coalesce([normalise.clean_column(l) for l in found])).to_series()
        else:
            letter = None
            values = pl.Series([_as_text(rule.value)] * body.height, dtype=pl.Utf8)
        transform = _Transform(rule)
        unique = values.unique().to_list()
        outputs = {v: transform(v) for v in unique}
        if rule.normalise:
            outputs, merged = _unmerged(outputs)
            notes += _merge_notes(raw, body, values, merged, name, letter)
        lookup = pl.DataFrame({"text": pl.Series(list(outputs), dtype=pl.Utf8),
                               "out": pl.Series(list(outputs.values()), dtype=pl.Utf8)})
        out = pl.DataFrame({"text": values}).join(lookup, on="text", how="left", nulls_equal=True,
                                                  maintain_order="left")["out"]
        mapped.append((name, out))
        reported[f"M{len(mapped)}"] = letter or f"({name} from the mapping)"
    metadata_letters = []
    if mapping.metadata == "rest":
        ignored = {by_key.get(normalise.header_key(t)) for t in mapping.ignore}
        metadata_letters = [(t, l) for t, l in headers.items() if l not in used and l not in ignored]
    else:
        for text in mapping.metadata:
            letter = letter_of(text, "metadata")
            if letter is not None:
                metadata_letters.append((text, letter))
    for text in mapping.ignore:
        letter_of(text, "ignore")
    if problems:
        raise MappingError(mapping_file, problems)
    handled = used | {l for _t, l in metadata_letters} | {by_key.get(normalise.header_key(t)) for t in mapping.ignore}

    frame_columns = {ROW: pl.concat([pl.Series([header_row], dtype=pl.Int64), body[ROW]])}
    for number, (name, values) in enumerate(mapped, 1):
        frame_columns[f"M{number}"] = pl.concat([pl.Series([name], dtype=pl.Utf8), values])
    if metadata_letters:
        records = body.select([normalise.clean_column(l).alias(t) for t, l in metadata_letters]).to_dicts()
        texts = [json.dumps({k: _metadata_value(v) for k, v in r.items() if v is not None}, ensure_ascii=False)
                 for r in records]
        column_id = f"M{len(mapped) + 1}"
        frame_columns[column_id] = pl.Series([METADATA_COLUMN] + texts, dtype=pl.Utf8)
        reported[column_id] = ", ".join(l for _t, l in metadata_letters)
    # Columns the mapping does not mention pass through under their own header: a documented name loads, anything
    # else is reported as the sheet's validation reports any extra column.
    for letter in raw.letters:
        if letter not in handled:
            frame_columns[letter] = raw.frame.filter(pl.col(ROW) >= header_row)[letter]
            reported[letter] = letter
    frame = pl.DataFrame(frame_columns)
    return RawSheet(raw.file, raw.sheet, frame, header_row, reported_letters=reported, lines=raw.lines, notes=notes)


def read_source(path: Path, sheet: str | None, entity: str, *, isolated: bool = True) -> RawSheet:
    """Every cell of a source (CSV, JSON or one sheet of a workbook) as text."""
    from vital_pipelines.spreadsheets.csv_source import read_csv_sheet
    from vital_pipelines.spreadsheets.json_source import JSON_SUFFIXES, read_json_sheet
    from vital_pipelines.spreadsheets.reader import read_sheets
    from vital_pipelines.spreadsheets.safety import inspect_workbook

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv_sheet(path, entity)
    if suffix in JSON_SUFFIXES:
        return read_json_sheet(path, entity)
    info = inspect_workbook(path)
    wanted = sheet or entity
    found = next((s for n, s in info.sheets.items() if n.strip().lower() == wanted.strip().lower()), None)
    if found is None and sheet is None and len(info.sheets) == 1:
        found = next(iter(info.sheets.values()))
    if found is None:
        raise UnsafeWorkbookError(f"{path.name}: no sheet `{wanted}` (it has: {', '.join(info.sheets)}); name the "
                                  "sheet with `sheet:` in the mapping")
    return read_sheets(path, [found], isolated=isolated)[0]


__all__ = ["ColumnRule", "EXTRACTIONS", "MAPPING_SUFFIX", "Mapping", "MappingError", "NORMALISATIONS",
           "apply_mapping", "codify", "column_letter", "load_mapping", "mapping_path_for", "parse_mapping",
           "read_source", "slugify", "source_for"]
