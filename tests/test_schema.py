"""The live schema, introspected, against the seed spec."""

from __future__ import annotations

import re

import pytest

SEED_TENANTS = {
    "vital-platform": ("platform", 0),
    "pharma-solutions": ("solution_provider", 1),
    "acme-pharma": ("enterprise_client", 2),
    "acme-cro-partner": ("partner_org", 3),
    "meridian-oncology-pilot": ("trial_tenant", 4),
}


def seed_tables(spec: str) -> set[str]:
    """Every table the seed's entity model numbers ("13. **agents** - ..."), auth.users aside."""
    model = spec.split("## Complete Entity Model", 1)[1].split("## ENUM Types", 1)[0]
    names = set(re.findall(r"^\d+\.\s+\*\*([a-z_.]+)\*\*", model, flags=re.M))
    names |= set(re.findall(r"CREATE TABLE (\w+)", spec))
    names.discard("auth.users")
    return names


def seed_enums(spec: str) -> dict[str, list[str]]:
    block = spec.split("## ENUM Types", 1)[1].split("## Key Tables", 1)[0]
    return {
        name: [label.strip() for label in labels.split(",")]
        for name, labels in re.findall(r"^(\w+): (.+)$", block, flags=re.M)
    }


def test_spec_parses_into_80_tables_and_20_enums(seed_spec):
    assert len(seed_tables(seed_spec)) >= 75
    assert len(seed_enums(seed_spec)) == 20


def test_every_seed_table_exists(db, seed_spec):
    present = {row[0] for row in db.execute(
        "select table_name from information_schema.tables where table_schema = 'public'")}
    missing = sorted(seed_tables(seed_spec) - present)
    assert missing == []
    assert db.execute("select to_regclass('auth.users') is not null").fetchone()[0]


def test_enums_have_exactly_the_seed_labels_in_order(db, seed_spec):
    for name, labels in seed_enums(seed_spec).items():
        actual = [row[0] for row in db.execute(
            "select e.enumlabel from pg_enum e join pg_type t on t.oid = e.enumtypid "
            "join pg_namespace n on n.oid = t.typnamespace "
            "where n.nspname = 'public' and t.typname = %s order by e.enumsortorder", (name,))]
        assert actual == labels, name


def test_every_tenant_table_has_forced_rls_and_a_policy(db):
    rows = db.execute("""
        select c.relname, c.relrowsecurity, c.relforcerowsecurity,
               (select count(*) from pg_policies p where p.schemaname = 'public' and p.tablename = c.relname)
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind = 'r'
          and exists (select 1 from information_schema.columns k
                      where k.table_schema = 'public' and k.table_name = c.relname
                        and k.column_name in ('tenant_id', 'owner_tenant_id'))
    """).fetchall()
    assert len(rows) > 60
    unprotected = [name for name, enabled, forced, policies in rows if not (enabled and forced and policies >= 2)]
    assert unprotected == []


def test_every_foreign_key_is_indexed(db):
    rows = db.execute("""
        select con.conrelid::regclass::text, con.conname
        from pg_constraint con join pg_namespace n on n.oid = con.connamespace
        where con.contype = 'f' and n.nspname = 'public'
          and not exists (
              select 1 from pg_index idx
              where idx.indrelid = con.conrelid and idx.indpred is null
                and array(select unnest((idx.indkey::int2[])[0:cardinality(con.conkey) - 1])) = con.conkey)
    """).fetchall()
    assert rows == []


def test_seed_indexes_exist(db):
    names = {row[0] for row in db.execute("select indexname from pg_indexes where schemaname = 'public'")}
    assert {"idx_tenants_path", "idx_tenants_parent", "idx_tenants_root",
            "idx_knowledge_chunks_embedding_hnsw"} <= names
    method = db.execute("select am.amname from pg_class c join pg_am am on am.oid = c.relam "
                        "where c.relname = 'idx_tenants_path'").fetchone()[0]
    assert method == "gist"


def test_security_definer_functions_are_private_with_an_empty_search_path(db):
    definers = db.execute("""
        select n.nspname, p.proname, p.prorettype = 'trigger'::regtype, coalesce(p.proconfig, '{}'),
               has_function_privilege('anon', p.oid, 'EXECUTE'), has_function_privilege('public', p.oid, 'EXECUTE')
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where p.prosecdef and n.nspname not in ('pg_catalog', 'information_schema')
    """).fetchall()
    assert len(definers) >= 8
    for schema, name, is_trigger, settings, anon, public in definers:
        assert "search_path=\"\"" in settings, f"{schema}.{name} runs with {settings}"
        assert schema == "private" or is_trigger, f"{schema}.{name} is a definer function the API exposes"
        assert not anon and not public, f"{schema}.{name} is executable by anon or PUBLIC"
    exposed = db.execute("select has_schema_privilege('anon', 'private', 'USAGE')").fetchone()[0]
    assert not exposed


def test_seed_rows(db):
    tenants = {slug: (level, depth) for slug, level, depth in db.execute(
        "select slug, tenant_level::text, hierarchy_depth from tenants")}
    assert tenants == SEED_TENANTS
    assert db.execute("select count(*) from industries").fetchone()[0] == 6
    assert {r[0] for r in db.execute("select code from solutions")} == {
        "LAUNCH-EX", "BRAND-EX", "PULSE", "COMM-EX", "MED-EX"}
    functions = dict(db.execute("select code, name from org_functions").fetchall())
    assert len(functions) == 14 and functions["HEOR"] == "Market Access" and functions["BD"] == "Business Development"
    assert {r[0] for r in db.execute("select service_name from services_registry")} == {
        "ask_expert", "ask_panel", "workflows", "solutions"}


def test_tenant_paths_follow_the_hierarchy(db):
    rows = db.execute("""
        select child.slug, child.tenant_path = parent.tenant_path || replace(child.id::text, '-', '_')::ltree,
               child.root_tenant_id = '00000000-0000-0000-0000-000000000001'
        from tenants child join tenants parent on parent.id = child.parent_tenant_id
    """).fetchall()
    assert len(rows) == 4 and all(path_ok and root_ok for _slug, path_ok, root_ok in rows)


def test_reparenting_moves_the_subtree(db):
    db.execute("""insert into tenants (parent_tenant_id, name, slug, tenant_level, hierarchy_depth, contact_email, contact_name)
                  values ('11111111-1111-1111-1111-111111111111', 'Globex Bio', 'globex-bio', 'enterprise_client', 2,
                          'ops@globex.example', 'Globex Ops')""")
    db.execute("update tenants set parent_tenant_id = (select id from tenants where slug = 'globex-bio') "
               "where slug = 'acme-cro-partner'")
    moved = db.execute("""
        select t.slug from tenants t
        where t.tenant_path <@ (select tenant_path from tenants where slug = 'globex-bio') order by t.hierarchy_depth
    """).fetchall()
    assert [r[0] for r in moved] == ["globex-bio", "acme-cro-partner", "meridian-oncology-pilot"]


def test_tenant_level_must_match_depth(db):
    import psycopg
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("""insert into tenants (parent_tenant_id, name, slug, tenant_level, contact_email, contact_name)
                      values ('22222222-2222-2222-2222-222222222222', 'Wrong', 'wrong-level', 'trial_tenant',
                              'x@example.com', 'X')""")
