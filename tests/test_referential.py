"""Foreign keys of the loaders' inserts: PostgreSQL's own constraints always decide; a set-based pre-check names the
constraint and the missing keys first where it can decide the same."""

from __future__ import annotations

import logging

import psycopg
import pytest
from psycopg import sql

from vital_pipelines import config
from vital_pipelines.db import connect
from vital_pipelines.db.scratch import loader_url
from vital_pipelines.loading import referential
from vital_pipelines.loading.referential import MissingReferenceError, insert_rows, pre_checked_keys

CHILD_COLUMNS = ["id", "parent_id", "note"]


def _tables(conn: psycopg.Connection) -> None:
    conn.execute("create table ref_parent (id int primary key, label text)")
    conn.execute("create table ref_child (id int primary key, parent_id int references ref_parent (id), note text)")
    conn.execute("insert into ref_parent select g, 'parent ' || g from generate_series(1, 300) g")


def _children(first: int, count: int, parent: str = "1 + g % 300") -> sql.Composable:
    return sql.SQL("select g, " + parent + ", 'child ' || g from generate_series({}, {}) g").format(
        sql.Literal(first), sql.Literal(first + count - 1))


@pytest.fixture
def check_log(caplog):
    caplog.set_level(logging.DEBUG, logger=referential.__name__)
    return caplog


def test_an_insert_is_pre_checked_and_the_constraint_still_fires_its_triggers(db, check_log):
    _tables(db)
    insert_rows(db, "ref_child", CHILD_COLUMNS, _children(1, 500), 500)
    assert "ref_child: 500 new rows, 1 foreign key(s) pre-checked set-based" in check_log.text
    assert db.execute("select count(*), count(distinct parent_id) from ref_child").fetchone() == (500, 300)
    assert db.execute("show session_replication_role").fetchone()[0] == "origin"
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        db.execute("insert into ref_child values (9999, 4242, 'dangling')")


def test_a_missing_parent_is_refused_with_the_constraint_and_the_keys_before_anything_is_written(db):
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


def test_keys_the_pre_check_cannot_decide_are_left_to_the_constraint(db):
    _tables(db)
    db.execute("create table ref_tree (id int primary key, parent_id int references ref_tree (id))")
    assert pre_checked_keys(db, "ref_tree", ["id", "parent_id"]) == [], "a row may refer to its neighbour"
    insert_rows(db, "ref_tree", ["id", "parent_id"], sql.SQL("select g, nullif(g - 1, 0) from generate_series(1, 5) g"), 5)
    assert db.execute("select count(*) from ref_tree").fetchone()[0] == 5
    db.execute("create table ref_later (id int primary key, "
               "parent_id int references ref_parent (id) deferrable initially deferred)")
    assert pre_checked_keys(db, "ref_later", ["id", "parent_id"]) == [], "checked at commit, not now"
    db.execute("create table ref_pair (a int, b int, primary key (a, b))")
    db.execute("create table ref_full (id int primary key, a int, b int, foreign key (a, b) references ref_pair match full)")
    assert pre_checked_keys(db, "ref_full", ["id", "a", "b"]) == [], "MATCH FULL refuses half-null keys itself"
    assert [fk.columns for fk in pre_checked_keys(db, "ref_child", CHILD_COLUMNS)] == [("parent_id",)]
    assert pre_checked_keys(db, "ref_child", ["id", "note"]) == [], "a key the insert leaves out is not pre-checked"


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


def test_parents_hidden_by_row_level_security_are_left_to_the_constraint(db):
    # The constraint ignores row-level security; a lookup by this role would not, so it must not decide alone.
    _tables(db)
    db.execute("alter table ref_parent enable row level security")
    db.execute("alter table ref_parent force row level security")
    db.execute("create policy only_low on ref_parent using (id <= 150)")
    assert db.execute("select count(*) from ref_parent").fetchone()[0] == 150
    insert_rows(db, "ref_child", CHILD_COLUMNS, _children(1, 300), 300)
    assert db.execute("select count(*), count(distinct parent_id) from ref_child").fetchone() == (300, 300)
    with db.transaction(), pytest.raises(psycopg.errors.ForeignKeyViolation):
        with db.transaction():
            insert_rows(db, "ref_child", CHILD_COLUMNS, _children(1000, 200, "case when g = 1100 then 4242 else 1 end"),
                        200)


def test_the_loader_role_loads_and_may_not_skip_triggers(fresh_url, check_log):
    from vital_pipelines.loading.registry import load_workbook
    from vital_pipelines.spreadsheets.workbooks import validate_registry_workbook

    for workbook in ("org_structure.xlsx", "agents.xlsx"):
        sheets = validate_registry_workbook(config.RAW_DIR / workbook, isolated=False)
        with connect(loader_url(fresh_url)) as conn:
            assert conn.execute("select current_user").fetchone()[0] == "vital_loader"
            result = load_workbook(conn, workbook, sheets, source_path=config.RAW_DIR / workbook)
    assert result.tables["agents"].inserted == 254
    for table in ("agents", "agent_functions", "agent_departments", "agent_roles"):
        assert f" {table}: 254 new rows" in check_log.text, table
    with connect(loader_url(fresh_url)) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("set session_replication_role = replica")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("set local session_replication_role = replica")
