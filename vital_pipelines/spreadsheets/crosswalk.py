"""Crosswalks: a steward's table of "value as found → code" per reference column of an export, kept beside its
mapping (`personas_export.crosswalk.yaml` beside `personas_export.mapping.yaml`) or as the mapping's `crosswalk:`
section. It is applied after the mapping and before references are checked, so `Medical Director` in a persona's
role column becomes the role it means, on every load, without touching the export.

`vital-pipelines crosswalk --suggest EXPORT` writes a first crosswalk: each distinct value that names nothing, with
its count and its closest candidates (rapidfuzz over the codes and names it may name), the code left empty for the
steward to fill in (an empty code leaves the value as it is: still a finding).
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import polars as pl
import yaml

from vital_pipelines.spreadsheets import normalise
from vital_pipelines.spreadsheets.contracts import SheetContract
from vital_pipelines.spreadsheets.mapping import MAPPING_SUFFIX, MappingError
from vital_pipelines.spreadsheets.reader import ROW, RawSheet

CROSSWALK_SUFFIX = ".crosswalk.yaml"
CANDIDATES = 3


def crosswalk_path_for(mapping_file: Path) -> Path:
    """Where the crosswalk of a mapped export lives: beside its mapping, with the same stem."""
    mapping_file = Path(mapping_file)
    return mapping_file.with_name(mapping_file.name.removesuffix(MAPPING_SUFFIX) + CROSSWALK_SUFFIX)


def parse_crosswalk(data, contract: SheetContract, file: str) -> dict[str, dict[str, str]]:
    """{column: {value as found (blind key): code}}; MappingError names every mistake (a column that is not a
    reference of the sheet, a value that is not a plain text)."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MappingError(file, ["a crosswalk is a YAML mapping of reference columns to {value as found: code}"])
    columns = contract.schema.columns
    problems, table = [], {}
    for column, pairs in data.items():
        meta = (columns[column].metadata or {}) if column in columns else {}
        if not meta.get("references"):
            referenced = [n for n, c in columns.items() if (c.metadata or {}).get("references")]
            problems.append(f"crosswalk › {column}: not a reference column of `{contract.sheet}` (those are: "
                            f"{', '.join(referenced) or 'none'})")
            continue
        if not isinstance(pairs, dict):
            problems.append(f"crosswalk › {column}: write one `value as found: code` per line")
            continue
        table[column] = {normalise.blind_key(str(found)): str(code).strip()
                         for found, code in pairs.items() if code is not None and str(code).strip()}
    if problems:
        raise MappingError(file, problems)
    return table


def load_crosswalk(mapping_file: Path, section, contract: SheetContract) -> dict[str, dict[str, str]]:
    """The mapping's `crosswalk:` section merged with the crosswalk file beside it (the file wins on a value)."""
    table = parse_crosswalk(section, contract, Path(mapping_file).name)
    path = crosswalk_path_for(mapping_file)
    if path.is_file():
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise MappingError(path.name, [f"not valid YAML ({getattr(error, 'problem', None) or error})"]) from None
        for column, pairs in parse_crosswalk(data, contract, path.name).items():
            table[column] = {**table.get(column, {}), **pairs}
    return table


def apply_crosswalk(sheet: RawSheet, table: dict[str, dict[str, str]], contract: SheetContract) -> RawSheet:
    """The sheet with every crosswalked value replaced by its code (a list's items one by one); cells stay where
    they are."""
    if not table:
        return sheet
    header = sheet.frame.filter(pl.col(ROW) == sheet.header_row).row(0, named=True) if sheet.frame.height else {}
    by_name = {v: k for k, v in header.items() if k != ROW and v is not None}
    kinds = {n: (c.metadata or {}).get("kind") for n, c in contract.schema.columns.items()}
    replacements = []
    for column, pairs in table.items():
        letter = by_name.get(column)
        if letter is None:
            continue

        def swap(text: str | None, pairs=pairs, listed=kinds.get(column) == "list") -> str | None:
            if text is None or text == column:
                return text
            if listed:
                items = normalise.parse_list(text)
                return json.dumps([pairs.get(normalise.blind_key(i), i) for i in items], ensure_ascii=False)
            return pairs.get(normalise.blind_key(text), text)

        replacements.append(pl.col(letter).map_elements(swap, return_dtype=pl.Utf8).alias(letter))
    if not replacements:
        return sheet
    return dataclasses.replace(sheet, frame=sheet.frame.with_columns(replacements))


def suggest_crosswalk(findings, index, contract: SheetContract, source_name: str) -> str:
    """The YAML text of a first crosswalk from the reference findings of a validated export: per column, each
    distinct value that names nothing with its count and candidates (every code a name fits, when it fits several)."""
    from rapidfuzz import fuzz, process, utils

    unresolved: dict[str, Counter] = {}
    for finding in findings:
        if finding.rule.removesuffix("_warning") == "reference" and finding.column and finding.value is not None:
            values = normalise.parse_list(str(finding.value)) if str(finding.value)[:1] in "[{" else [finding.value]
            for value in values:
                unresolved.setdefault(finding.column, Counter())[str(value)] += 1
    lines = [f"# Crosswalk of {source_name} written by `vital-pipelines crosswalk --suggest`: each value below names",
             "# nothing the load can find. Write the code it means after the colon (the comment lists the closest",
             "# candidates); leave it empty to keep the value as it is. Then load again.", ""]
    if not unresolved:
        lines.append("# Every reference resolves: nothing to crosswalk.")
        return "\n".join(lines) + "\n"
    columns = contract.schema.columns
    for column, counts in unresolved.items():
        target = (columns[column].metadata or {}).get("references") if column in columns else None
        titles = dict(index.titles.get(target, {})) if target else {}
        for key in index.keys.get(target, set()):
            titles.setdefault(key, key)
        choices = {code: f"{name} {code}" if name != code else code for code, name in titles.items()}
        lines.append(f"# {column}: {len(counts)} distinct value(s) in {sum(counts.values())} row(s) name no "
                     f"{target or column}")
        lines.append(f"{column}:")
        for value, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            candidates = set(index.names.get(target, {}).get(normalise.blind_key(value), set())) if target else set()
            if len(candidates) > 1:
                hint = "fits several: " + ", ".join(f"{c} ({titles.get(c, c)})" for c in sorted(candidates))
            else:
                close = process.extract(value, choices, scorer=fuzz.token_set_ratio, processor=utils.default_process,
                                        limit=CANDIDATES, score_cutoff=60) if choices else []
                hint = ("closest: " + ", ".join(f"{code} ({titles.get(code, code)}) {score:.0f}"
                                                for _label, score, code in close)) if close else "no close candidate"
            lines.append(f"  {yaml.safe_dump(value, allow_unicode=True, width=10_000).strip().removesuffix('...').strip()}:"
                         f"   # {count} row(s); {hint}")
        lines.append("")
    return "\n".join(lines)


__all__ = ["CROSSWALK_SUFFIX", "apply_crosswalk", "crosswalk_path_for", "load_crosswalk", "parse_crosswalk",
           "suggest_crosswalk"]
