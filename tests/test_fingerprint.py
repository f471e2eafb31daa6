"""The load fingerprint: a table digest that sees every edit made by hand, in columns of every type."""

from __future__ import annotations

import pytest

from vital_pipelines.loading.fingerprint import database_fingerprint

# (table, column, new value as SQL, which row): one column per kind of type the digest hashes differently
EDITS = [
    ("tenants", "tenant_path", "'00000000_0000_0000_0000_000000000001.edited'::ltree", "slug = 'acme-cro-partner'"),
    ("tenants", "name", "name || ' (edited)'", "slug = 'acme-pharma'"),
    ("tenants", "metadata", "coalesce(metadata, '{}') || '{\"edited\": true}'", "slug = 'acme-pharma'"),
    ("org_functions", "name", "name || ' (edited)'", "code = 'MA'"),
    ("org_functions", "id", "gen_random_uuid()", "code = 'COMM'"),
]


@pytest.mark.parametrize("table, column, value, where", EDITS, ids=[f"{t}.{c}" for t, c, _v, _w in EDITS])
def test_an_edit_by_hand_in_any_column_type_changes_the_fingerprint(db, table, column, value, where):
    before = database_fingerprint(db, "org_structure.xlsx")
    with db.transaction(force_rollback=True):
        db.execute("alter table tenants disable trigger user")  # the hierarchy triggers would rewrite the path
        old = db.execute(f"select {column}::text from {table} where {where}").fetchone()[0]
        db.execute(f"update {table} set {column} = {value} where {where}")
        assert db.execute(f"select {column}::text from {table} where {where}").fetchone()[0] != old
        assert database_fingerprint(db, "org_structure.xlsx") != before
    assert database_fingerprint(db, "org_structure.xlsx") == before


def test_the_fingerprint_ignores_updated_at(db):
    before = database_fingerprint(db, "org_structure.xlsx")
    with db.transaction(force_rollback=True):
        db.execute("alter table tenants disable trigger user")
        db.execute("update tenants set updated_at = updated_at + interval '1 day'")
        assert database_fingerprint(db, "org_structure.xlsx") == before
