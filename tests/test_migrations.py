"""The schema runner: order, once-only application, changed-file refusal, rebuild."""

from __future__ import annotations

import shutil

import pytest

from vital_pipelines import config
from vital_pipelines.db import ChangedMigrationError, apply_schema, connect, phase_files
from vital_pipelines.db.migrations import WIPE_FILE


PHASES = len(list(config.SCHEMA_DIR.glob("[0-9][0-9]_*.sql"))) - 1  # every phase file but the wipe


def test_phase_files_are_the_seeds_21_and_the_projects_own_in_order():
    names = [p.name for p in phase_files(config.SCHEMA_DIR)]
    assert len(names) == PHASES and WIPE_FILE not in names and PHASES > 21
    assert [n[:2] for n in names] == [f"{i:02d}" for i in range(1, PHASES + 1)]
    assert (config.SCHEMA_DIR / WIPE_FILE).exists()


def test_second_apply_does_nothing(make_database):
    url = make_database()
    with connect(url) as conn:
        first = apply_schema(conn, config.SCHEMA_DIR)
        second = apply_schema(conn, config.SCHEMA_DIR)
        ledger = conn.execute("select count(*) from schema_migrations").fetchone()[0]
    assert len(first.applied) == PHASES
    assert second.applied == [] and len(second.unchanged) == PHASES
    assert ledger == PHASES


def test_files_are_idempotent_even_without_the_ledger(make_database):
    url = make_database()
    with connect(url) as conn:
        apply_schema(conn, config.SCHEMA_DIR)
        conn.execute("insert into agents (tenant_id, slug, name, description) values "
                     "('00000000-0000-0000-0000-000000000001', 'kept-agent', 'Kept', 'Survives a re-apply')")
        conn.execute("delete from schema_migrations")
        conn.commit()
        again = apply_schema(conn, config.SCHEMA_DIR)
        kept = conn.execute("select count(*) from agents where slug = 'kept-agent'").fetchone()[0]
        tenants = conn.execute("select count(*) from tenants").fetchone()[0]
    assert len(again.applied) == PHASES
    assert kept == 1
    assert tenants == 5


def test_changed_applied_file_is_refused_until_rebuild(make_database, tmp_path):
    schema_dir = tmp_path / "schema"
    shutil.copytree(config.SCHEMA_DIR, schema_dir)
    url = make_database()
    with connect(url) as conn:
        apply_schema(conn, schema_dir)
        conn.execute("insert into agents (tenant_id, slug, name, description) values "
                     "('00000000-0000-0000-0000-000000000001', 'doomed', 'Doomed', 'Wiped by the rebuild')")
        conn.commit()
        target = schema_dir / "05_agents_core.sql"
        target.write_text(target.read_text() + "\ncomment on table agents is 'changed';\n")
        with pytest.raises(ChangedMigrationError) as refused:
            apply_schema(conn, schema_dir)
        assert "05_agents_core.sql" in str(refused.value) and "--rebuild" in str(refused.value)
        conn.rollback()
        assert conn.execute("select count(*) from agents").fetchone()[0] == 1

        rebuilt = apply_schema(conn, schema_dir, rebuild=True)
        assert rebuilt.wiped and len(rebuilt.applied) == PHASES
        assert conn.execute("select count(*) from agents").fetchone()[0] == 0
        comment = conn.execute("select obj_description('agents'::regclass)").fetchone()[0]
        assert comment == "changed"


def test_failed_file_leaves_database_as_it_was(make_database, tmp_path):
    schema_dir = tmp_path / "schema"
    shutil.copytree(config.SCHEMA_DIR, schema_dir)
    (schema_dir / "22_broken.sql").write_text("create table half_done (id int);\nselect * from no_such_table;\n")
    url = make_database()
    with connect(url) as conn:
        with pytest.raises(RuntimeError, match="22_broken.sql"):
            apply_schema(conn, schema_dir)
        conn.rollback()
        exists = conn.execute("select to_regclass('public.tenants') is not null, "
                              "to_regclass('public.half_done') is not null").fetchone()
    assert exists == (False, False)
