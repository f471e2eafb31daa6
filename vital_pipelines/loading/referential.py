"""Set-based foreign-key checks for bulk inserts.

PostgreSQL checks a foreign key with one trigger call per inserted row and key: a ×100 registry load makes about
600,000 of them, about a quarter of its time. For a large insert the loader instead checks every foreign key of the
new rows in one statement — the distinct referenced keys, looked up and locked `FOR KEY SHARE` exactly as the
per-row triggers would lock them — and then inserts with the per-row triggers skipped
(`session_replication_role = replica`, transaction-local, for that one statement). The constraints stay in the
catalog and go on guarding every other writer.

The set-based path is taken only where it decides exactly what the per-row checks would: the session may set
`session_replication_role` (superuser, or PostgreSQL 15's `GRANT SET ON PARAMETER`); the only triggers the insert
would fire are foreign-key checks, and the table has no rules; of the keys whose columns are all inserted, none
refers to the table itself (a row could refer to another row of the same statement), is deferred, or is a
multi-column MATCH FULL key, and the role may read and lock each parent; a key left out of the insert has no
defaulted column (and, if MATCH FULL, no column given), so it is null in every new row. A parent hidden by
row-level security (which the per-row check ignores) is left to the per-row check. Otherwise the rows are inserted
the ordinary way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

BULK_CHECK_MIN_ROWS = 100
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
    parent_lockable: bool
    parent_row_security: bool

    @property
    def checkable_set_based(self) -> bool:
        """The set-based check decides exactly what the per-row one would: checked now (not deferred), MATCH
        SIMPLE semantics, and a parent this role may read and lock."""
        return (not self.refers_to_itself and not self.deferrable and self.parent_lockable
                and not (self.match_full and len(self.columns) > 1))


def foreign_keys(conn: psycopg.Connection, table: str) -> list[ForeignKey]:
    """The foreign keys declared on `table` (a name in the search path), columns in constraint order."""
    rows = conn.execute(
        """
        select c.conname, c.confrelid = c.conrelid, c.condeferrable, c.confmatchtype = 'f',
               (select bool_and(has_column_privilege(c.confrelid, k, 'SELECT')) from unnest(c.confkey) k)
                   and has_any_column_privilege(c.confrelid, 'UPDATE'),
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
    return [ForeignKey(name, tuple(cols), (schema, parent), tuple(pcols), self_ref, deferrable, match_full, lockable,
                       row_security)
            for name, self_ref, deferrable, match_full, lockable, row_security, cols, schema, parent, pcols in rows]


def may_skip_row_triggers(conn: psycopg.Connection) -> bool:
    """Whether this session may set `session_replication_role` (never true before PostgreSQL 15 for non-superusers)."""
    if conn.execute("select current_setting('is_superuser') = 'on'").fetchone()[0]:
        return True
    if conn.info.server_version < 150000:
        return False
    return bool(conn.execute("select has_parameter_privilege('session_replication_role', 'SET')").fetchone()[0])


def foreign_key_checks(conn: psycopg.Connection) -> str:
    """How this session's large inserts have their foreign keys checked, in words for run metadata."""
    if may_skip_row_triggers(conn):
        return f"set-based for inserts of {BULK_CHECK_MIN_ROWS}+ rows"
    return "per-row triggers (this role may not set session_replication_role)"


def bulk_insert_eligible(conn: psycopg.Connection, table: str, columns: list[str]) -> list[ForeignKey] | None:
    """The table's foreign keys when an insert of `columns` may use the set-based check (see the module docstring),
    else None."""
    if not may_skip_row_triggers(conn):
        return None
    other_insert_triggers = conn.execute(
        """
        select count(*) from pg_trigger
        where tgrelid = %s::regclass and tgenabled <> 'D' and (tgtype & 4) <> 0
          and not (tgisinternal and tgfoid = 'pg_catalog."RI_FKey_check_ins"'::regproc)
        """, (table,)).fetchone()[0]
    rules = conn.execute("select count(*) from pg_rewrite where ev_class = %s::regclass and rulename <> '_RETURN'",
                         (table,)).fetchone()[0]
    if other_insert_triggers or rules:
        return None
    defaulted = {name for name, in conn.execute(
        "select attname::text from pg_attribute where attrelid = %s::regclass and atthasdef and not attisdropped",
        (table,))}
    checked = []
    for fk in foreign_keys(conn, table):
        inserted = [c in columns for c in fk.columns]
        if all(inserted):
            if not fk.checkable_set_based:
                return None
            checked.append(fk)
        elif any(c in defaulted for c, given in zip(fk.columns, inserted) if not given):
            return None  # the default is a reference nobody would check
        elif fk.match_full and any(inserted):
            return None  # partly null under MATCH FULL is an error only the per-row check raises
        # Otherwise the key is null in every new row: nothing to check, whatever its parent.
    return checked


def check_and_lock_references(conn: psycopg.Connection, table: str, keys: list[ForeignKey], columns: list[str],
                              new_rows: sql.Composable, params: dict | None = None) -> bool:
    """In one statement, evaluating `new_rows` (a query returning `columns` of `table`, in that order) once:
    for each foreign key, the distinct non-null keys the rows refer to, and the parent rows found for them, locked
    `FOR KEY SHARE` as the per-row check would lock them. Raises MissingReferenceError naming the constraint and a
    few missing keys when a parent is absent — unless row-level security filters that parent table for this role
    (the per-row check ignores it): then False says "not decided here, let the per-row check decide"."""
    if not keys:
        return True
    ident = sql.Identifier
    used = sorted({c for fk in keys for c in fk.columns})
    parts = [sql.SQL("n as materialized (select {} from {})").format(
        sql.SQL(", ").join(map(ident, used)), _named(new_rows, columns))]
    counts = []
    for i, fk in enumerate(keys):
        refs, locked = ident(f"refs_{i}"), ident(f"locked_{i}")
        parts.append(sql.SQL("{refs} as materialized (select distinct {cols} from n where {not_null})").format(
            refs=refs, cols=sql.SQL(", ").join(map(ident, fk.columns)), not_null=_not_null(fk, "n")))
        parts.append(sql.SQL("{locked} as (select 1 from {parent} p join {refs} r on {joined} for key share of p)").format(
            locked=locked, parent=ident(*fk.parent), refs=refs, joined=_matches_parent(fk, "r")))
        counts += [sql.SQL("(select count(*) from {})").format(refs), sql.SQL("(select count(*) from {})").format(locked)]
    found = conn.execute(sql.SQL("with {} select {}").format(sql.SQL(", ").join(parts), sql.SQL(", ").join(counts)),
                         params).fetchone()
    for fk, referenced, locked in zip(keys, found[0::2], found[1::2]):
        if locked != referenced and fk.parent_row_security:
            return False
        if locked != referenced:
            raise MissingReferenceError(_describe_missing(conn, table, fk, _named(new_rows, columns), params,
                                                          referenced - locked))
    return True


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
    """INSERT the `rows` rows of the query `new_rows` (returning `columns`, in that order) into `table`; at
    least BULK_CHECK_MIN_ROWS rows on an eligible table get the set-based check instead of per-row triggers."""
    if not rows:
        return
    keys = bulk_insert_eligible(conn, table, columns) if rows >= BULK_CHECK_MIN_ROWS else None
    set_based = keys is not None and check_and_lock_references(conn, table, keys, columns, new_rows, params)
    if set_based:
        log.debug("%s: %d new rows, %d foreign key(s) checked set-based", table, rows, len(keys))
        previous = conn.execute("select current_setting('session_replication_role')").fetchone()[0]
        conn.execute("set local session_replication_role = replica")
    conn.execute(sql.SQL("insert into {t} ({cols}) ").format(
        t=sql.Identifier(table), cols=sql.SQL(", ").join(map(sql.Identifier, columns))) + new_rows, params)
    if set_based:
        # Transaction-local, so a failed insert ends it with the transaction (or the rolled-back savepoint); after a
        # good one the rest of the load must fire its triggers again.
        conn.execute("select set_config('session_replication_role', %s, true)", (previous,))
