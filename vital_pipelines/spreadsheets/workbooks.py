"""Validating a registry workbook in context: the sheets it references (org structure, personas) are
validated first, and only their valid keys count as existing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vital_pipelines.entities import upstream, workbook_entities
from vital_pipelines.files import file_sha256, snapshot
from vital_pipelines.spreadsheets import index_cache
from vital_pipelines.spreadsheets.contracts import AGENTS, CONTRACTS, JTBDS, ORG_SHEETS, PERSONAS, WORKBOOKS, SheetContract
from vital_pipelines.spreadsheets.crosswalk import apply_crosswalk, crosswalk_path_for, load_crosswalk
from vital_pipelines.spreadsheets.json_source import JSON_SUFFIXES
from vital_pipelines.spreadsheets.reader import RawSheet
from vital_pipelines.spreadsheets.mapping import (
    MAPPING_SUFFIX, Mapping, MappingError, apply_mapping, load_mapping, read_source, source_for,
)
from vital_pipelines.spreadsheets.safety import UnsafeWorkbookError, inspect_workbook
from vital_pipelines.spreadsheets.validation import (
    ReferenceIndex, SheetRefused, ValidatedSheet, reference_index, validate_sheet, validate_workbook,
)

# Each registry workbook and the workbooks whose rows its rows reference (directly or not), in load order.
UPSTREAM = {workbook: upstream(workbook) for workbook in workbook_entities()}
REGISTRY_WORKBOOKS = tuple(UPSTREAM)


def reference_keys(raw_dir: Path, workbook: str, *, isolated: bool = True,
                   base: ReferenceIndex | None = None) -> ReferenceIndex:
    """Valid keys (and names) of every sheet `workbook` references, read from the upstream sources in `raw_dir` that
    exist (each upstream workbook, then its mapped exports), validated on top of `base` (what the database holds,
    when known). An upstream chain whose bytes, rules and base were validated before is not validated again (see
    index_cache)."""
    index = base or ReferenceIndex({})
    chain: list[tuple[str, str]] = [("base", base.digest())] if base is not None else []
    for upstream in UPSTREAM[workbook]:
        for name, path, validate in _upstream_sources(Path(raw_dir), upstream, isolated):
            with snapshot(path) as (copy, sha256):
                chain.append((name, sha256))
                key = index_cache.chain_key(chain)
                cached = index_cache.load(key)
                if cached is not None:
                    index = cached
                    continue
                index = reference_index(validate(copy, index), index)
                index_cache.store(key, index)
    return index


def _upstream_sources(raw_dir: Path, workbook: str, isolated: bool):
    """(name, path, validate(path, index)) of each source of an upstream workbook that references may name: the
    workbook and its mapped exports (a broken mapping is its own asset's failure, not a reason to know less)."""
    def whole(path: Path, index: ReferenceIndex):
        return validate_workbook(path, WORKBOOKS[workbook], index, isolated=isolated)

    found = [(workbook, raw_dir / workbook, whole)] if (raw_dir / workbook).exists() else []
    try:
        exports = mapped_sources(raw_dir, workbook)
    except MappingError:
        exports = []
    for export in exports:
        def mapped(path: Path, index: ReferenceIndex, export=export):
            try:
                sheet = mapped_sheet(export, path, isolated=isolated)
                return {export.contract.sheet: validate_sheet(sheet, export.contract, index)}
            except (MappingError, SheetRefused, UnsafeWorkbookError):
                return {}
        # the mapping is part of what is read: a changed mapping is a changed source
        rules = [export.mapping_file, crosswalk_path_for(export.mapping_file)]
        found.append((f"{export.path.name}+" + "+".join(file_sha256(r) for r in rules if r.is_file()), export.path,
                      mapped))
    return found


def workbook_kind(path: Path) -> str:
    """Which registry workbook `path` is: by file name (`personas.xlsx`, or `personas.csv` / `.json` / `.jsonl` for
    a one-sheet export), else by the sheets it holds (`personas (2).xlsx`)."""
    path = Path(path)
    if path.name in WORKBOOKS:
        return path.name
    if path.suffix.lower() in (".csv", *JSON_SUFFIXES):
        for name in WORKBOOKS:
            if Path(name).stem == path.stem.lower():
                return name
        raise UnsafeWorkbookError(f"{path.name}: name the export after its registry "
                                  f"({', '.join(Path(n).stem + path.suffix for n, c in WORKBOOKS.items() if len(c) == 1)}).")
    sheets = {name.strip().lower() for name in inspect_workbook(path).sheets}
    for name, contracts in WORKBOOKS.items():
        if contracts[0].sheet in sheets:
            return name
    raise UnsafeWorkbookError(f"{path.name}: not a registry workbook: it has none of the sheets "
                              f"{', '.join(c[0].sheet for c in WORKBOOKS.values())}.")


def validate_registry_workbook(path: Path, *, raw_dir: Path | None = None, isolated: bool = True,
                               references: ReferenceIndex | None = None) -> dict[str, ValidatedSheet]:
    """Validate one of the registry workbooks (see `workbook_kind`), with references from its upstream sources and
    `references` (what the database holds, when known)."""
    path = Path(path)
    name = workbook_kind(path)
    references = reference_keys(raw_dir or path.parent, name, isolated=isolated, base=references)
    return validate_workbook(path, WORKBOOKS[name], references, isolated=isolated)




@dataclass(frozen=True)
class MappedSource:
    """An export in someone else's layout and the mapping file beside it that says how to read it."""

    mapping_file: Path
    mapping: Mapping
    path: Path

    @property
    def contract(self) -> SheetContract:
        return CONTRACTS[self.mapping.entity]

    @property
    def workbook(self) -> str:
        """The registry workbook whose entity the source feeds: its lock, loader and dependencies."""
        return self.contract.workbook


def mapped_source(mapping_file: Path) -> MappedSource:
    mapping = load_mapping(mapping_file)
    return MappedSource(Path(mapping_file), mapping, source_for(mapping_file, mapping))


def mapped_sources(raw_dir: Path, workbook: str | None = None) -> list[MappedSource]:
    """Every `*.mapping.yaml` in `raw_dir` with its source, in load order (parents first); those of one registry
    workbook when `workbook` is given. A broken mapping raises MappingError."""
    order = {name: i for i, name in enumerate(CONTRACTS)}
    found = [mapped_source(p) for p in sorted(Path(raw_dir).glob(f"*{MAPPING_SUFFIX}"))]
    found = [s for s in found if workbook is None or s.workbook == workbook]
    return sorted(found, key=lambda s: (order[s.mapping.entity], s.path.name))


def mapped_sheet(source: MappedSource, path: Path, *, isolated: bool = True) -> RawSheet:
    """A mapped export as its entity's documented sheet: read, mapped, and crosswalked (see crosswalk)."""
    raw = read_source(path, source.mapping.sheet, source.mapping.entity, isolated=isolated)
    sheet = apply_mapping(raw, source.mapping, source.mapping_file.name)
    table = load_crosswalk(source.mapping_file, source.mapping.crosswalk, source.contract)
    return apply_crosswalk(sheet, table, source.contract)


def validate_mapped_source(source: MappedSource, *, raw_dir: Path | None = None, references: ReferenceIndex | None = None,
                           isolated: bool = True, path: Path | None = None) -> dict[str, ValidatedSheet]:
    """Validate a mapped export (read from `path`, a private copy, when given) as the sheet of its entity, with
    references from the sibling workbooks and `references` (what the database holds)."""
    sheet = mapped_sheet(source, path or source.path, isolated=isolated)
    index = reference_keys(raw_dir or source.path.parent, source.workbook, isolated=isolated, base=references) \
        if source.workbook in UPSTREAM else (references or ReferenceIndex({}))
    return {source.contract.sheet: validate_sheet(sheet, source.contract, index)}


__all__ = ["AGENTS", "JTBDS", "MappedSource", "ORG_SHEETS", "PERSONAS", "REGISTRY_WORKBOOKS", "mapped_source",
           "mapped_sources", "reference_keys", "validate_mapped_source", "validate_registry_workbook"]
