"""One routine for one registry source, whoever asks: the Dagster asset, `vital-pipelines validate`, the portal's
check and preview, the benchmarks and the tests all call `validate_source` or `load_source`, so the same file gets
the same answer everywhere.

A registry's sources, in the order they load (`registry_sources`): its workbook in raw/ (`personas.xlsx`), an
export in the documented layout named after it (`personas.csv`, `.json`, `.jsonl`), each mapped export
(`*.mapping.yaml` beside its file), then each tenant's mapped exports and own copies under raw/tenants/<slug>/.
"""

from __future__ import annotations

import dataclasses

import hashlib
from dataclasses import dataclass
from pathlib import Path

import psycopg

from vital_pipelines.entities import workbook_entities
from vital_pipelines.files import file_sha256, snapshot
from vital_pipelines.loading.registry import (
    DEFAULT_MAX_DELETE_SHARE, LoadResult, database_references, load_workbook, skip_if_unchanged,
)
from vital_pipelines.loading.tenant_sources import (
    EXPORT_SUFFIXES, approved_deletions, tenant_folders, tenant_source_name, tenant_sources,
)
from vital_pipelines.spreadsheets.crosswalk import crosswalk_path_for
from vital_pipelines.spreadsheets.mapping import MAPPING_SUFFIX, MappingError, load_mapping, mapping_path_for
from vital_pipelines.spreadsheets.matrix import WORKBOOK as MATRIX_WORKBOOK, validate_matrix
from vital_pipelines.spreadsheets.validation import ReferenceIndex, SheetRefused, ValidatedSheet
from vital_pipelines.spreadsheets.workbooks import (
    MappedSource, mapped_sources, validate_mapped_source, validate_registry_workbook,
)


class NoSource(FileNotFoundError):
    """Nothing in raw/ feeds a registry."""


@dataclass(frozen=True)
class Source:
    """One file a registry load reads: the registry's workbook or an export in its layout, a mapped export
    (`export`), or either as a tenant's own (`tenant`)."""

    path: Path
    workbook: str
    export: MappedSource | None = None
    tenant: str | None = None

    @property
    def origin(self) -> str:
        """The name the ledger, the quarantine and the rows' provenance know the source by."""
        name = self.export.path.name if self.export else self.path.name
        return tenant_source_name(self.tenant, name) if self.tenant else name

    @property
    def rules(self) -> list[Path]:
        """The files besides the source that decide how it is read: its mapping and its crosswalk."""
        if self.export is None:
            return []
        crosswalk = crosswalk_path_for(self.export.mapping_file)
        return [self.export.mapping_file, *([crosswalk] if crosswalk.is_file() else [])]

    def content_sha(self, source_sha256: str) -> str:
        """What a load of the source depends on: the source's bytes (`source_sha256`) alone, or with its mapping
        and crosswalk, so that a changed rule is a changed source."""
        if not self.rules:
            return source_sha256
        digest = hashlib.sha256(source_sha256.encode())
        for rule in self.rules:
            digest.update(f"\0{rule.name}\0{file_sha256(rule)}".encode())
        return digest.hexdigest()


def registry_sources(raw_dir: Path, workbook: str) -> list[Source]:
    """Every source of `workbook` in `raw_dir`, in load order; NoSource when there is none, MappingError when a
    mapping file is wrong."""
    raw_dir = Path(raw_dir)
    own = [raw_dir / workbook] if (raw_dir / workbook).is_file() else []
    if workbook != MATRIX_WORKBOOK:
        stem = Path(workbook).stem
        own += [raw_dir / f"{stem}{suffix}" for suffix in EXPORT_SUFFIXES
                if (raw_dir / f"{stem}{suffix}").is_file() and not mapping_path_for(raw_dir / f"{stem}{suffix}").exists()]
    sources = [Source(path, workbook) for path in own]
    if workbook == MATRIX_WORKBOOK:
        if not sources:
            raise NoSource(f"{raw_dir} has no {workbook}: add the matrix workbook there")
        return sources
    sources += [Source(export.path, workbook, export) for export in mapped_sources(raw_dir, workbook)]
    if not sources:
        stem = Path(workbook).stem
        entities = ", ".join(e.sheet for e in workbook_entities()[workbook])
        raise NoSource(f"{raw_dir} has nothing for {stem}: it looked for {workbook}, "
                       + ", ".join(f"{stem}{s}" for s in EXPORT_SUFFIXES)
                       + f", and a *.mapping.yaml whose entity is {entities}; add one of them")
    for tenant, folder in tenant_folders(raw_dir):
        sources += [Source(export.path, workbook, export, tenant) for export in mapped_sources(folder, workbook)]
    sources += [Source(path, workbook, None, tenant) for tenant, path in tenant_sources(raw_dir, workbook)]
    return sources


# The tables (and so the assets) each registry workbook fills; the matrix is a grid of its own.
WORKBOOK_ASSETS = {workbook: [e.asset_name for e in entities if not e.links_only]
                   for workbook, entities in workbook_entities().items()} | {
    MATRIX_WORKBOOK: ["solution_industry_matrix"]}


def content_tag(workbook: str) -> str:
    """The run tag that names the content (see `registry_content_sha`) of `workbook` a run loads."""
    return f"vital/sha256.{workbook}"


def registry_content_sha(raw_dir: Path, workbook: str) -> str | None:
    """One hash of everything a load of `workbook` reads from `raw_dir` (every source, its mapping and crosswalk):
    what the raw sensor watches and the portal compares. None when there is nothing to read; a mapping that cannot
    be read counts for every registry, so that the run it triggers reports it."""
    raw_dir = Path(raw_dir)
    try:
        sources = registry_sources(raw_dir, workbook)
    except NoSource:
        return None
    except MappingError:
        sources = [Source(raw_dir / workbook, workbook)] if (raw_dir / workbook).is_file() else []
    files = [f for s in sources for f in (s.path, *s.rules)]
    files += [m for folder in [raw_dir, *(f for _t, f in tenant_folders(raw_dir))]
              for m in sorted(folder.glob(f"*{MAPPING_SUFFIX}")) if not any(m == s.export.mapping_file
                                                                           for s in sources if s.export)
              and _unreadable(m)]
    if len(files) == 1 and files[0] == raw_dir / workbook:
        return file_sha256(files[0])
    digest = hashlib.sha256()
    for part in files:
        label = part.relative_to(raw_dir).as_posix() if part.is_relative_to(raw_dir) else part.name
        digest.update(f"{label}\0{file_sha256(part) if part.is_file() else 'missing'}\n".encode())
    return digest.hexdigest()


def _unreadable(mapping_file: Path) -> bool:
    try:
        load_mapping(mapping_file)
        return False
    except MappingError:
        return True


def validate_source(source: Source, *, raw_dir: Path | None = None, references: ReferenceIndex | None = None,
                    path: Path | None = None, isolated: bool = True) -> dict[str, ValidatedSheet]:
    """The source's sheets held to their contracts, references checked against the registry's upstream sources in
    `raw_dir` (default: the source's folder) and `references` (what the database holds, when known). `path`: the
    private copy to read instead of the source itself. A tenant's findings name the tenant's file
    (`tenants/acme-pharma/personas.xlsx`), and so do the rows it quarantines: never a bare `personas.xlsx` that reads
    as the platform's workbook."""
    path = Path(path or source.path)
    try:
        if source.workbook == MATRIX_WORKBOOK:
            sheets = validate_matrix(path, isolated=isolated)
        elif source.export is not None:
            sheets = validate_mapped_source(source.export, raw_dir=raw_dir, path=path, references=references,
                                            isolated=isolated)
        else:
            sheets = validate_registry_workbook(path, raw_dir=raw_dir or source.path.parent, references=references,
                                                isolated=isolated)
    except SheetRefused as refused:
        if source.tenant is None:
            raise
        raise SheetRefused(_named(source, refused.failures)) from None
    if source.tenant is None:
        return sheets
    return {name: dataclasses.replace(result, file=source.origin, failures=_named(source, result.failures),
                                      warnings=_named(source, result.warnings)) for name, result in sheets.items()}


def _references_rows(workbook: str) -> bool:
    return any(e.references for e in workbook_entities().get(workbook, ()))


def load_source(conn: psycopg.Connection, source: Source, *, raw_dir: Path, policy: str = "quarantine",
                run_id: str | None = None, max_delete_share: float = DEFAULT_MAX_DELETE_SHARE, reload: bool = False,
                isolated: bool = True, on_skip=None, dry_run: bool = False) -> LoadResult:
    """Skip the source when it and the database are as its last load left them (`on_skip(result)` is told), else
    read one private copy, validate it against the folder and the database, and load it in one transaction.
    `dry_run`: load it in a transaction that is rolled back, for what the load would do (nothing is skipped)."""
    if dry_run:
        with conn.transaction(force_rollback=True):
            return load_source(conn, source, raw_dir=raw_dir, policy=policy, run_id=run_id,
                               max_delete_share=max_delete_share, reload=True, isolated=isolated)
    with snapshot(source.path) as (path, bytes_sha):
        sha = source.content_sha(bytes_sha)
        if not reload:
            skipped = skip_if_unchanged(conn, source.workbook, source_name=source.origin, sha256=sha, policy=policy)
            if skipped is not None:
                if on_skip is not None:
                    on_skip(skipped)
                return skipped
        # what the database holds, only for a registry whose rows reference rows (a query and a digest saved for
        # the others: tools, skills, templates, industries, the matrix)
        references = database_references(conn) if _references_rows(source.workbook) else None
        sheets = validate_source(source, raw_dir=raw_dir, references=references, path=path, isolated=isolated)
        # Deletions a steward approved in the portal for exactly these bytes are let through the guard.
        approved = source.tenant is not None and approved_deletions(source.path, bytes_sha) is not None
        return load_workbook(conn, source.workbook, sheets, source_path=path, policy=policy, run_id=run_id,
                             max_delete_share=1.0 if approved else max_delete_share, source_sha256=sha,
                             source_name=source.origin, tenant=source.tenant)


def _named(source: Source, findings: list) -> list:
    bare = source.export.path.name if source.export else source.path.name
    return [dataclasses.replace(f, file=source.origin) if f.file == bare else f for f in findings]


__all__ = ["NoSource", "Source", "WORKBOOK_ASSETS", "content_tag", "load_source", "registry_content_sha", "registry_sources", "validate_source"]
