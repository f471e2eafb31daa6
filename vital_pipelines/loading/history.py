"""Seeing and taking back loads: the ledger of loads, what one load did row by row, and its undo.

Every registry load writes, in its own transaction, one `row_history` entry per row it inserted, changed or deleted
(schema/28). An undo reverts exactly those entries, newest first, as a load of its own: ledger row (`undo_of`),
audit entry and history, so an undo can itself be undone. It refuses when a later load changed one of the same rows
(unless that later load was itself undone), naming the rows and the loads, and when the load was already undone.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field

import psycopg
from psycopg.types.json import Jsonb

from vital_pipelines.db.locks import lock_for_transaction

UNDO_LOCK = "vital_pipelines:undo"


class UndoRefused(RuntimeError):
    """The load cannot be taken back as asked; the message says why and what stands in the way."""


@dataclass(frozen=True)
class LoadEntry:
    load_id: str
    target: str
    source_file: str
    status: str
    inserted: int
    updated: int
    unchanged: int
    deleted: int
    rejected: int
    finished_at: object
    run_id: str | None
    undo_of: str | None
    undone_by: str | None


@dataclass
class UndoResult:
    load_id: str
    undo_load_id: str | None
    dry_run: bool
    changes: Counter = field(default_factory=Counter)  # (table, action) -> rows
    rows: list[tuple[str, str, dict]] = field(default_factory=list)  # (action, table, key), newest first

    @property
    def total(self) -> int:
        return sum(self.changes.values())


_ACTIONS = {"insert": "remove (soft-delete) the row it added", "update": "restore the values it changed",
            "delete": "put back the link it removed"}

_LEDGER = ("select l.id::text, l.target, l.source_file, l.status, l.inserted, l.updated, l.unchanged, l.deleted, "
           "l.rejected, l.finished_at, l.run_id, l.details->>'undo_of', "
           "(select u.id::text from pipeline_loads u where u.details->>'undo_of' = l.id::text "
           " and u.status = 'succeeded' order by u.finished_at desc limit 1) from pipeline_loads l ")


def list_loads(conn: psycopg.Connection, *, target: str | None = None, limit: int = 20) -> list[LoadEntry]:
    """The latest loads, newest first; `target` keeps one source's (e.g. `personas`)."""
    rows = conn.execute(_LEDGER + "where (%(target)s::text is null or l.target = %(target)s) "
                        "order by l.finished_at desc, l.id limit %(limit)s", {"target": target, "limit": limit})
    return [LoadEntry(*row) for row in rows]


def _owned_by(target: str, tenant_slug: str, platform_slug: str) -> bool:
    """A tenant's loads are those of its own sources (`tenants/<slug>/…`); the platform's, those of raw/ itself."""
    return (not target.startswith("tenants/")) if tenant_slug == platform_slug else target.startswith(
        f"tenants/{tenant_slug}/")


def tenant_loads(conn: psycopg.Connection, tenant_slug: str, platform_slug: str, *, limit: int = 50) -> list[LoadEntry]:
    """The newest loads of one tenant's own sources."""
    prefix = "tenants/%" if tenant_slug == platform_slug else f"tenants/{tenant_slug}/%"
    negate = "not " if tenant_slug == platform_slug else ""
    rows = conn.execute(_LEDGER + f"where {negate}l.target like %(prefix)s order by l.finished_at desc, l.id "
                        "limit %(limit)s", {"prefix": prefix, "limit": limit})
    return [LoadEntry(*row) for row in rows]


def tenant_load(conn: psycopg.Connection, load_id: str, tenant_slug: str, platform_slug: str) -> LoadEntry:
    """One load of the tenant's own sources; `UndoRefused` for any other (another tenant's looks the same as none)."""
    try:
        entry = find_load(conn, load_id)
    except UndoRefused:
        entry = None
    if entry is None or not _owned_by(entry.target, tenant_slug, platform_slug):
        raise UndoRefused("No such load for your tenant.")
    return entry


def find_load(conn: psycopg.Connection, load_id: str) -> LoadEntry:
    try:
        uuid.UUID(load_id)
    except ValueError:
        raise UndoRefused(f"{load_id!r} is not a load id (see `vital-pipelines loads list`)") from None
    row = conn.execute(_LEDGER + "where l.id = %s", (load_id,)).fetchone()
    if row is None:
        raise UndoRefused(f"no load {load_id} in the ledger (see `vital-pipelines loads list`)")
    return LoadEntry(*row)


def latest_load(conn: psycopg.Connection, target: str) -> LoadEntry:
    """The newest load of `target` that changed something and was not undone (an undo counts: `--latest` twice
    undoes the undo)."""
    row = conn.execute(
        _LEDGER + "where l.target = %s and l.status = 'succeeded' "
        "and not exists (select 1 from pipeline_loads u where u.details->>'undo_of' = l.id::text and u.status = 'succeeded') "
        "and exists (select 1 from row_history h where h.load_id = l.id) "
        "order by l.finished_at desc, l.id limit 1", (target,)).fetchone()
    if row is None:
        raise UndoRefused(f"no load of {target!r} that changed a row is left to undo")
    return LoadEntry(*row)


def load_changes(conn: psycopg.Connection, load_id: str) -> list[tuple[int, str, dict, str, dict | None, dict | None]]:
    """(entry id, table, row key, operation, before, after) of every row the load changed, in order."""
    return conn.execute("select id, table_name, row_key, operation, before, after from row_history "
                        "where load_id = %s order by id", (load_id,)).fetchall()


def row_history(conn: psycopg.Connection, table: str, key: dict) -> list[tuple]:
    """A row's history, oldest first: (load id, operation, before, after, recorded at)."""
    return conn.execute("select load_id::text, operation, before, after, recorded_at from row_history "
                        "where table_name = %s and row_key = %s order by id", (table, Jsonb(key))).fetchall()


def _blockers(conn: psycopg.Connection, load_id: str) -> list[tuple[str, dict, str]]:
    """(table, key, load) of later changes to this load's rows by loads that still stand: a later load that was
    itself undone, and the undo that took it back, do not stand in the way."""
    return conn.execute(
        "with mine as (select table_name, row_key, max(id) as last from row_history where load_id = %(load)s "
        "  group by 1, 2),"
        " cancelled as (select l.id from pipeline_loads l where exists (select 1 from pipeline_loads u "
        "  where u.details->>'undo_of' = l.id::text and u.status = 'succeeded')),"
        " undos_of_cancelled as (select u.id from pipeline_loads u join cancelled c on u.details->>'undo_of' = c.id::text)"
        " select distinct later.table_name, later.row_key, later.load_id::text from mine"
        " join row_history later on later.table_name = mine.table_name and later.row_key = mine.row_key"
        "  and later.id > mine.last and later.load_id <> %(load)s"
        " where later.load_id not in (select id from cancelled) and later.load_id not in (select id from undos_of_cancelled)"
        " order by 1, 3", {"load": load_id}).fetchall()


def undo_load(conn: psycopg.Connection, load_id: str, *, dry_run: bool = False, run_id: str | None = None) -> UndoResult:
    """Take back everything load `load_id` changed, in one transaction (see the module docstring); with `dry_run`,
    say what would change and write nothing. Raises `UndoRefused` with the reason."""
    with conn.transaction():
        lock_for_transaction(conn, UNDO_LOCK)
        entry = find_load(conn, load_id)
        lock_for_transaction(conn, f"vital_pipelines:load:{entry.target}")
        if entry.undone_by:
            raise UndoRefused(f"load {load_id} ({entry.target}) was already undone by load {entry.undone_by}; undo "
                              f"that one to bring its changes back")
        changes = load_changes(conn, load_id)
        if not changes:
            raise UndoRefused(f"load {load_id} ({entry.target}) changed no row: there is nothing to undo")
        blockers = _blockers(conn, load_id)
        if blockers:
            named = "; ".join(f"{table} {key_text(key)} (load {later})" for table, key, later in blockers[:20])
            more = f" and {len(blockers) - 20} more" if len(blockers) > 20 else ""
            raise UndoRefused(f"later loads changed {len(blockers)} of the rows load {load_id} changed: {named}{more}. "
                              f"Undo those loads first (newest first), then this one.")
        result = UndoResult(load_id=load_id, undo_load_id=None, dry_run=dry_run)
        for _, table, key, operation, _, _ in reversed(changes):
            result.changes[(table, _ACTIONS[operation])] += 1
            result.rows.append((operation, table, key))
        if dry_run:
            return result
        undo_id = str(uuid.uuid4())
        conn.execute("select set_config('vital.load_id', %s, true)", (undo_id,))
        # Newest first, in one statement: the array's order is the order the function is called in.
        try:
            with conn.transaction():
                conn.execute("select count(private.revert_history_entry(entry)) from unnest(%s::bigint[]) entry",
                             ([entry_id for entry_id, *_ in reversed(changes)],))
        except psycopg.errors.NoDataFound as changed:
            raise UndoRefused(f"{changed.diag.message_primary}. Nothing was undone: load {load_id} can no longer be "
                              f"taken back as it was.") from None
        reverted = Counter(op for *_, op, _, _ in changes)
        details = {"undo_of": load_id, "rows": len(changes),
                   "tables": {table: n for table, n in Counter(t for _, t, *_ in changes).items()}}
        conn.execute(
            "insert into pipeline_loads (id, target, source_file, source_sha256, run_id, policy, status, inserted, "
            "updated, unchanged, deleted, rejected, details, finished_at) values (%s, %s, %s, %s, %s, 'undo', "
            "'succeeded', %s, %s, 0, %s, 0, %s, clock_timestamp())",
            (undo_id, entry.target, f"undo of {load_id}", "0" * 64, run_id, reverted["delete"], reverted["update"],
             reverted["insert"], Jsonb(details)))
        conn.execute("insert into audit_log (source, action, entity_type, entity_id, details) "
                     "values ('pipeline', 'undo', %s, %s, %s)", (entry.target, load_id, Jsonb({"undo_load_id": undo_id,
                                                                                             **details})))
        result.undo_load_id = undo_id
        return result


# Columns a change line leaves out: the clock's, and the provenance stamp every load rewrites.
_UNSHOWN = ("updated_at", "created_at", "loaded_from")


def describe_change(operation: str, before: dict | None, after: dict | None) -> str:
    """What one history entry did to its row, in words: added, removed, or each changed column old -> new."""
    if operation == "insert":
        return "added"
    if operation == "delete":
        return "removed"
    return "; ".join(f"{column}: {_shown((before or {}).get(column))} -> {_shown(value)}"
                     for column, value in (after or {}).items() if column not in _UNSHOWN)


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…"


def key_text(key: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in key.items())
