"""`vital-pipelines map --suggest`: a first mapping file for an export, from its header and its values.

Each contract column is paired with the source column that fits it best, by two kinds of evidence: how close the
header is to the column's name or aliases, and how well the column's values fit the contract (allowed values of an
enum, the codes and names a reference may name, numbers, lists, key formats). Values outside an enum get the closest
allowed value as a synonym. Columns nothing fits go to `metadata` (or `ignore` for `_private` columns). Every pairing
the header alone does not settle is marked `# guess` for the steward to confirm; nothing is written silently.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pandera.polars as pa
import polars as pl
import yaml

from vital_pipelines.spreadsheets import normalise
from vital_pipelines.spreadsheets.contracts import CONTRACTS, SheetContract
from vital_pipelines.spreadsheets.mapping import HEADER_SEARCH_ROWS, METADATA_COLUMN, read_source, slugify
from vital_pipelines.spreadsheets.reader import ROW
from vital_pipelines.spreadsheets.validation import ReferenceIndex, reference_index, validate_workbook

ACCEPT = 0.55
SAMPLE = 2000
# Value evidence: how much it says about a column (numbers fit many columns; allowed values and references few).
STRONG, WEAK = 0.45, 0.15


def _header(raw) -> tuple[int, dict[str, str]]:
    """The row with most filled cells among the first rows, and {header text: letter}."""
    best = None
    for record in raw.frame.head(HEADER_SEARCH_ROWS).iter_rows(named=True):
        texts = {}
        for letter in raw.letters:
            text = normalise.clean_cell(record[letter])
            if text is not None:
                texts.setdefault(text, letter)
        if best is None or len(texts) > len(best[1]):
            best = (record[ROW], texts)
    return best or (1, {})


def _allowed(column: pa.Column) -> list[str]:
    return next((list(c.statistics["allowed_values"]) for c in column.checks if c.name == "isin"), [])


def _name_score(header: str, name: str, column: pa.Column) -> float:
    candidates = [name, *(column.metadata or {}).get("aliases", [])]
    blind = normalise.blind_key(header)
    best = 0.0
    for candidate in candidates:
        key = normalise.blind_key(candidate)
        ratio = difflib.SequenceMatcher(None, blind, key).ratio()
        if blind == key:
            ratio = 1.0
        elif key and blind.count("_") <= 1 and (blind.startswith(key + "_") or blind.endswith("_" + key)):
            ratio = max(ratio, 0.8)
        best = max(best, ratio)
    return best


_RELATION_SUFFIX = re.compile(r"\s*\(https?://[^)]*\)\s*$")
_IDENTIFIER = re.compile(r"[A-Za-z0-9]+([-_.][A-Za-z0-9]+)*")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def _value_score(values: list[str], column: pa.Column, index: ReferenceIndex, unique_share: float = 1.0,
                 is_key: bool = False) -> float | None:
    """The share of values that fit the column, or None when values say nothing about it (free text)."""
    if not values:
        return None
    meta = column.metadata or {}
    kind, target = meta.get("kind"), meta.get("references")

    def share(test) -> float:
        return sum(1 for v in values if test(v)) / len(values)

    if kind == "enum":
        allowed = {normalise.blind_key(a) for a in _allowed(column)}
        return share(lambda v: normalise.blind_key(v) in allowed)
    if target and target in index.keys:
        if kind == "list":
            return share(lambda v: all(index.resolve(target, i, i)[0] for i in normalise.parse_list(v)))
        return share(lambda v: index.resolve(target, v, v.upper() if meta.get("case") == "upper" else v)[0] is not None)
    if kind == "key":
        # snake_case, kebab-case or CODE-like identifiers all fit: `normalise:` turns them into the key format.
        fits = share(lambda v: _IDENTIFIER.fullmatch(v) is not None and re.search("[A-Za-z]", v) is not None
                     and not _UUID.fullmatch(v))
        return fits * unique_share if is_key else fits
    if kind == "int":
        return share(lambda v: re.fullmatch(r"[+-]?\d+(\.0+)?", v) is not None)
    if kind == "float":
        return share(lambda v: re.fullmatch(r"[+-]?\d*\.?\d+", v) is not None)
    if kind == "bool":
        return share(lambda v: v.lower() in normalise.TRUE_WORDS | normalise.FALSE_WORDS)
    if kind == "list":
        return share(lambda v: v.startswith(("[", "{")) or ";" in v or "\n" in v)
    if kind == "json":
        return share(lambda v: v.startswith("{") and v.endswith("}"))
    return None


def _score(header: str, values: list[str], name: str, column: pa.Column, index: ReferenceIndex,
           unique_share: float, is_key: bool) -> tuple[float, float, float | None]:
    by_name = _name_score(header, name, column)
    if (column.metadata or {}).get("kind") != "list":
        values = [_RELATION_SUFFIX.sub("", v) for v in values]  # judge a Notion relation cell by its name
    by_value = _value_score(values, column, index, unique_share, is_key)
    if header.startswith("_"):
        return 0.0, by_name, by_value  # columns an export adds about itself
    if by_value is None:
        return by_name, by_name, None
    meta = column.metadata or {}
    if name == "tenant" and by_name < 0.75:
        return 0.0, by_name, by_value  # any slug-like column fits a tenant's values; only its header says it is one
    weight = STRONG if meta.get("kind") in ("enum", "key") or meta.get("references") else WEAK
    total = (1 - weight) * by_name + weight * by_value
    if meta.get("references") and by_name >= 0.75 and sum(
            1 for v in values if re.search("[A-Za-z]", v) and not _UUID.fullmatch(v)) >= len(values) / 2:
        # References may be written by name, and the rows they name may not be known here: the header decides.
        total = max(total, ACCEPT)
    return (max(total, 0.9) if by_name >= 0.999 else total), by_name, by_value


def _pairs(contract: SheetContract, headers: dict[str, list[str]], index: ReferenceIndex, filled: dict[str, int]):
    columns = {n: c for n, c in contract.schema.columns.items() if n != METADATA_COLUMN}
    scored = []
    for name, column in columns.items():
        for header, values in headers.items():
            unique_share = len(values) / filled[header] if filled.get(header) else 0.0
            total, by_name, by_value = _score(header, values, name, column, index, unique_share,
                                              name in contract.key)
            scored.append((total, name, header, by_name, by_value))
    keys = set(contract.key)
    scored.sort(key=lambda s: (s[1] not in keys or s[0] < ACCEPT, -s[0]))
    chosen: dict[str, tuple] = {}
    taken: set[str] = set()
    for total, name, header, by_name, by_value in scored:
        if total >= ACCEPT and name not in chosen and header not in taken:
            chosen[name] = (header, total, by_name, by_value)
            taken.add(header)
    # A key no header names: an identifier-like column whose values are unique identifiers (`slug`, `unique_id`).
    for total, name, header, by_name, by_value in scored:
        if name in keys and name not in chosen and header not in taken and (by_value or 0) >= 0.8 and \
                set(normalise.blind_key(header).split("_")) & {"slug", "code", "key", "id", "uid"}:
            chosen[name] = (header, total, by_name, by_value)
            taken.add(header)
    return columns, chosen


def _references(raw_dir: Path | None) -> ReferenceIndex:
    index = ReferenceIndex({})
    if raw_dir is None:
        return index
    for workbook in ("org_structure.xlsx", "personas.xlsx"):
        path = Path(raw_dir) / workbook
        if path.exists():
            contracts = tuple(c for c in CONTRACTS.values() if c.workbook == workbook)
            index = reference_index(validate_workbook(path, contracts, index), index)
    return index


def suggest_mapping(source: Path, *, entity: str | None = None, raw_dir: Path | None = None) -> str:
    """The YAML text of a first mapping for `source`; see the module docstring."""
    from vital_pipelines import config

    source = Path(source)
    raw = read_source(source, None, entity or "sheet")
    header_row, letters = _header(raw)
    body = raw.frame.filter(pl.col(ROW) > header_row)
    cells = {text: body.select(normalise.clean_column(letter)).to_series().drop_nulls() for text, letter in letters.items()}
    headers = {text: series.unique().sort().head(SAMPLE).to_list() for text, series in cells.items()}
    filled = {text: min(series.len(), SAMPLE) for text, series in cells.items()}
    index = _references(raw_dir if raw_dir is not None else config.RAW_DIR)
    named = _named_entities(source.stem)
    candidates = [CONTRACTS[entity]] if entity else [CONTRACTS[n] for n in named] or list(CONTRACTS.values())
    ranked = []
    for contract in candidates:
        columns, chosen = _pairs(contract, headers, index, filled)
        ranked.append((_confidence(contract, columns, chosen, contract.sheet in named, len(headers)), contract,
                       columns, chosen))
    ranked.sort(key=lambda r: -r[0])
    confidence, contract, columns, chosen = ranked[0]
    if confidence < CONFIDENT and not entity:
        closest = ", ".join(f"{c.sheet} ({score:.2f})" for score, c, _cols, _ch in ranked[:3])
        why = (f"it is named after {', '.join(named)}, whose required columns it does not have" if named else
               "its header and values fit no entity well enough")
        raise NoEntityFits(f"{source.name}: no entity fits ({why}); closest: {closest}. Name the entity with "
                           f"--entity if you know it, or rename the file after its registry.")
    return _render(source, header_row, contract, columns, chosen, headers, index, confidence,
                   contract.sheet in named)


CONFIDENT = 0.5


def export_headers(source: Path) -> list[str]:
    """The export's column headers as `suggest_mapping` finds them (the fullest of its first rows), in order."""
    raw = read_source(Path(source), None, "sheet")
    _row, letters = _header(raw)
    return sorted(letters, key=lambda text: (len(letters[text]), letters[text]))


def mapping_from_choices(suggested: str, choices: dict[str, str | None], headers: list[str], source_name: str) -> str:
    """The mapping a steward confirmed column by column (`choices`: contract column → export header, or None for
    none), built on the suggestion: a pairing the steward kept keeps its suggested rules (synonyms, normalising);
    a changed one is the plain header. The export's other columns go to `metadata` (`ignore` for `_private` ones,
    or where the entity keeps no metadata)."""
    data = yaml.safe_load(suggested) or {}
    contract = CONTRACTS[data["entity"]]
    proposed = data.get("columns") or {}
    columns: dict[str, object] = {}
    for name, header in choices.items():
        if name not in contract.schema.columns or not header or header not in headers:
            continue
        old = proposed.get(name)
        kept = old if isinstance(old, dict) and old.get("from") == header else None
        columns[name] = kept or header
    used = {c["from"] if isinstance(c, dict) else c for c in columns.values()}
    rest = [h for h in headers if h not in used]
    keeps_metadata = METADATA_COLUMN in contract.schema.columns
    mapping = {"source": source_name, "entity": data["entity"], "header_row": data.get("header_row", 1),
               "columns": columns}
    if keeps_metadata and [h for h in rest if not h.startswith("_")]:
        mapping["metadata"] = [h for h in rest if not h.startswith("_")]
    ignored = [h for h in rest if h.startswith("_") or not keeps_metadata]
    if ignored:
        mapping["ignore"] = ignored
    return ("# Mapping confirmed column by column in the steward portal (from `map --suggest`'s proposal).\n"
            + yaml.safe_dump(mapping, sort_keys=False, allow_unicode=True, width=10_000))


class NoEntityFits(ValueError):
    """No registry entity fits the export well enough for a mapping to be proposed; nothing is written."""


def _named_entities(stem: str) -> list[str]:
    """The entities a file's name names (`db_export_personas_with_roles` → personas, roles): its sheet name, table
    name or singular, as whole words of the name. The file's name is strong evidence: when it names entities, only
    they are candidates (a file named `personas.csv` is never mapped as another entity)."""
    words = normalise.blind_key(stem).split("_")
    text = "_" + "_".join(words) + "_"
    named = []
    for name, contract in CONTRACTS.items():
        entity = contract.entity
        spellings = {name, name.removesuffix("s"), singular_of(name)}
        if entity is not None:
            spellings |= {entity.table, entity.table.removesuffix("s")}
        if any(f"_{s}_" in text for s in spellings if s):
            named.append(name)
    return named


def singular_of(word: str) -> str:
    return word[:-3] + "y" if word.endswith("ies") else word.removesuffix("s")


def _confidence(contract: SheetContract, columns: dict, chosen: dict, named: bool, headers: int) -> float:
    """How sure the choice of entity is, 0–1: the share of its required columns the export fills (one paired by
    its values alone counts half: any identifier-like column fits a key), the quality of the pairings, the share
    of the export's columns that found a place, and the file's name."""
    required = [n for n, c in columns.items() if not c.nullable and (c.metadata or {}).get("default") is None]
    covered = sum(1.0 if chosen[n][2] >= 0.5 else 0.5 for n in required if n in chosen) / len(required) \
        if required else 0.5
    quality = sum(c[1] for c in chosen.values()) / len(chosen) if chosen else 0.0
    placed = len(chosen) / headers if headers else 0.0
    return min(1.0, 0.5 * covered + 0.2 * quality + 0.1 * placed + (0.25 if named else 0.0))


def _synonyms(values: list[str], column: pa.Column, name: str) -> dict[str, str | None]:
    allowed = _allowed(column)
    by_key = {normalise.blind_key(a): a for a in allowed}
    common = (column.metadata or {}).get("synonyms") or {}  # declared with the column (entities.catalog)
    out: dict[str, str | None] = {}
    for value in values:
        key = normalise.blind_key(value)
        if key in by_key:
            continue
        if common.get(key) in allowed:
            out[value] = common[key]
            continue
        close = difflib.get_close_matches(key, list(by_key), n=1, cutoff=0.5)
        out[value] = by_key[close[0]] if close else None
    return out


def _dump(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10_000).strip().removesuffix("...").strip()


def _render(source: Path, header_row: int, contract: SheetContract, columns: dict, chosen: dict,
            headers: dict[str, list[str]], index: ReferenceIndex, confidence: float = 1.0, named: bool = False) -> str:
    required = [n for n, c in columns.items() if not c.nullable and (c.metadata or {}).get("default") is None]
    lines = [f"# Mapping of {source.name} written by `vital-pipelines map --suggest`. Lines marked `guess` come from",
             "# value or header similarity: confirm or correct each, delete the marks, then run `vital-pipelines validate`.",
             f"# Entity: {contract.sheet} (confidence {confidence:.2f}: {sum(1 for n in required if n in chosen)} of "
             f"{len(required)} required columns found" + ("; the file is named after it" if named else "") + ").",
             "# Headers matched: " + ", ".join(f"{h} → {n}" for n, (h, *_rest) in chosen.items()) + ".",
             f"source: {_dump(source.name)}",
             f"entity: {contract.sheet}",
             f"header_row: {header_row}",
             "columns:"]
    for name, column in columns.items():
        if name not in chosen:
            required = not column.nullable and (column.metadata or {}).get("default") is None
            if required:
                lines.append(f"  # {name}: REQUIRED and not found in the export; map a column to it or give `value:`")
            continue
        header, total, by_name, by_value = chosen[name]
        meta = column.metadata or {}
        evidence = f"header {by_name:.2f}" + (f", values {by_value:.0%} fit" if by_value is not None else "")
        mark = "" if by_name >= 0.999 and (by_value is None or by_value >= 0.999) else f"  # guess ({evidence})"
        extra = []
        values = headers[header]
        if meta.get("kind") == "enum":
            synonyms = _synonyms(values, column, name)
            if synonyms:
                extra.append(f"    values: {_dump(synonyms)}  # guess: closest allowed values; null = leave empty")
        if meta.get("kind") == "key" and not meta.get("references") and values:
            if meta.get("case") == "lower" and any(v != slugify(v) for v in values):
                extra.append("    normalise: slug  # guess: keys are not yet lower-case-with-hyphens")
            elif meta.get("case") == "upper" and any(v != slugify(v).upper() for v in values):
                extra.append("    normalise: code  # guess: keys are not yet UPPER-CASE-WITH-HYPHENS")
        if meta.get("kind") in ("int", "float") and by_value is not None and by_value < 1 and \
                any(re.search(r"\d", v) for v in values):
            extra.append("    pattern: '([0-9]+(?:[.][0-9]+)?)'  # guess: the number inside text such as `Tier 1`")
        if any(re.search(r"\(https?://", v) for v in values):
            if meta.get("kind") == "list":
                extra.append("    extract: relation_names  # guess: Notion relation cells")
            elif meta.get("kind") in ("key", "text"):
                extra.append("    extract: before_parenthesis  # guess: a Notion relation cell, `Name (https://…)`")
        if meta.get("kind") == "text" and any("\\n" in v for v in values):
            extra.append("    newlines: true  # guess: literal \\n in the text")
        if extra:
            lines.append(f"  {name}:{mark}")
            lines.append(f"    from: {_dump(header)}")
            lines += extra
        else:
            lines.append(f"  {name}: {_dump(header)}{mark}")
    used = {c[0] for c in chosen.values()}
    rest = [h for h in headers if h not in used]
    ignore = [h for h in rest if h.startswith("_")]
    keep = [h for h in rest if not h.startswith("_")]
    if keep and METADATA_COLUMN in contract.schema.columns:
        lines.append("metadata:  # guess: source columns with no contract column, kept with each row")
        lines += [f"  - {_dump(h)}" for h in keep]
    elif keep:
        ignore += keep
    if ignore:
        lines.append("ignore:  # guess: columns deliberately not loaded")
        lines += [f"  - {_dump(h)}" for h in ignore]
    return "\n".join(lines) + "\n"


__all__ = ["NoEntityFits", "export_headers", "mapping_from_choices", "suggest_mapping"]
