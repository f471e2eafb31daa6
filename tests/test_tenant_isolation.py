"""Escalation attempts by a tenant admin and least privilege of the pipeline's own roles (the RLS matrix in
test_rls_matrix.py covers plain reads and writes)."""

from __future__ import annotations

import json
import uuid

import dagster as dg
import psycopg
import pytest

from tests.rls_world import ACME, PARTNER, PLATFORM, PROVIDER, TRIAL
from vital_pipelines import config
from vital_pipelines.db import DatabaseUnavailable, connect, redact_url
from vital_pipelines.db.privileges import PrivilegedRoleError, loader_role_problems
from vital_pipelines.db.scratch import loader_url
from vital_pipelines.defs.common.resources import PostgresResource
from vital_pipelines.defs.registry import assets as registry_assets
from vital_pipelines.defs.registry.resources import RegistrySource

HIERARCHY_AND_PLAN = {
    "tenant_path": "''::ltree", "root_tenant_id": "null", "parent_tenant_id": "null",
    "tenant_level": "'platform'", "hierarchy_depth": "0", "tier": "'enterprise_plus'", "status": "'active'",
    "max_users": "100000", "max_agents": "100000", "max_storage_gb": "100000", "max_consultations_per_month": "null",
    "max_tokens_per_month": "null", "current_users": "0", "current_agents": "0", "current_storage_gb": "0",
    "trial_ends_at": "null", "subscription_starts_at": "null", "subscription_ends_at": "null",
    "features": "'{\"all\": true}'", "slug": "'vital-platform-2'", "deleted_at": "now()", "created_by": "null",
}
COUNTED = ("tenants", "personas", "agents", "api_keys", "tenant_members", "expert_consultations")


def _user(db, tenant: str, role: str) -> str:
    user_id = str(uuid.uuid4())
    db.execute("insert into auth.users (id, email) values (%s, %s)", (user_id, f"{user_id[:8]}@example.com"))
    db.execute("insert into tenant_members (tenant_id, user_id, role) values (%s, %s, %s)", (tenant, user_id, role))
    return user_id


def _as(db, user_id: str) -> None:
    db.execute("set local role authenticated")
    db.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps({"sub": user_id, "role": "authenticated"}),))


def _counts(db) -> dict[str, int]:
    return {t: db.execute(f"select count({'id' if t == 'api_keys' else '*'}) from {t}").fetchone()[0] for t in COUNTED}


def _refused(db, statement: str, params=()) -> type[Exception] | None:
    """The error class a statement ends with (rolled back to a savepoint), or None when it succeeded."""
    try:
        with db.transaction():
            db.execute(statement, params)
    except psycopg.Error as error:
        return type(error)
    return None


@pytest.fixture
def trial_admin(db):
    sibling = db.execute(
        "insert into tenants (parent_tenant_id, name, slug, tenant_level, hierarchy_depth, contact_email, contact_name) "
        "values (%s, 'Globex Bio', 'globex-bio', 'enterprise_client', 2, 'ops@globex.example', 'Globex') returning id::text",
        (PROVIDER,)).fetchone()[0]
    for tenant in (PLATFORM, PROVIDER, ACME, PARTNER, TRIAL, sibling):
        db.execute("insert into personas (tenant_id, persona_key, name, title) values (%s, %s, 'P', 'MSL')",
                   (tenant, f"persona-{tenant[:4]}"))
        db.execute("insert into api_keys (tenant_id, name, key_prefix, key_hash) values (%s, 'ci', 'vk_', %s)",
                   (tenant, f"hash-{tenant}"))
    admin = _user(db, TRIAL, "admin")
    return {"admin": admin, "sibling": sibling}


def test_a_tenant_admin_cannot_change_any_hierarchy_or_plan_column(db, trial_admin):
    _as(db, trial_admin["admin"])
    before = _counts(db)
    for column, value in HIERARCHY_AND_PLAN.items():
        error = _refused(db, f"update tenants set {column} = {value} where id = %s", (TRIAL,))
        assert error is psycopg.errors.InsufficientPrivilege, column
    assert _counts(db) == before == {"tenants": 1, "personas": 1, "agents": 0, "api_keys": 1, "tenant_members": 1,
                                     "expert_consultations": 0}
    assert db.execute("update tenants set contact_name = 'Pilot lead', settings = '{\"theme\": \"dark\"}' "
                      "where id = %s", (TRIAL,)).rowcount == 1, "the profile columns are the admin's"
    assert db.execute("update tenants set contact_name = 'x' where id = %s", (trial_admin["sibling"],)).rowcount == 0


def test_the_hierarchy_is_derived_even_when_the_platform_writes_it(db, trial_admin):
    db.execute("update tenants set tenant_path = ''::ltree, hierarchy_depth = 4 where id = %s", (TRIAL,))
    path, depth, root = db.execute("select tenant_path::text, hierarchy_depth, root_tenant_id::text from tenants "
                                   "where id = %s", (TRIAL,)).fetchone()
    assert path.split(".")[-1] == TRIAL.replace("-", "_") and len(path.split(".")) == 5 and (depth, root) == (4, PLATFORM)
    # Re-parenting moves the whole subtree: the partner goes under the sibling, the trial below it follows.
    db.execute("update tenants set parent_tenant_id = %s where id = %s", (trial_admin["sibling"], PARTNER))
    sibling_path = db.execute("select tenant_path::text from tenants where id = %s", (trial_admin["sibling"],)).fetchone()[0]
    trial_path = db.execute("select tenant_path::text from tenants where id = %s", (TRIAL,)).fetchone()[0]
    assert trial_path == ".".join([sibling_path, PARTNER.replace("-", "_"), TRIAL.replace("-", "_")])
    assert _refused(db, "update tenants set tenant_level = 'platform' where id = %s", (TRIAL,)) is psycopg.errors.CheckViolation


def test_a_tenant_admin_cannot_join_or_take_over_another_tenant(db, trial_admin):
    admin = trial_admin["admin"]
    provider_admin = _user(db, PROVIDER, "admin")
    _as(db, admin)
    for tenant in (trial_admin["sibling"], PARTNER, PLATFORM):
        for role in ("owner", "member"):
            error = _refused(db, "insert into tenant_members (tenant_id, user_id, role) values (%s, %s, %s)",
                             (tenant, admin, role))
            assert error is psycopg.errors.InsufficientPrivilege, (tenant, role)
    assert _refused(db, "update tenant_members set role = 'owner' where user_id = %s",
                    (admin,)) is psycopg.errors.InsufficientPrivilege, "an admin does not make itself owner"
    assert _refused(db, "update tenant_members set tenant_id = %s where user_id = %s",
                    (trial_admin["sibling"], admin)) is psycopg.errors.InsufficientPrivilege
    assert _refused(db, "insert into tenant_members (tenant_id, user_id, role) values (%s, %s, 'owner')",
                    (TRIAL, str(uuid.uuid4()))) is not None, "only owners hand out ownership"
    db.execute("reset role")
    # An ancestor's admin administers the trial's data, not who may sign in to it.
    _as(db, provider_admin)
    assert db.execute("select count(*) from personas where tenant_id = %s", (TRIAL,)).fetchone()[0] == 1
    assert _refused(db, "insert into tenant_members (tenant_id, user_id, role) values (%s, %s, 'member')",
                    (TRIAL, provider_admin)) is psycopg.errors.InsufficientPrivilege
    db.execute("reset role")
    _as(db, admin)
    assert db.execute("select count(*) from tenant_members").fetchone()[0] == 1


def test_no_app_role_reads_a_key_hash_and_keys_are_checked_by_the_definer_function(db, trial_admin):
    viewer = _user(db, TRIAL, "viewer")
    member = _user(db, TRIAL, "member")
    key = "vk_" + uuid.uuid4().hex
    db.execute("insert into api_keys (tenant_id, name, key_prefix, key_hash) values (%s, 'steward', %s, crypt(%s, gen_salt('bf', 6)))",
               (TRIAL, key[:8], key))
    for user, visible in ((trial_admin["admin"], 2), (viewer, 0), (member, 0)):
        _as(db, user)
        assert _refused(db, "select key_hash from api_keys") is psycopg.errors.InsufficientPrivilege
        assert db.execute("select count(id) from api_keys").fetchone()[0] == visible
        assert _refused(db, "select * from private.verify_api_key(%s)", (key,)) is psycopg.errors.InsufficientPrivilege
        db.execute("reset role")
    db.execute("set local role service_role")
    assert _refused(db, "select key_hash from api_keys") is psycopg.errors.InsufficientPrivilege
    assert db.execute("select tenant_id::text from private.verify_api_key(%s)", (key,)).fetchall() == [(TRIAL,)]
    assert db.execute("select count(*) from private.verify_api_key(%s)", (key + "x",)).fetchone()[0] == 0
    db.execute("update api_keys set revoked_at = now() where key_prefix = %s", (key[:8],))
    assert db.execute("select count(*) from private.verify_api_key(%s)", (key,)).fetchone()[0] == 0


def test_a_member_cannot_delete_rows_they_cannot_read(db):
    member = _user(db, ACME, "member")
    db.execute("insert into personas (tenant_id, persona_key, name, title, visibility) values "
               "(%s, 'hidden', 'Hidden', 'MSL', 'private'), (%s, 'shared', 'Shared', 'MSL', 'tenant')", (ACME, ACME))
    _as(db, member)
    assert db.execute("delete from personas").rowcount == 1
    db.execute("reset role")
    assert db.execute("select persona_key from personas where tenant_id = %s", (ACME,)).fetchall() == [("hidden",)]


def test_ledgers_are_out_of_reach_of_the_api_roles(db):
    member = _user(db, ACME, "owner")
    for role in ("anon", "authenticated"):
        if role == "authenticated":
            _as(db, member)
        else:
            db.execute("set local role anon")
        for statement in ("update schema_migrations set checksum = 'x'", "select count(*) from schema_migrations",
                          "select count(*) from pipeline_loads", "select count(*) from quarantined_rows",
                          "delete from audit_log"):
            assert _refused(db, statement) is psycopg.errors.InsufficientPrivilege, (role, statement)
        db.execute("reset role")
    db.execute("set local role service_role")
    assert _refused(db, "delete from audit_log") is psycopg.errors.InsufficientPrivilege, "append-only"
    assert _refused(db, "update schema_migrations set checksum = 'x'") is psycopg.errors.InsufficientPrivilege


def test_the_loader_role_owns_nothing_and_holds_only_what_loads_need(schema_url):
    with connect(loader_url(schema_url)) as conn:
        assert loader_role_problems(conn) == []
        assert conn.execute("select rolsuper or rolbypassrls or rolcreaterole or rolcreatedb from pg_roles "
                            "where rolname = current_user").fetchone()[0] is False
        assert conn.execute("select count(*) from pg_class where relowner = (select oid from pg_roles "
                            "where rolname = current_user)").fetchone()[0] == 0
        assert conn.execute("select count(*) from pg_auth_members m join pg_roles u on u.oid = m.member "
                            "where u.rolname = current_user").fetchone()[0] == 0
        conn.commit()
        for statement in ("alter table personas disable trigger all", "truncate personas", "delete from audit_log",
                          "update audit_log set action = 'x'", "delete from pipeline_loads",
                          "select count(*) from api_keys", "select count(*) from tenant_members",
                          "insert into tenants (name, slug, tenant_level, contact_email, contact_name) "
                          "values ('x', 'x', 'platform', 'x@example.com', 'x')",
                          "create table sneaky (id int)", "drop policy pipeline_loader on personas",
                          "alter table personas no force row level security",
                          "set session_replication_role = replica",
                          "select private.refresh_loaded_statistics('tenants'::regclass)"):
            error = _refused(conn, statement)
            assert error in (psycopg.errors.InsufficientPrivilege, psycopg.errors.RaiseException), statement
        assert conn.execute("select count(*) from personas").fetchone()[0] == 0
        assert conn.execute("select count(*) from tenants").fetchone()[0] == 5


def test_a_load_with_the_owner_url_refuses_with_a_sentence(fresh_url, raw, tmp_path):
    with pytest.raises(PrivilegedRoleError, match=r"Refusing to load as database role 'vital'.*owns .* tables.*"
                                                  r"member of service_role.*DATABASE_URL.*DATABASE_OWNER_URL"):
        with PostgresResource(database_url=fresh_url).get_connection():
            pass
    resources = {"postgres": PostgresResource(database_url=fresh_url),
                 "registry_source": RegistrySource(raw_dir=str(raw), reports_dir=str(tmp_path / "reports"),
                                                   isolated_reader=False)}
    result = dg.materialize([registry_assets.WORKBOOK_ASSET["org_structure.xlsx"]], resources=resources, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data
    assert "Refusing to load as database role 'vital'" in (failure.user_failure_data.description
                                                           if failure.user_failure_data else failure.error.message)
    with connect(fresh_url) as conn:
        assert conn.execute("select count(*) from org_departments").fetchone()[0] == 0


def test_settings_are_transaction_local(schema_url):
    resource = PostgresResource(database_url=loader_url(schema_url), lock_timeout_seconds=7)
    with resource.get_connection() as conn:
        with conn.transaction():
            assert conn.execute("show lock_timeout").fetchone()[0] == "7s"
        with conn.cursor() as raw:  # a transaction begun without the pipeline's helpers sees the server's default
            raw.execute("show lock_timeout")
            assert raw.fetchone()[0] == "0"
        conn.rollback()
        assert conn.execute("show lock_timeout").fetchone()[0] == "7s"


@pytest.mark.parametrize("url", [
    "mysql://vital:s3cret-pw@db.example:3306/vital",
    "postgresql://vital:s3cret-pw@localhost:5432/vital?sslmode=nonsense",
    "host=localhost password=s3cret-pw dbname=vital port=notaport",
])
def test_secrets_never_appear_in_messages(url):
    with pytest.raises(DatabaseUnavailable) as refused:
        connect(url, connect_timeout=2)
    assert "s3cret-pw" not in str(refused.value) and "***" in str(refused.value)
    assert "s3cret-pw" not in redact_url(f"could not connect with {url}")


def test_the_definitions_take_both_urls_from_the_environment():
    from vital_pipelines.definitions import defs

    resources = defs().resources
    assert isinstance(resources["postgres"].database_url, dg.EnvVar)
    assert resources["postgres"].database_url == config.LOADER_URL_VARIABLE
    assert resources["schema_owner"].database_url == config.OWNER_URL_VARIABLE
    assert resources["schema_owner"].role == "owner" and resources["postgres"].role == "loader"
