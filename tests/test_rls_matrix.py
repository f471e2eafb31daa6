"""The row-level security matrix: every table of the schema × select/insert/update/delete × every kind of caller
(anon; owner, admin, member and viewer of a tenant at each of the 5 levels; a member of a sibling tenant; the loader
role; service_role), asserting row counts, since RLS denies silently.

The expected outcome of each cell comes from the rules below, written from the access design (README, "Tenant
isolation"), not read back from the policies: a test of the policies against themselves could not fail.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psycopg
import pytest

from tests import rls_world
from tests.rls_world import Actor
from vital_pipelines.db import connect
from vital_pipelines.entities import ENTITIES
from vital_pipelines.loading.entity_load import DERIVED_LINKS
from vital_pipelines.db.scratch import create_database, drop_database, loader_url

OPERATIONS = ("select", "insert", "update", "delete")
ADMINS = {"owner", "admin"}
WRITERS = {"owner", "admin", "manager", "member"}

# What the loads read and write (the loader's whole reach): the registry entities' tables and junctions, as the
# entity catalog declares them, the matrix, the knowledge tables and the quarantine.
REGISTRY_JUNCTIONS = ({e.table for e in ENTITIES if e.links_only} | {c.link.table for e in ENTITIES for c in e.links}
                      | {junction for links in DERIVED_LINKS.values() for junction, *_ in links})
LOADED = {e.table for e in ENTITIES} | REGISTRY_JUNCTIONS | {"solution_industry_matrix", "knowledge_sources",
                                                             "knowledge_chunks", "quarantined_rows"}
LOADER_DELETES = REGISTRY_JUNCTIONS | {"knowledge_sources", "knowledge_chunks"}
LOADER_LOOKS_UP = {"tenants"}
# Usage and billing: the platform writes them, the tenant reads them.
PLATFORM_WRITTEN = {"tenant_usage_tracking", "subscription_usage_monthly", "token_usage_messages",
                    "token_usage_sessions", "token_usage_consultations", "cost_allocation"}
AUDIT = {"audit_log", "service_role_audit"}
LEDGERS = {"pipeline_loads", "quarantined_rows", "schema_migrations", "row_history"}
# Kept by triggers from the chunks: read like the content they count, written by nobody but the owner's triggers.
STATISTICS = {"knowledge_lexicon", "knowledge_corpus"}
LOADER_READS = STATISTICS | {"row_history"}


@dataclass(frozen=True)
class Row:
    owner: str | None
    visibility: str | None = None
    created_by: str | None = None
    user_id: str | None = None
    role: str | None = None
    profile_id: str | None = None
    source: str | None = None


class Rules:
    """Who may do what to a row, from the tenant paths of the world."""

    def __init__(self, paths: dict[str, list[str]]):
        self.paths = paths

    def within(self, ancestor: str | None, tenant: str | None) -> bool:
        if ancestor is None or tenant is None:
            return False
        top = self.paths[ancestor]
        return self.paths[tenant][: len(top)] == top

    def same_root(self, a: str | None, b: str | None) -> bool:
        return a is not None and b is not None and self.paths[a][0] == self.paths[b][0]

    def allowed(self, actor: Actor, op: str, table: str, row: Row, kind: str) -> bool:
        if table == "schema_migrations":
            return False
        if actor.role == "service_role":
            return op in ("select", "insert") if table in AUDIT else True
        if actor.role == "vital_loader":
            if table in LOADED:
                return op != "delete" or table in LOADER_DELETES
            if table in LOADER_LOOKS_UP or table in LOADER_READS:
                return op == "select"
            if table == "pipeline_loads":
                return op in ("select", "insert")
            if table == "audit_log":
                return op == "insert" and row.source == "pipeline"
            return False
        if actor.role == "anon":
            return op == "select" and kind == "reference"
        return self._member(actor, op, table, row, kind)

    def _member(self, actor: Actor, op: str, table: str, row: Row, kind: str) -> bool:
        home, role, me, tenant = actor.tenant, actor.tenant_role, actor.user_id, row.owner
        admin_over = role in ADMINS and self.within(home, tenant)
        reads_tenant = home == tenant or admin_over
        if table == "tenants":
            return {"select": reads_tenant, "update": admin_over}.get(op, False)
        if table == "tenant_members":
            if op == "select":
                return row.user_id == me or reads_tenant
            manages = home == tenant and (role == "owner" or (role == "admin" and row.role != "owner"))
            return manages and (op == "insert" or row.user_id == me or reads_tenant)
        if table == "api_keys":
            return home == tenant and role in ADMINS
        if table == "user_profiles":
            return op in ("select", "insert", "update") and row.profile_id == me
        if table in AUDIT:
            return op == "select" and tenant is not None and admin_over
        if table == "data_retention_policies":
            return op == "select" and (tenant is None or reads_tenant)
        if table in LEDGERS:
            return False
        if kind == "reference":
            return op == "select"
        readable = self._reads_content(actor, row, admin_over, reads_tenant)
        if op == "select":
            return readable
        if table in STATISTICS:
            return False
        if table in PLATFORM_WRITTEN:
            return False
        writable = (home == tenant and role in WRITERS) or admin_over
        return writable if op == "insert" else readable and writable

    def _reads_content(self, actor: Actor, row: Row, admin_over: bool, reads_tenant: bool) -> bool:
        visibility, tenant = row.visibility, row.owner
        if visibility is None or visibility == "tenant":
            return reads_tenant
        if visibility == "public":
            return True
        if visibility == "private":
            return (row.created_by is not None and row.created_by == actor.user_id) or admin_over
        if visibility == "subtenant":
            return reads_tenant or self.within(tenant, actor.tenant)
        if visibility == "organization":
            return reads_tenant or self.same_root(actor.tenant, tenant)
        raise AssertionError(f"unknown visibility {visibility}")


def _quote(name: str) -> str:
    return '"' + name + '"'


def _rows(conn: psycopg.Connection, table: rls_world.Table) -> list[Row]:
    columns = table.columns
    owner = table.owner_column
    select = [f"{_quote(owner)}::text" if owner else "null"]
    for name in ("visibility", "created_by", "user_id", "role"):
        select.append(f"{_quote(name)}::text" if name in columns and table.name in _SHAPED.get(name, {table.name})
                      else "null")
    select.append("id::text" if table.name == "user_profiles" else "null")
    select.append("source::text" if table.name == "audit_log" else "null")
    return [Row(*r) for r in conn.execute(f"select {', '.join(select)} from public.{_quote(table.name)}")]


# user_id and role describe a membership only in tenant_members.
_SHAPED = {"user_id": {"tenant_members"}, "role": {"tenant_members"}}


# An update or delete that reads no column is judged by its own policy alone (a SET or WHERE that reads a column
# brings in the select policy too), so the cells write constants and delete without a WHERE: a blind write shows.
_CONSTANT_UPDATE = {"tenants": "contact_name = 'x'", "tenant_members": "status = 'active'", "api_keys": "scopes = '{}'",
                    "user_profiles": "timezone = 'UTC'"}
_COUNT_COLUMN = {"api_keys": "id"}


def _statement(op: str, table: rls_world.Table, candidate: dict | None = None) -> tuple[str, list]:
    name = _quote(table.name)
    if op == "select":
        return f"select count({_COUNT_COLUMN.get(table.name, '*')}) from public.{name}", []
    if op == "update":
        if table.name in _CONSTANT_UPDATE:
            assignment = _CONSTANT_UPDATE[table.name]
        elif "updated_at" in table.columns:
            assignment = "updated_at = '2020-01-01'"
        else:
            column = _quote(table.owner_column or next(iter(table.columns)))
            assignment = f"{column} = {column}"
        return f"update public.{name} set {assignment}", []
    if op == "delete":
        return f"delete from public.{name}", []
    columns = list(candidate)
    return (f"insert into public.{name} ({', '.join(map(_quote, columns))}) values "
            f"({', '.join(f'%s::{table.columns[c].type}' for c in columns)})", [candidate[c] for c in columns])


def _children_emptied(table: rls_world.Table, tables: dict[str, rls_world.Table]) -> tuple[str, list] | None:
    """Empty the tables that refer to `table` (rolled back with the cell), so that a delete of any of its rows
    breaks no foreign key and its count is the policy's alone."""
    children = sorted({t.name for t in tables.values() for fk in t.foreign_keys
                       if fk.parent == table.name and t.name != table.name})
    if not children:
        return None
    return f"truncate {', '.join('public.' + _quote(c) for c in children)} cascade", []


def _making_room(table: rls_world.Table, candidate: dict) -> tuple[str, list] | None:
    if not table.one_per_tenant:
        return None
    return (f"delete from public.{_quote(table.name)} where {_quote(table.owner_column)} = %s",
            [candidate[table.owner_column]])


def _run(conn: psycopg.Connection, actor: Actor, statement: str, params: list, counting: bool,
         before: tuple[str, list] | None = None) -> int:
    """The rows the statement saw or changed as `actor`, rolled back; a refused privilege or policy counts 0.
    `before` runs first as the connection's own role (the owner's, making room for a one-per-tenant row)."""
    try:
        with conn.transaction(force_rollback=True):
            if before and actor.role != "vital_loader":
                conn.execute(*before)
            if actor.role != "vital_loader":
                conn.execute(f"set local role {actor.role}")
            if actor.user_id:
                conn.execute("select set_config('request.jwt.claims', %s, true)",
                             (json.dumps({"sub": actor.user_id, "role": "authenticated"}),))
            cursor = conn.execute(statement, params)
            return cursor.fetchone()[0] if counting else cursor.rowcount
    except psycopg.errors.InsufficientPrivilege:
        return 0
    except psycopg.errors.ForeignKeyViolation:
        return -1  # the policy let a row go that other rows still refer to: never what a cell expects


@pytest.fixture(scope="module")
def world(make_schema_database, server_url):
    """The populated world, and a copy of it: the cells are shared between two connections, one per copy, so that
    both cores work and no cell sees another's uncommitted writes or waits for its locks."""
    url = make_schema_database()
    with connect(url) as conn:
        actors, tables, candidates, sibling = rls_world.build(conn)
    twin = create_database(server_url, "vital_test_twin", template=psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    try:
        yield (url, twin), actors, tables, candidates, sibling
    finally:
        drop_database(twin)


def _kind(name: str, table: rls_world.Table) -> str:
    if table.owner_column:
        return "tenant"
    return "reference" if name not in LEDGERS | AUDIT | {"user_profiles", "pipeline_loads"} else "special"


def _cells(url: str, actors: list[Actor], tables: dict, candidates: dict, rows: dict, rules: Rules) -> tuple[list[str], int]:
    """Every cell of `actors`' rows of the matrix, on the database at `url`: (mismatches, cells)."""
    owner = connect(url, autocommit=False)
    loader = connect(loader_url(url))
    mismatches, cells = [], 0
    try:
        for actor in actors:
            conn = loader if actor.role == "vital_loader" else owner
            for name, table in sorted(tables.items()):
                kind = _kind(name, table)
                for op in OPERATIONS:
                    cells += 1
                    if op == "insert":
                        got = expected = 0
                        for tenant, candidate in candidates.get(name, {}).items():
                            statement, params = _statement(op, table, candidate)
                            got += _run(conn, actor, statement, params, False, _making_room(table, candidate))
                            probe = Row(None if tenant == "None" else tenant,
                                        visibility=candidate.get("visibility"), created_by=candidate.get("created_by"),
                                        user_id=candidate.get("user_id") if name == "tenant_members" else None,
                                        role=candidate.get("role") if name == "tenant_members" else None,
                                        profile_id=candidate.get("id") if name == "user_profiles" else None,
                                        source=candidate.get("source"))
                            if name == "tenants":
                                probe = Row(None)  # a new tenant: nobody but the platform creates one
                            expected += rules.allowed(actor, op, name, probe, kind)
                    else:
                        statement, params = _statement(op, table)
                        expected = sum(rules.allowed(actor, op, name, r, kind) for r in rows[name])
                        # Emptying the children (a TRUNCATE) is only needed where some rows may go: where none
                        # may, a delete the policy wrongly allows still shows, as a count or a foreign key error.
                        before = _children_emptied(table, tables) if op == "delete" and expected else None
                        got = _run(conn, actor, statement, params, op == "select", before)
                    if got != expected:
                        mismatches.append(f"{actor.name:>16} {op:<6} {name}: expected {expected}, got {got}")
    finally:
        owner.close()
        loader.close()
    return mismatches, cells


def test_every_cell_of_the_rls_matrix(world):
    (url, twin), actors, tables, candidates, _sibling = world
    owner = connect(url, autocommit=False)
    try:
        paths = {tid: path.split(".") for tid, path in owner.execute("select id::text, tenant_path::text from tenants")}
        rows = {name: _rows(owner, table) for name, table in tables.items()}
        owner.commit()
        rules = Rules(paths)
        all_tables = {r[0] for r in owner.execute(
            "select relname from pg_class where relnamespace = 'public'::regnamespace and relkind in ('r', 'p') "
            "and not exists (select 1 from pg_depend d where d.objid = pg_class.oid and d.deptype = 'e')")}
        owner.rollback()
        assert set(tables) == all_tables
        for name, by_tenant in candidates.items():  # every candidate row is insertable by the platform itself
            for candidate in by_tenant.values():
                statement, params = _statement("insert", tables[name], candidate)
                assert _run(owner, Actor("check", "service_role"), statement, params, False,
                            _making_room(tables[name], candidate)) == 1, name
    finally:
        owner.close()

    halves = (actors[0::2], actors[1::2])
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda job: _cells(job[0], job[1], tables, candidates, rows, rules),
                                zip((url, twin), halves)))
    mismatches = [m for found, _cells_run in results for m in found]
    cells = sum(n for _found, n in results)
    assert cells == len(tables) * len(OPERATIONS) * len(actors) and len(actors) == 24 and len(tables) >= 85
    assert not mismatches, f"{len(mismatches)} of {cells} cells differ:\n" + "\n".join(mismatches[:60])
