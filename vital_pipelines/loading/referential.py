"""Foreign keys of the loaders' inserts, checked twice: by PostgreSQL itself (its per-row constraint triggers, always), and
before that by one set-based statement per insert that names the constraint and a few of the missing keys, so a
steward reads which values refer to nothing instead of the first violating row of a constraint error.

The pre-check looks only at keys whose columns the insert gives and where it decides what the constraint would:
not self-referencing (a row may refer to another row of the same statement), not deferred, not a multi-column MATCH
FULL key. A parent table that row-level security filters for this role (the constraint ignores RLS) is left to the
constraint. No trigger is ever skipped: only a superuser may set `session_replication_role`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

SAMPLE = 5


class MissingReferenceError(RuntimeError):
    """Rows about to be inserted refer to parent rows that do not exist."""


@dataclass(frozen=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    parent: tuple[str, str]
    parent_columns: tuple[str, ...]
    refers_to_itself: bool
    deferrable: bool
    match_full: bool
    parent_readable: bool
    parent_row_security: bool

    @property
    def pre_checkable(self) -> bool:
        """The set-based check decides what the constraint would: checked now (not deferred), MATCH SIMPLE
        semantics, and a parent this role may read."""
        return (not self.refers_to_itself and not self.deferrable and self.parent_readable
                and not (self.match_full and len(self.columns) > 1))


def foreign_keys(conn: psycopg.Connection, table: str) -> list[ForeignKey]:
    """The foreign keys declared on `table` (a name in the search path), columns in constraint order."""
    rows = conn.execute(
        """
        select c.conname, c.confrelid = c.conrelid, c.condeferrable, c.confmatchtype = 'f',
               (select bool_and(has_column_privilege(c.confrelid, k, 'SELECT')) from unnest(c.confkey) k),
               row_security_active(c.confrelid),
               array(select a.attname::text from unnest(c.conkey) with ordinality k(attnum, n)
                     join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum order by k.n),
               pn.nspname::text, pc.relname::text,
               array(select a.attname::text from unnest(c.confkey) with ordinality k(attnum, n)
                     join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.attnum order by k.n)
        from pg_constraint c
        join pg_class pc on pc.oid = c.confrelid
        join pg_namespace pn on pn.oid = pc.relnamespace
        where c.contype = 'f' and c.conrelid = %s::regclass
        order by c.conname
        """, (table,)).fetchall()
    return [ForeignKey(name, tuple(cols), (schema, parent), tuple(pcols), self_ref, deferrable, match_full, readable,
                       row_security)
            for name, self_ref, deferrable, match_full, readable, row_security, cols, schema, parent, pcols in rows]


def pre_checked_keys(conn: psycopg.Connection, table: str, columns: list[str]) -> list[ForeignKey]:
    """The foreign keys of `table` that an insert of `columns` fills in and the pre-check can decide."""
    return [fk for fk in foreign_keys(conn, table) if fk.pre_checkable and all(c in columns for c in fk.columns)]


def check_references(conn: psycopg.Connection, table: str, keys: list[ForeignKey], columns: list[str],
                     new_rows: sql.Composable, params: dict | None = None) -> None:
    """In one statement, evaluating `new_rows` (a query returning `columns` of `table`, in that order) once: for
    each key, the distinct non-null keys the rows refer to and how many of them have a parent. Raises
    MissingReferenceError naming the constraint and a few missing keys when a parent is absent, unless row-level
    security filters that parent table for this role: then the constraint decides."""
    if not keys:
        return
    ident = sql.Identifier
    used = sorted({c for fk in keys for c in fk.columns})
    parts = [sql.SQL("n as materialized (select {} from {})").format(
        sql.SQL(", ").join(map(ident, used)), _named(new_rows, columns))]
    counts = []
    for i, fk in enumerate(keys):
        refs = ident(f"refs_{i}")
        parts.append(sql.SQL("{refs} as materialized (select distinct {cols} from n where {not_null})").format(
            refs=refs, cols=sql.SQL(", ").join(map(ident, fk.columns)), not_null=_not_null(fk, "n")))
        counts += [sql.SQL("(select count(*) from {})").format(refs),
                   sql.SQL("(select count(*) from {refs} r where exists (select 1 from {parent} p where {joined}))")
                   .format(refs=refs, parent=ident(*fk.parent), joined=_matches_parent(fk, "r"))]
    found = conn.execute(sql.SQL("with {} select {}").format(sql.SQL(", ").join(parts), sql.SQL(", ").join(counts)),
                         params).fetchone()
    for fk, referenced, present in zip(keys, found[0::2], found[1::2]):
        if present != referenced and not fk.parent_row_security:
            raise MissingReferenceError(_describe_missing(conn, table, fk, _named(new_rows, columns), params,
                                                          referenced - present))


def _named(rows: sql.Composable, columns: list[str]) -> sql.Composable:
    return sql.SQL("({}) as n ({})").format(rows, sql.SQL(", ").join(map(sql.Identifier, columns)))


def _not_null(fk: ForeignKey, alias: str) -> sql.Composable:
    """MATCH SIMPLE: a row with any of the key's columns null refers to nothing."""
    return sql.SQL(" and ").join(sql.SQL("{}.{} is not null").format(sql.Identifier(alias), sql.Identifier(c))
                                 for c in fk.columns)


def _matches_parent(fk: ForeignKey, alias: str) -> sql.Composable:
    """The parent row `p` that the key's columns of row `alias` refer to."""
    return sql.SQL(" and ").join(sql.SQL("p.{} = {}.{}").format(sql.Identifier(p), sql.Identifier(alias),
                                                                sql.Identifier(c))
                                 for c, p in zip(fk.columns, fk.parent_columns))


def _describe_missing(conn: psycopg.Connection, table: str, fk: ForeignKey, named_rows: sql.Composable,
                      params: dict | None, count: int) -> str:
    ident = sql.Identifier
    sample = conn.execute(sql.SQL(
        "select distinct {cols} from {rows} where {not_null} "
        "and not exists (select 1 from {parent} p where {match}) limit {limit}"
    ).format(cols=sql.SQL(", ").join(sql.SQL("n.{}").format(ident(c)) for c in fk.columns), rows=named_rows,
             not_null=_not_null(fk, "n"), parent=ident(*fk.parent), limit=sql.Literal(SAMPLE),
             match=_matches_parent(fk, "n")), params).fetchall()
    examples = ", ".join(str(row[0]) if len(row) == 1 else str(tuple(map(str, row))) for row in sample)
    return (f"{table}: {count} distinct value(s) of ({', '.join(fk.columns)}) refer to no row of "
            f"{'.'.join(fk.parent)} (constraint {fk.name}); for example {examples}")


def insert_rows(conn: psycopg.Connection, table: str, columns: list[str], new_rows: sql.Composable, rows: int,
                params: dict | None = None) -> None:
    """INSERT the `rows` rows of the query `new_rows` (returning `columns`, in that order) into `table`, after the
    set-based pre-check (see the module docstring)."""
    if not rows:
        return
    keys = pre_checked_keys(conn, table, columns)
    check_references(conn, table, keys, columns, new_rows, params)
    log.debug("%s: %d new rows, %d foreign key(s) pre-checked set-based", table, rows, len(keys))
    conn.execute(sql.SQL("insert into {t} ({cols}) ").format(
        t=sql.Identifier(table), cols=sql.SQL(", ").join(map(sql.Identifier, columns))) + new_rows, params)
