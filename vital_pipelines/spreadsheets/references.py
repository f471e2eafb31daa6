"""References between sheets: what a reference may name (`ReferenceIndex`: keys, names, titles and parents per
target, from the database and the sheets validated before), names rewritten to keys, empty references derived from
a parent's, and a failure for each reference that names nothing (with the closest candidates)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandera.polars as pa
import polars as pl

from vital_pipelines.spreadsheets import normalise
from vital_pipelines.spreadsheets.contracts import SheetContract
from vital_pipelines.spreadsheets.findings import Failure, fail, singular
from vital_pipelines.spreadsheets.reader import ROW, RawSheet


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


def derive(frame: pl.DataFrame, columns: dict[str, pa.Column], index: ReferenceIndex) -> pl.DataFrame:
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


def as_index(references) -> ReferenceIndex:
    if isinstance(references, ReferenceIndex):
        return references
    return ReferenceIndex(dict(references or {}))


def resolve_names(frame: pl.DataFrame, cleaned: Mapping[str, pl.Series], columns: dict[str, pa.Column],
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


def reference_failures(frame: pl.DataFrame, columns: dict[str, pa.Column], letters: dict[str, str],
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
        for position, item in unknown_references(frame.get_column(name), known):
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
            found.append((position, fail(raw, row, name, letters.get(name), shown, "reference", message)))
    return found


def unknown_references(values: pl.Series, known: set[str]) -> list[tuple[int, str]]:
    """(row position, item) for every reference (a list column's items one by one, in order) not among `known`."""
    frame = pl.DataFrame({"_position": pl.int_range(0, values.len(), dtype=pl.UInt32, eager=True), "item": values})
    if isinstance(values.dtype, pl.List):
        frame = frame.explode("item")
    known_keys = pl.Series(list(known), dtype=pl.Utf8)
    return frame.filter(pl.col("item").is_not_null() & ~pl.col("item").is_in(known_keys.implode())).rows()


__all__ = ["PARENT_COLUMNS", "ReferenceIndex", "as_index", "derive", "reference_failures", "reference_index",
           "resolve_names"]
