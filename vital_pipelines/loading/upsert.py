"""The generic mechanics of one load: stage a frame with COPY, upsert it, soft-delete what disappeared.

Identifiers (tables, columns) always come from code, never from cell values; values travel as COPY data or
query parameters.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import polars as pl
import psycopg
from psycopg import sql

ID_NAMESPACE = uuid.UUID("5b0c1c2e-7a51-4d0e-9a55-3f1f6c0e1a01")
PLATFORM_TENANT_SLUG = "vital-platform"
ANALYZE_AFTER_ROWS = 500


def deterministic_id(entity: str, *key_parts: str) -> uuid.UUID:
    """The same entity and natural key give the same id in every environment and on every run."""
    return uuid.uuid5(ID_NAMESPACE, "|".join([entity, *key_parts]))


class DeletionGuardError(RuntimeError):
    """A load would soft-delete more of a table than allowed: most likely a truncated sheet."""


@dataclass
class Counts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0

    def add(self, other: "Counts") -> "Counts":
        return Counts(self.inserted + other.inserted, self.updated + other.updated,
                      self.unchanged + other.unchanged, self.deleted + other.deleted)


def _as_copy_text(frame: pl.DataFrame) -> pl.DataFrame:
    """List columns become PostgreSQL array literals; everything else is written as it is."""
    literals = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.List):
            quoted = pl.element().cast(pl.Utf8).str.replace_all("\\", "\\\\", literal=True).str.replace_all('"', '\\"', literal=True)
            literals.append(
                pl.when(pl.col(name).is_null()).then(None)
                .otherwise(pl.lit("{") + pl.col(name).list.eval(pl.lit('"') + quoted + pl.lit('"')).list.join(",")
                           + pl.lit("}")).alias(name))
    return frame.with_columns(literals) if literals else frame


def stage(conn: psycopg.Connection, name: str, frame: pl.DataFrame, types: dict[str, str]) -> int:
    """Create temp table `name` with `types` (column → SQL type) and COPY the frame's columns into it as CSV."""
    columns = list(types)
    definition = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(types[c])) for c in columns)
    conn.execute(sql.SQL("create temp table {} ({}) on commit drop").format(sql.Identifier(name), definition))
    if frame.height == 0:
        return 0
    # Nulls are unquoted empty fields and every text value is quoted, so NULL and '' never meet (cells are never '').
    payload = _as_copy_text(frame.select(columns)).write_csv(include_header=False, null_value="",
                                                             quote_style="non_numeric")
    column_list = sql.SQL(", ").join(map(sql.Identifier, columns))
    with conn.cursor().copy(sql.SQL("copy {} ({}) from stdin with (format csv)").format(
            sql.Identifier(name), column_list)) as copy:
        copy.write(payload.encode("utf-8"))
    return frame.height


def upsert(conn: psycopg.Connection, table: str, key: list[str], columns: list[str], select: sql.Composable,
           *, soft_delete: bool, staged: int, params: dict | None = None) -> Counts:
    """INSERT … SELECT … ON CONFLICT (key) DO UPDATE only where something differs; counts what happened."""
    updatable = [c for c in columns if c not in key and c != "id"]
    target = sql.Identifier(table)
    assignments = [sql.SQL("{} = excluded.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in updatable]
    old = [sql.SQL("t.{}").format(sql.Identifier(c)) for c in updatable]
    new = [sql.SQL("excluded.{}").format(sql.Identifier(c)) for c in updatable]
    if soft_delete:
        assignments.append(sql.SQL("deleted_at = null"))
        old.append(sql.SQL("t.deleted_at"))
        new.append(sql.SQL("null::timestamptz"))
    query = sql.SQL(
        "with written as (insert into {target} as t ({columns}) {select} "
        "on conflict ({key}) do update set {assignments} where ({old}) is distinct from ({new}) "
        "returning (xmax = 0) as inserted) "
        "select count(*) filter (where inserted), count(*) filter (where not inserted) from written"
    ).format(
        target=target, columns=sql.SQL(", ").join(map(sql.Identifier, columns)), select=select,
        key=sql.SQL(", ").join(map(sql.Identifier, key)), assignments=sql.SQL(", ").join(assignments),
        old=sql.SQL(", ").join(old), new=sql.SQL(", ").join(new),
    )
    inserted, updated = conn.execute(query, params).fetchone()
    if inserted + updated > ANALYZE_AFTER_ROWS:
        # Fresh statistics keep the planner on hash joins for the soft delete and the junction lookups that follow.
        conn.execute("set local default_statistics_target = 10")
        conn.execute(sql.SQL("analyze {}").format(target))
        conn.execute("reset default_statistics_target")
    return Counts(inserted=inserted, updated=updated, unchanged=staged - inserted - updated)


def soft_delete_missing(conn: psycopg.Connection, table: str, key: list[str], stage_name: str, tenant_ids: list,
                        protected_stage: str | None, max_share: float, sheet: str) -> int:
    """Soft-delete live rows of the given tenants that the sheet no longer has, unless that is too many."""
    def absent_from(stage_table: str) -> sql.Composable:
        matches = sql.SQL(" and ").join(sql.SQL("s.{k} = t.{k}").format(k=sql.Identifier(k)) for k in key)
        return sql.SQL("and not exists (select 1 from {s} s where {m})").format(s=sql.Identifier(stage_table), m=matches)

    missing = sql.SQL("from {table} t where t.deleted_at is null and t.tenant_id = any(%(tenants)s) {absent} {protected}").format(
        table=sql.Identifier(table), absent=absent_from(stage_name),
        protected=absent_from(protected_stage) if protected_stage else sql.SQL(""),
    )
    params = {"tenants": tenant_ids}
    doomed = conn.execute(sql.SQL("select count(*) ") + missing, params).fetchone()[0]
    if not doomed:
        return 0
    live = conn.execute(sql.SQL("select count(*) from {} where deleted_at is null and tenant_id = any(%(tenants)s)")
                        .format(sql.Identifier(table)), params).fetchone()[0]
    if doomed > max_share * live:
        raise DeletionGuardError(
            f"Refusing to load {sheet}: it would soft-delete {doomed} of {live} live {table} rows "
            f"({doomed / live:.0%}, limit {max_share:.0%}). If the sheet is complete and the deletions are "
            f"intended, raise max_delete_share for this run; otherwise restore the missing rows.")
    return conn.execute(
        sql.SQL("update {table} set deleted_at = now() where ctid in (select t.ctid ").format(table=sql.Identifier(table))
        + missing + sql.SQL(")"), params).rowcount


def sync_links(conn: psycopg.Connection, table: str, owner_column: str, other_column: str, stage_name: str,
               extra_columns: list[str] | None = None) -> Counts:
    """Make the links of every owner in `stage_name` exactly the staged ones (stage columns are named as in
    the link table); owners absent from the stage are left alone."""
    extra = extra_columns or []
    columns = [owner_column, other_column, "tenant_id", *extra]
    ident = sql.Identifier
    removed = conn.execute(sql.SQL(
        "delete from {t} l where l.{o} in (select {o} from {s}) "
        "and not exists (select 1 from {s} s where s.{o} = l.{o} and s.{x} = l.{x})"
    ).format(t=ident(table), o=ident(owner_column), x=ident(other_column), s=ident(stage_name))).rowcount
    assignments = [sql.SQL("{} = excluded.{}").format(ident(c), ident(c)) for c in ["tenant_id", *extra]]
    old = sql.SQL(", ").join(sql.SQL("l.{}").format(ident(c)) for c in ["tenant_id", *extra])
    new = sql.SQL(", ").join(sql.SQL("excluded.{}").format(ident(c)) for c in ["tenant_id", *extra])
    inserted, updated = conn.execute(sql.SQL(
        "with written as (insert into {t} as l ({cols}) select {cols} from {s} order by {o}, {x} "
        "on conflict ({o}, {x}) do update set {assign} where ({old}) is distinct from ({new}) "
        "returning (xmax = 0) as inserted) "
        "select count(*) filter (where inserted), count(*) filter (where not inserted) from written"
    ).format(t=ident(table), cols=sql.SQL(", ").join(map(ident, columns)), s=ident(stage_name),
             o=ident(owner_column), x=ident(other_column), assign=sql.SQL(", ").join(assignments),
             old=old, new=new)).fetchone()
    total = conn.execute(sql.SQL("select count(*) from {}").format(ident(stage_name))).fetchone()[0]
    return Counts(inserted=inserted, updated=updated, unchanged=total - inserted - updated, deleted=removed)
