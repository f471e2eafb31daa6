"""Row-level security with real roles and Supabase-style JWT claims."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

PLATFORM = "00000000-0000-0000-0000-000000000001"
PROVIDER = "11111111-1111-1111-1111-111111111111"
ACME = "22222222-2222-2222-2222-222222222222"
PARTNER = "33333333-3333-3333-3333-333333333333"
TABLES = ("agents", "personas", "knowledge_sources", "knowledge_chunks", "expert_consultations")


def _user(db, email: str, tenant: str, role: str) -> str:
    user_id = str(uuid.uuid4())
    db.execute("insert into auth.users (id, email) values (%s, %s)", (user_id, email))
    db.execute("insert into tenant_members (tenant_id, user_id, role) values (%s, %s, %s)", (tenant, user_id, role))
    return user_id


def _tenant_content(db, tenant: str, user_id: str, tag: str) -> None:
    agent = db.execute("insert into agents (tenant_id, slug, name, description) values (%s, %s, %s, 'x') "
                       "returning id", (tenant, f"agent-{tag}", f"Agent {tag}")).fetchone()[0]
    db.execute("insert into personas (tenant_id, persona_key, name, title) values (%s, %s, %s, 'MSL')",
               (tenant, f"persona-{tag}", f"Persona {tag}"))
    source = db.execute("insert into knowledge_sources (tenant_id, slug, title, source_type) "
                        "values (%s, %s, %s, 'markdown') returning id", (tenant, f"doc-{tag}", f"Doc {tag}")).fetchone()[0]
    db.execute("insert into knowledge_chunks (tenant_id, source_id, chunk_index, content, token_count, content_sha256) "
               "values (%s, %s, 0, 'text', 1, repeat('a', 64))", (tenant, source))
    db.execute("insert into expert_consultations (tenant_id, user_id, agent_id, title) values (%s, %s, %s, %s)",
               (tenant, user_id, agent, f"Consultation {tag}"))


@pytest.fixture
def world(db):
    globex = db.execute(
        "insert into tenants (parent_tenant_id, name, slug, tenant_level, hierarchy_depth, contact_email, contact_name) "
        "values (%s, 'Globex Bio', 'globex-bio', 'enterprise_client', 2, 'ops@globex.example', 'Globex') returning id",
        (PROVIDER,)).fetchone()[0]
    users = {
        "acme_member": _user(db, "msl@acme.example", ACME, "member"),
        "acme_viewer": _user(db, "viewer@acme.example", ACME, "viewer"),
        "globex_member": _user(db, "msl@globex.example", str(globex), "member"),
        "provider_admin": _user(db, "admin@solutions.example", PROVIDER, "admin"),
        "provider_member": _user(db, "analyst@solutions.example", PROVIDER, "member"),
        "partner_member": _user(db, "cra@meridian.example", PARTNER, "member"),
    }
    _tenant_content(db, ACME, users["acme_member"], "acme")
    _tenant_content(db, str(globex), users["globex_member"], "globex")
    return {"globex": str(globex), **users}


def _as(db, user_id: str) -> None:
    db.execute("set local role authenticated")
    claims = json.dumps({"sub": user_id, "role": "authenticated"})
    db.execute("select set_config('request.jwt.claims', %s, true)", (claims,))


def _visible(db, table: str) -> int:
    return db.execute(f"select count(*) from {table}").fetchone()[0]


def test_member_sees_only_their_tenant(db, world):
    _as(db, world["acme_member"])
    for table in TABLES:
        tenants = {row[0] for row in db.execute(f"select distinct tenant_id::text from {table}")}
        assert tenants == {ACME}, table


def test_member_cannot_write_another_tenant(db, world):
    _as(db, world["acme_member"])
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.execute("insert into agents (tenant_id, slug, name, description) values (%s, 'sneaky', 'S', 'x')",
                   (world["globex"],))


def test_member_cannot_change_another_tenants_rows(db, world):
    _as(db, world["acme_member"])
    changed = db.execute("update personas set name = 'hijacked' where persona_key = 'persona-globex'").rowcount
    deleted = db.execute("delete from agents where slug = 'agent-globex'").rowcount
    assert (changed, deleted) == (0, 0)


def test_member_writes_own_tenant_and_viewer_cannot(db, world):
    _as(db, world["acme_member"])
    db.execute("insert into agents (tenant_id, slug, name, description) values (%s, 'own-agent', 'Own', 'x')", (ACME,))
    db.execute("reset role")
    _as(db, world["acme_viewer"])
    assert _visible(db, "agents") == 2
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.execute("insert into agents (tenant_id, slug, name, description) values (%s, 'viewer-agent', 'V', 'x')",
                   (ACME,))


def test_parent_admin_sees_descendants_but_parent_member_does_not(db, world):
    _as(db, world["provider_admin"])
    tenants = {row[0] for row in db.execute("select distinct tenant_id::text from agents")}
    assert tenants == {ACME, world["globex"]}
    db.execute("reset role")
    _as(db, world["provider_member"])
    assert _visible(db, "agents") == 0


def test_descendant_member_does_not_see_ancestor(db, world):
    _as(db, world["partner_member"])
    assert _visible(db, "agents") == 0
    assert _visible(db, "expert_consultations") == 0


def test_public_content_is_shared_and_private_is_not(db, world):
    db.execute("insert into agents (tenant_id, slug, name, description, visibility) values "
               "(%s, 'public-agent', 'Public', 'x', 'public'), (%s, 'org-agent', 'Org', 'x', 'organization')",
               (PLATFORM, ACME))
    _as(db, world["globex_member"])
    slugs = {row[0] for row in db.execute("select slug from agents")}
    assert slugs == {"agent-globex", "public-agent", "org-agent"}


def test_anonymous_sees_no_tenant_data_but_reference_data(db, world):
    db.execute("set local role anon")
    assert _visible(db, "industries") == 6
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.execute("select count(*) from agents")


def test_service_role_sees_everything(db, world):
    db.execute("set local role service_role")
    assert _visible(db, "agents") == 2
