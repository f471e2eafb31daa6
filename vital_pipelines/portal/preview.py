"""What loading an upload would change, computed by loading it for real in a transaction that is rolled back.

The load is the pipeline's own (`load_workbook`, as the tenant's source, with its deletion guard): what the preview
shows is what the run will do, not an estimate. For each entity table the rows of the tenant are read before and
after the load inside the transaction: inserted rows, updated rows with each changed column (old → new), rows
soft-deleted, and the unchanged count. When the deletion guard would refuse the file, the preview says so and lists
every row that would be deleted, so that a steward can approve exactly those deletions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from vital_pipelines.loading.registry import DEFAULT_MAX_DELETE_SHARE, SHEET_TABLES, database_references, load_workbook
from vital_pipelines.loading.tenant_sources import tenant_source_name
from vital_pipelines.loading.upsert import DeletionGuardError
from vital_pipelines.portal.uploads import upload_sheets
from vital_pipelines.spreadsheets.workbooks import WORKBOOKS

IGNORED_COLUMNS = {"id", "created_at", "updated_at", "loaded_from", "tenant_id", "deleted_at", "search_vector",
                   "profile_embedding", "embedding_model", "embedded_at"}


@dataclass
class RowChange:
    key: str
    changes: dict[str, tuple[str, str]] = field(default_factory=dict)  # column -> (old, new), as text


@dataclass
class TableChanges:
    table: str
    inserted: list[RowChange] = field(default_factory=list)
    updated: list[RowChange] = field(default_factory=list)
    soft_deleted: list[RowChange] = field(default_factory=list)
    unchanged: int = 0


@dataclass
class Preview:
    workbook: str
    tables: list[TableChanges]
    rejected: int
    guard: str | None = None  # the deletion guard's refusal, when the file deletes too much
    held_back: list[dict] = field(default_factory=list)  # deletions not made while a failing row's key is in doubt

    @property
    def deletions(self) -> int:
        return sum(len(t.soft_deleted) for t in self.tables)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "; ".join(_text(v) for v in value)
    return str(value)


def _tables(workbook: str) -> list[tuple[str, str]]:
    """(table, natural key column) of the entity tables `workbook` loads."""
    return [(SHEET_TABLES[c.sheet], c.key[0]) for c in WORKBOOKS[workbook] if c.sheet in SHEET_TABLES]


def _rows(conn, table: str, key: str, tenant_id: str) -> dict[str, dict]:
    cursor = conn.execute(sql.SQL("select * from {} where tenant_id = %s").format(sql.Identifier(table)), (tenant_id,))
    names = [d.name for d in cursor.description]
    return {str(row[names.index(key)]): dict(zip(names, row)) for row in cursor.fetchall()}


def _diff(table: str, before: dict[str, dict], after: dict[str, dict]) -> TableChanges:
    changes = TableChanges(table)
    for key, row in sorted(after.items()):
        old = before.get(key)
        if old is None:
            changes.inserted.append(RowChange(key))
            continue
        if old.get("deleted_at") is None and row.get("deleted_at") is not None:
            changes.soft_deleted.append(RowChange(key))
            continue
        delta = {c: (_text(old.get(c)), _text(v)) for c, v in row.items()
                 if c not in IGNORED_COLUMNS and _text(old.get(c)) != _text(v)}
        if delta or (old.get("deleted_at") is not None and row.get("deleted_at") is None):
            changes.updated.append(RowChange(key, delta or {"deleted_at": (_text(old.get("deleted_at")), "")}))
        else:
            changes.unchanged += 1
    return changes


def preview_upload(conn: psycopg.Connection, path: Path, workbook: str, tenant: str, raw_dir: Path, *,
                   mapping_file: Path | None = None, max_delete_share: float = DEFAULT_MAX_DELETE_SHARE) -> Preview:
    """Load `path` (read through `mapping_file` when given) as `tenant`'s own source of `workbook` inside a
    transaction that is always rolled back."""
    def sheets_now():
        return upload_sheets(path, raw_dir, mapping_file, database_references(conn))

    sheets = sheets_now()
    source = tenant_source_name(tenant, Path(path).name)
    guard = None
    with conn.transaction(force_rollback=True):
        tenant_id = conn.execute("select id::text from tenants where slug = %s", (tenant,)).fetchone()[0]
        before = {table: _rows(conn, table, key, tenant_id) for table, key in _tables(workbook)}
        try:
            with conn.transaction():
                result = load_workbook(conn, workbook, sheets, source_path=path, source_name=source, tenant=tenant,
                                       max_delete_share=max_delete_share)
        except DeletionGuardError as refusal:
            guard = str(refusal)
            result = load_workbook(conn, workbook, sheets_now(), source_path=path, source_name=source, tenant=tenant,
                                   max_delete_share=1.0)
        tables = [_diff(table, before[table], _rows(conn, table, key, tenant_id)) for table, key in _tables(workbook)]
    held = [{"sheet": w.sheet, "cell": w.cell, "value": w.value, "message": w.message} for w in result.warnings
            if w.rule == "deletion_held_back_warning"]
    return Preview(workbook=workbook, tables=tables, rejected=result.rejected, guard=guard, held_back=held)
