"""The generic mechanics of one load: stage a frame with COPY, upsert it, soft-delete what disappeared.

Identifiers (tables, columns) always come from code, never from cell values; values travel as COPY data or
query parameters.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field

import polars as pl
import psycopg
from psycopg import sql

from vital_pipelines.loading.referential import insert_rows

ID_NAMESPACE = uuid.UUID("5b0c1c2e-7a51-4d0e-9a55-3f1f6c0e1a01")
PLATFORM_TENANT_SLUG = "vital-platform"
ANALYZE_AFTER_ROWS = 500


LOAD_MEMORY = "128MB"
# jsonb columns that the application writes too: a load adds and replaces the keys it brings, and keeps the rest.
MERGED_COLUMNS = frozenset({"metadata"})


def tune_for_bulk_load(conn: psycopg.Connection) -> None:
    """Give the current load transaction room to stage, sort and hash in memory (staged sheets of 10^4-10^5 rows
    otherwise spill temp tables and sorts to disk); transaction-local, like every setting the pipeline makes.
    `temp_buffers` can only change before the session's first temporary table: a reused session keeps its own."""
    try:
        with conn.transaction():
            conn.execute("select set_config('temp_buffers', %s, true)", (LOAD_MEMORY,))
    except psycopg.errors.InvalidParameterValue:
        pass
    conn.execute("select set_config('work_mem', %s, true)", (LOAD_MEMORY,))


def deterministic_id_strings(entity: str, *key_columns: list[str]) -> list[str]:
    """`str(deterministic_id(entity, *parts))` for every row of the key columns, without building a UUID object per
    row (uuid5 is SHA-1 of namespace + name with the version and variant bits set): 3× faster on 10^5 rows."""
    namespace = ID_NAMESPACE.bytes
    ids = []
    for parts in zip(*key_columns):
        digest = bytearray(hashlib.sha1(namespace + "|".join((entity, *parts)).encode("utf-8")).digest()[:16])
        digest[6] = (digest[6] & 0x0F) | 0x50
        digest[8] = (digest[8] & 0x3F) | 0x80
        h = digest.hex()
        ids.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return ids


def tenant_ids_by_slug(conn: psycopg.Connection) -> dict[str, str]:
    """Every live tenant's id, by slug: rows name their tenant by slug in sheets and front matter."""
    return {slug: str(tid) for slug, tid in conn.execute("select slug, id from tenants where deleted_at is null")}


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
    deleted_keys: list[str] = field(default_factory=list)  # the natural keys soft-deleted, for metadata and audit
    held_back_keys: list[str] = field(default_factory=list)  # absent rows not deleted while a row's key fails

    def add(self, other: "Counts") -> "Counts":
        return Counts(self.inserted + other.inserted, self.updated + other.updated,
                      self.unchanged + other.unchanged, self.deleted + other.deleted)


def same_key(key: list[str], left: str, right: str) -> sql.Composable:
    """`left.k1 = right.k1 and left.k2 = right.k2 …` over the key's columns."""
    return sql.SQL(" and ").join(sql.SQL("{l}.{k} = {r}.{k}").format(l=sql.Identifier(left), r=sql.Identifier(right),
                                                                     k=sql.Identifier(k)) for k in key)


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


def _write_changes(conn: psycopg.Connection, table: str, key: list[str], columns: list[str], source: sql.Composable,
                   updatable: list[str], extra_set: list[tuple[str, str]], params: dict | None,
                   source_rows: int | None = None, row_keep: dict[str, str] | None = None,
                   stamp: Stamp | None = None) -> tuple[int, int]:
    """Set aside the source rows whose key is not in the table, UPDATE the existing rows whose values differ (not
    needed when all `source_rows` are new), then INSERT the rows set aside. Plain statements instead of INSERT … ON
    CONFLICT: no speculative insertion per row, and the caller's advisory lock keeps other loads of the same rows
    out. The new rows are evaluated once, into a temp table, because the referential check reads them again.

    With `row_keep` ({table column: sheet column}), the source has one more column, `_keep` (text[]): the sheet
    columns whose stored value that row keeps (its cell could not be loaded), so an update leaves them as they are.
    Columns in MERGED_COLUMNS are merged into the stored object, not replaced. With `stamp`, new rows are inserted
    with their `loaded_from` already set (see `record_provenance`), instead of being written a second time."""
    ident = sql.Identifier
    source_columns = [*columns, "_keep"] if row_keep is not None else columns
    rows = sql.SQL("({source}) as x ({columns})").format(source=source,
                                                         columns=sql.SQL(", ").join(map(ident, source_columns)))
    in_table = same_key(key, "t", "x")
    selected = sql.SQL(", ").join(sql.SQL("x.{}").format(ident(c)) for c in columns)
    stamped = sql.SQL("")
    inserted_columns, batch_params = columns, params
    if stamp is not None:
        selected = selected + sql.SQL(", ") + stamp.value("p")
        stamped = sql.SQL(" left join {p} p on {match}").format(p=ident(stamp.stage), match=same_key(stamp.key, "p", "x"))
        inserted_columns, batch_params = [*columns, "loaded_from"], {**(params or {}), **stamp.params}
    absent = sql.SQL("select {selected} from {rows}{stamped} where not exists (select 1 from {t} t where {match})"
                     ).format(selected=selected, rows=rows, stamped=stamped, t=ident(table), match=in_table)
    batch = ident(f"new_{table}")
    conn.execute(sql.SQL("create temp table {batch} on commit drop as select {cols} from {t} with no data").format(
        batch=batch, cols=sql.SQL(", ").join(map(ident, inserted_columns)), t=ident(table)))
    new = conn.execute(sql.SQL("insert into {} ").format(batch) + absent, batch_params).rowcount
    updated = 0
    if (updatable or extra_set) and new != source_rows:
        def incoming(c: str) -> sql.Composable:
            if c in MERGED_COLUMNS:
                # what a load says it could not resolve is the load's alone: the last load's list replaces the
                # stored one (see entity_load.UNRESOLVED)
                new_value = sql.SQL("(t.{c} - 'unresolved') || x.{c}").format(c=ident(c))
            else:
                new_value = sql.SQL("x.{}").format(ident(c))
            if row_keep is None or c not in row_keep:
                return new_value
            return sql.SQL("case when {sheet} = any(x._keep) then t.{c} else {new} end").format(
                sheet=sql.Literal(row_keep[c]), c=ident(c), new=new_value)

        assignments = [sql.SQL("{} = ").format(ident(c)) + incoming(c) for c in updatable] + \
            [sql.SQL("{} = {}").format(ident(c), sql.SQL(v)) for c, v in extra_set]
        old = [sql.SQL("t.{}").format(ident(c)) for c in updatable] + [sql.SQL("t.{}").format(ident(c)) for c, _ in extra_set]
        changed = [incoming(c) for c in updatable] + [sql.SQL(v) for _, v in extra_set]
        updated = conn.execute(sql.SQL(
            "update {t} as t set {assignments} from {rows} where {match} and ({old}) is distinct from ({new})"
        ).format(t=ident(table), assignments=sql.SQL(", ").join(assignments), rows=rows, match=in_table,
                 old=sql.SQL(", ").join(old), new=sql.SQL(", ").join(changed)), params).rowcount
    insert_rows(conn, table, inserted_columns, sql.SQL("select * from {}").format(batch), new, None)
    conn.execute(sql.SQL("drop table {}").format(batch))
    return new, updated


def upsert(conn: psycopg.Connection, table: str, key: list[str], columns: list[str], select: sql.Composable,
           *, soft_delete: bool, staged: int, params: dict | None = None, keep: frozenset[str] = frozenset(),
           row_keep: dict[str, str] | None = None, stamp: Stamp | None = None) -> Counts:
    """Insert new keys and update existing rows only where something differs (a soft-deleted row comes back);
    unchanged rows are not touched, so their `updated_at` stays. Columns in `keep` (their source column is not in
    the sheet) are written for new rows only: what is stored stays; `row_keep` does the same per row (see
    `_write_changes`). Counts what happened."""
    updatable = [c for c in columns if c not in key and c != "id" and c not in keep]
    extra = [("deleted_at", "null::timestamptz")] if soft_delete else []
    inserted, updated = _write_changes(conn, table, key, columns, select, updatable, extra, params, staged, row_keep,
                                       stamp)
    if inserted + updated > ANALYZE_AFTER_ROWS:
        # Fresh statistics keep the planner on hash joins for the soft delete and the junction lookups that follow;
        # the loader may not ANALYZE a table it does not own, so the owner's definer function does it.
        conn.execute("select private.refresh_loaded_statistics(%s::regclass)", (table,))
    return Counts(inserted=inserted, updated=updated, unchanged=staged - inserted - updated)


@dataclass(frozen=True)
class Provenance:
    """Which load wrote a row: the workbook's file name, the sheet, the bytes' hash and the load's id."""

    file: str
    sheet: str
    sha256: str
    load_id: str


@dataclass(frozen=True)
class Stamp:
    """Where the rows of a load come from: a staged table of (key…, row) and the load's provenance, from which each
    row's `loaded_from` is built (see `provenance_stamp`)."""

    stage: str
    key: list[str]
    row_column: str
    provenance: Provenance

    @property
    def params(self) -> dict:
        return vars(self.provenance)

    def value(self, alias: str) -> sql.Composable:
        return sql.SQL("jsonb_build_object('file', %(file)s::text, 'sheet', %(sheet)s::text, 'row', {a}.{row}, "
                       "'sha256', %(sha256)s::text, 'load_id', %(load_id)s::text)").format(
            a=sql.Identifier(alias), row=sql.Identifier(self.row_column))


def provenance_stamp(conn: psycopg.Connection, table: str, key: list[str], frame: pl.DataFrame, row_column: str,
                     provenance: Provenance) -> Stamp:
    """Stage the key and sheet row of every row of `frame`, for `upsert` and `record_provenance`."""
    name = f"provenance_{table}"
    stage(conn, name, frame.select(*key, row_column),
          {**{k: "uuid" if k.endswith("tenant_id") else "text" for k in key}, row_column: "int"})
    return Stamp(name, key, row_column, provenance)


def record_provenance(conn: psycopg.Connection, table: str, stamp: Stamp) -> None:
    """Stamp `loaded_from` on the staged rows that this transaction wrote, and on those that had no stamp (or another
    file's) before: the rows this workbook now owns. Unchanged rows keep their stamp; rows `upsert` inserted with
    this load's stamp are not written again."""
    conn.execute(sql.SQL("update {t} t set loaded_from = ").format(t=sql.Identifier(table)) + stamp.value("p") + sql.SQL(
        " from {p} p where {match} and (t.updated_at = now() or t.loaded_from is null "
        "or t.loaded_from ->> 'file' is distinct from %(file)s) "
        "and t.loaded_from ->> 'load_id' is distinct from %(load_id)s"
    ).format(p=sql.Identifier(stamp.stage), match=same_key(stamp.key, "t", "p")), stamp.params)


def soft_delete_missing(conn: psycopg.Connection, table: str, key: list[str], stage_name: str, tenant_ids: list,
                        protected_stage: str | None, max_share: float, sheet: str, source_file: str,
                        staged_keys: int | None = None, owner: str = "tenant_id", hold_back: bool = False) -> list[str]:
    """Soft-delete the live rows that this workbook loaded (their `loaded_from` names `source_file`) in the given
    tenants and that the sheet no longer has, unless that is too many; returns their natural keys. Rows the
    application created, or another workbook loaded, are never touched.

    `staged_keys`, the number of distinct keys staged, allows a shortcut: after the upsert every staged key is
    live and stamped, so when the tenants have exactly that many such rows none is missing from the sheet.

    `hold_back`: delete nothing and return the keys that would have been deleted (a rejected row's key is in doubt,
    so any of them may be that row)."""
    params = {"tenants": tenant_ids, "file": source_file}
    owned = sql.SQL("t.deleted_at is null and t.{} = any(%(tenants)s) and t.loaded_from ->> 'file' = %(file)s") \
        .format(sql.Identifier(owner))
    live = conn.execute(sql.SQL("select count(*) from {} t where ").format(sql.Identifier(table)) + owned,
                        params).fetchone()[0]
    if staged_keys is not None and live == staged_keys:
        return []

    def absent_from(stage_table: str) -> sql.Composable:
        matches = same_key(key, "s", "t")
        return sql.SQL("and not exists (select 1 from {s} s where {m})").format(s=sql.Identifier(stage_table), m=matches)

    missing = sql.SQL("from {table} t where {owned} {absent} {protected}").format(
        table=sql.Identifier(table), owned=owned, absent=absent_from(stage_name),
        protected=absent_from(protected_stage) if protected_stage else sql.SQL(""),
    )
    natural = sql.SQL(" || '|' || ").join(sql.SQL("x.{}::text").format(sql.Identifier(k)) for k in key if k != owner)
    if hold_back:
        return [k for (k,) in conn.execute(sql.SQL("select ") + natural + sql.SQL(" from {table} x where x.ctid in "
                                           "(select t.ctid ").format(table=sql.Identifier(table)) + missing
                                           + sql.SQL(") order by 1"), params).fetchall()]
    doomed = conn.execute(sql.SQL("select count(*) ") + missing, params).fetchone()[0]
    if not doomed:
        return []
    if doomed > max_share * live:
        raise DeletionGuardError(
            f"Refusing to load {sheet}: it would soft-delete {doomed} of {live} live {table} rows "
            f"({doomed / live:.0%}, limit {max_share:.0%}). If the sheet is complete and the deletions are "
            f"intended, raise max_delete_share for this run; otherwise restore the missing rows.")
    statement = (sql.SQL("with gone as (update {table} x set deleted_at = now() where x.ctid in (select t.ctid ")
                 .format(table=sql.Identifier(table)) + missing
                 + sql.SQL(") returning ") + natural + sql.SQL(" as natural_key) select natural_key from gone order by 1"))
    return [natural_key for (natural_key,) in conn.execute(statement, params).fetchall()]


def sync_links(conn: psycopg.Connection, table: str, owner_column: str, other_column: str, stage_name: str,
               extra_columns: list[str] | None = None) -> Counts:
    """Make the links of every owner in `stage_name` exactly the staged ones (stage columns are named as in
    the link table); owners absent from the stage are left alone."""
    extra = extra_columns or []
    columns = [owner_column, other_column, "tenant_id", *extra]
    ident = sql.Identifier
    total = conn.execute(sql.SQL("select count(*) from {}").format(ident(stage_name))).fetchone()[0]
    removed = conn.execute(sql.SQL(
        "delete from {t} l where l.{o} in (select {o} from {s}) "
        "and not exists (select 1 from {s} s where s.{o} = l.{o} and s.{x} = l.{x})"
    ).format(t=ident(table), o=ident(owner_column), x=ident(other_column), s=ident(stage_name))).rowcount
    source = sql.SQL("select {cols} from {s} order by {o}, {x}").format(
        cols=sql.SQL(", ").join(map(ident, columns)), s=ident(stage_name), o=ident(owner_column), x=ident(other_column))
    inserted, updated = _write_changes(conn, table, [owner_column, other_column], columns, source,
                                       ["tenant_id", *extra], [], None, total)
    return Counts(inserted=inserted, updated=updated, unchanged=total - inserted - updated, deleted=removed)
