"""Set-based foreign-key checks for bulk inserts: same guarantees as the per-row triggers, or the ordinary path."""

from __future__ import annotations

import logging

import psycopg
import pytest
from psycopg import sql

from vital_pipelines.db import connect
from vital_pipelines.loading import referential
from vital_pipelines.loading.referential import MissingReferenceError, bulk_insert_eligible, insert_rows

CHILD_COLUMNS = ["id", "parent_id", "note"]


def _tables(conn: psycopg.Connection) -> None:
    conn.execute("create table ref_parent (id int primary key, label text)")
    conn.execute("create table ref_child (id int primary key, parent_id int references ref_parent (id), note text)")
    conn.execute("insert into ref_parent select g, 'parent ' || g from generate_series(1, 300) g")


def _children(first: int, count: int, parent: str = "1 + g % 300") -> sql.Composable:
    return sql.SQL("select g, " + parent + ", 'child ' || g from generate_series({}, {}) g").format(
        sql.Literal(first), sql.Literal(first + count - 1))


@pytest.fixture
def bulk_log(caplog):
    caplog.set_level(logging.DEBUG, logger=referential.__name__)
    return caplog


def test_the_test_server_lets_the_loader_skip_row_triggers(db):
    # scripts/setup grants it; without the grant every test below would pass on the per-row path alone.
    assert referential.may_skip_row_triggers(db)


def test_a_large_insert_is_checked_set_based_and_the_session_fires_triggers_again(db, bulk_log):
    _tables(db)
    insert_rows(db, "ref_child", CHILD_COLUMNS, _children(1, 500), 500)
    assert "ref_child: 500 new rows, 1 foreign key(s) checked set-based" in bulk_log.text
    assert db.execute("select count(*), count(distinct parent_id) from ref_child").fetchone() == (500, 300)
    assert db.execute("show session_replication_role").fetchone()[0] == "origin"
    # The constraint itself is untouched: the next ordinary insert is checked row by row.
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        db.execute("insert into ref_child values (9999, 4242, 'dangling')")


def test_a_missing_parent_is_refused_before_anything_is_written(db):
    _tables(db)
    db.execute("create temp table wanted as " + _children(1, 400, "case when g in (7, 8) then 900 + g else 1 end")
               .as_string(db))
    with db.transaction(), pytest.raises(MissingReferenceError) as refused:
        with db.transaction():
            insert_rows(db, "ref_child", CHILD_COLUMNS, sql.SQL("select * from wanted"), 400)
    message = str(refused.value)
    assert "ref_child: 2 distinct value(s) of (parent_id) refer to no row of public.ref_parent" in message
    assert "constraint ref_child_parent_id_fkey" in message and "907" in message and "908" in message
    assert db.execute("select count(*) from ref_child").fetchone()[0] == 0
    assert db.execute("show session_replication_role").fetchone()[0] == "origin"


def test_a_small_batch_takes_the_ordinary_path(db, bulk_log):
    _tables(db)
    insert_rows(db, "ref_child", CHILD_COLUMNS, _children(1, referential.BULK_CHECK_MIN_ROWS - 1),
                referential.BULK_CHECK_MIN_ROWS - 1)
    assert "checked set-based" not in bulk_log.text
    assert db.execute("select count(*) from ref_child").fetchone()[0] == referential.BULK_CHECK_MIN_ROWS - 1


def test_referenced_parents_stay_locked_until_the_load_commits(fresh_url):
    with connect(fresh_url, autocommit=True) as setup:
        _tables(setup)
    loader = connect(fresh_url)
    other = connect(fresh_url, autocommit=True)
    try:
        insert_rows(loader, "ref_child", CHILD_COLUMNS, _children(1, 200, "5"), 200)
        other.execute("set lock_timeout = '300ms'")
        # Another session can neither delete nor re-key the parent the uncommitted rows refer to...
        with pytest.raises(psycopg.errors.LockNotAvailable):
            other.execute("delete from ref_parent where id = 5")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            other.execute("update ref_parent set id = 5005 where id = 5")
        # ...but may change its other columns, and delete a parent nobody refers to, as with per-row checks.
        assert other.execute("update ref_parent set label = 'renamed' where id = 5").rowcount == 1
        assert other.execute("delete from ref_parent where id = 6").rowcount == 1
        loader.commit()
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            other.execute("delete from ref_parent where id = 5")
    finally:
        loader.close()
        other.close()


def test_tables_the_set_based_check_cannot_cover_take_the_ordinary_path(db, bulk_log):
    _tables(db)
    db.execute("create table ref_audit (child_id int)")
    db.execute("create function ref_audit_insert() returns trigger language plpgsql as "
               "$$ begin insert into ref_audit values (new.id); return new; end $$")
    db.execute("create trigger audit_children after insert on ref_child for each row execute function ref_audit_insert()")
    assert bulk_insert_eligible(db, "ref_child", CHILD_COLUMNS) is None
    insert_rows(db, "ref_child", CHILD_COLUMNS, _children(1, 300), 300)
    assert db.execute("select count(*) from ref_audit").fetchone()[0] == 300, "the user trigger must still fire"
    assert "checked set-based" not in bulk_log.text

    db.execute("create table ref_tree (id int primary key, parent_id int references ref_tree (id))")
    assert bulk_insert_eligible(db, "ref_tree", ["id", "parent_id"]) is None, "a row may refer to its neighbour"

    db.execute("create table ref_defaulted (id int primary key, parent_id int default 1 references ref_parent (id))")
    assert bulk_insert_eligible(db, "ref_defaulted", ["id"]) is None, "the default is a reference nobody checked"
    assert [fk.columns for fk in bulk_insert_eligible(db, "ref_defaulted", ["id", "parent_id"])] == [("parent_id",)]


def test_a_role_without_the_setting_privilege_takes_the_ordinary_path(db):
    db.execute("set local role anon")
    assert not referential.may_skip_row_triggers(db)
    db.execute("reset role")


def test_composite_keys_are_checked_column_for_column(db):
    db.execute("create table ref_pair (a int, b int, primary key (a, b))")
    db.execute("insert into ref_pair select g, g + 1 from generate_series(1, 200) g")
    db.execute("create table ref_pair_child (id int primary key, a int, b int, foreign key (a, b) references ref_pair)")
    rows = sql.SQL("select g, g, g + 1 from generate_series(1, 150) g")
    insert_rows(db, "ref_pair_child", ["id", "a", "b"], rows, 150)
    assert db.execute("select count(*) from ref_pair_child").fetchone()[0] == 150
    crossed = sql.SQL("select g + 1000, g, case when g = 3 then 3 else g + 1 end from generate_series(1, 150) g")
    with db.transaction(), pytest.raises(MissingReferenceError, match=r"1 distinct value\(s\) of \(a, b\).*\('3', '3'\)"):
        with db.transaction():
            insert_rows(db, "ref_pair_child", ["id", "a", "b"], crossed, 150)


def test_a_load_that_fails_inside_the_skipped_trigger_window_leaves_the_session_firing_them(db):
    _tables(db)
    db.execute("alter table ref_child add constraint short_note check (length(note) < 12)")
    with db.transaction(), pytest.raises(psycopg.errors.CheckViolation):
        with db.transaction():
            insert_rows(db, "ref_child", CHILD_COLUMNS, _children(1, 200), 200)
            # 'child 100000' breaks the check while the per-row triggers are off.
            insert_rows(db, "ref_child", CHILD_COLUMNS, _children(100_000, 200), 200)
    assert db.execute("show session_replication_role").fetchone()[0] == "origin"
    assert db.execute("select count(*) from ref_child").fetchone()[0] == 0
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        db.execute("insert into ref_child values (1, 4242, 'dangling')")


def test_deferred_keys_and_parents_the_role_cannot_lock_take_the_ordinary_path(db):
    _tables(db)
    db.execute("create table ref_later (id int primary key, "
               "parent_id int references ref_parent (id) deferrable initially deferred)")
    assert bulk_insert_eligible(db, "ref_later", ["id", "parent_id"]) is None, "checked at commit, not now"
    # A key left out of the insert (no default) is null in every new row: it does not count, whatever it is.
    db.execute("alter table ref_child add column later_id int references ref_parent (id) deferrable initially deferred")
    assert [fk.columns for fk in bulk_insert_eligible(db, "ref_child", CHILD_COLUMNS)] == [("parent_id",)]
    db.execute("create table ref_pair (a int, b int, primary key (a, b))")
    db.execute("create table ref_full (id int primary key, a int, b int, foreign key (a, b) references ref_pair match full)")
    assert bulk_insert_eligible(db, "ref_full", ["id", "a"]) is None, "MATCH FULL refuses a half-null key row by row"
    assert bulk_insert_eligible(db, "ref_full", ["id"]) == []
    db.execute("grant select on ref_parent to authenticated")
    db.execute("revoke update on ref_parent from authenticated")
    db.execute("set local role authenticated")
    [key] = [fk for fk in referential.foreign_keys(db, "ref_child") if fk.columns == ("parent_id",)]
    assert not key.parent_lockable and not key.checkable_set_based, "FOR KEY SHARE needs UPDATE on the parent"
    db.execute("reset role")


def test_parents_hidden_by_row_level_security_are_left_to_the_per_row_check(db, bulk_log):
    # The per-row check ignores row-level security; a lookup by this role would not, so it must not decide alone.
    _tables(db)
    db.execute("alter table ref_parent enable row level security")
    db.execute("alter table ref_parent force row level security")
    db.execute("create policy only_low on ref_parent using (id <= 150)")
    assert db.execute("select count(*) from ref_parent").fetchone()[0] == 150
    insert_rows(db, "ref_child", CHILD_COLUMNS, _children(1, 300), 300)
    assert "checked set-based" not in bulk_log.text
    assert db.execute("select count(*), count(distinct parent_id) from ref_child").fetchone() == (300, 300)
    with db.transaction(), pytest.raises(psycopg.errors.ForeignKeyViolation):
        with db.transaction():
            insert_rows(db, "ref_child", CHILD_COLUMNS, _children(1000, 200, "case when g = 1100 then 4242 else 1 end"),
                        200)


def test_the_least_privilege_loader_role_loads_with_set_based_checks(fresh_url, bulk_log):
    from psycopg import conninfo

    from vital_pipelines import config
    from vital_pipelines.loading.registry import load_workbook
    from vital_pipelines.spreadsheets.workbooks import validate_registry_workbook

    # scripts/setup creates vital_loader (owns nothing, acts through service_role) and grants it the setting.
    loader_url = conninfo.make_conninfo(fresh_url, user="vital_loader", password="vital_loader")
    for workbook in ("org_structure.xlsx", "agents.xlsx"):
        sheets = validate_registry_workbook(config.RAW_DIR / workbook, isolated=False)
        with connect(loader_url) as conn:
            assert conn.execute("select current_user").fetchone()[0] == "vital_loader"
            result = load_workbook(conn, workbook, sheets, source_path=config.RAW_DIR / workbook)
    assert result.tables["agents"].inserted == 254 and result.foreign_key_checks.startswith("set-based")
    for table in ("agents", "agent_functions", "agent_departments", "agent_roles"):
        assert f" {table}: 254 new rows" in bulk_log.text, table
