"""Every registry entity's declaration against the table it writes, read from the database's catalog through
SQLAlchemy's inspector: a declaration the schema would refuse (a missing column, a longer text, an enum label the
database lacks, a reference to another table) fails here, not in a steward's load. And the committed templates and
docs are what the declarations generate."""

from __future__ import annotations

import re
from pathlib import Path

import openpyxl
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from vital_pipelines import config
from vital_pipelines.entities import BY_SHEET, ENTITIES, Entity
from vital_pipelines.loading.entity_load import DERIVED_LINKS
from vital_pipelines.spreadsheets import templates

ROW_TABLES = [e for e in ENTITIES if not e.links_only]
TEXT_KINDS = {"text", "key"}


@pytest.fixture(scope="module")
def inspector(schema_url):
    engine = sa.create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(schema_url))
    with engine.connect() as connection:
        yield sa.inspect(connection), connection
    engine.dispose()


def _columns(inspector, table: str) -> dict[str, dict]:
    return {c["name"]: c for c in inspector.get_columns(table)}


def _foreign_target(inspector, table: str, column: str) -> str | None:
    for key in inspector.get_foreign_keys(table):
        if key["constrained_columns"] == [column]:
            return key["referred_table"]
    return None


def _type_fits(kind: str, sql_type) -> bool:
    if kind in TEXT_KINDS:
        return isinstance(sql_type, (sa.String, sa.Text))
    if kind == "enum":
        return isinstance(sql_type, (sa.String, sa.Text, postgresql.ENUM))
    if kind == "int":
        return isinstance(sql_type, (sa.Integer, sa.SmallInteger))
    if kind == "float":
        return isinstance(sql_type, sa.Numeric)
    if kind == "bool":
        return isinstance(sql_type, sa.Boolean)
    if kind == "list":
        return isinstance(sql_type, postgresql.ARRAY)
    if kind == "json":
        return isinstance(sql_type, postgresql.JSONB)
    return False


@pytest.mark.parametrize("entity", ROW_TABLES, ids=lambda e: e.sheet)
def test_every_declared_column_fits_its_table(inspector, entity: Entity):
    inspect, _connection = inspector
    table = _columns(inspect, entity.table)
    if entity.owner:
        assert not table[entity.owner]["nullable"], f"{entity.table}.{entity.owner} owns the row"
    for column in entity.stored:
        name = column.table_column
        assert name in table, f"{entity.sheet}.{column.name} → {entity.table}.{name}: no such column"
        sql_type = table[name]["type"]
        if column.references:
            assert isinstance(sql_type, sa.Uuid), f"{entity.table}.{name} holds an id"
            # severity from the schema: a reference the table may leave empty warns; one it may not rejects
            assert column.required == (not table[name]["nullable"]), \
                f"{entity.sheet}.{column.name}: required={column.required}, but {entity.table}.{name} is " \
                f"{'nullable' if table[name]['nullable'] else 'NOT NULL'}"
            assert _foreign_target(inspect, entity.table, name) == BY_SHEET[column.target].table, name
            continue
        assert _type_fits(column.kind, sql_type), f"{entity.table}.{name}: {sql_type!r} for a {column.kind} column"
        length = getattr(sql_type, "length", None)
        if column.labels is not None:
            assert length is None or max(map(len, column.labels)) <= length, f"{entity.table}.{name} labels fit"
        elif length is not None:
            assert column.max_length is not None and column.max_length <= length, \
                f"{entity.sheet}.{column.name}: the table holds {length} characters, the contract allows " \
                f"{column.max_length}"
        if isinstance(sql_type, postgresql.ENUM):
            assert column.sql_type == sql_type.name, f"{entity.table}.{name} is a {sql_type.name}"
            assert list(column.labels) == list(sql_type.enums), f"{entity.table}.{name} labels"
        if not table[name]["nullable"] and table[name]["default"] is None:
            assert column.required, f"{entity.table}.{name} is NOT NULL without a default: the contract must require it"


@pytest.mark.parametrize("entity", ROW_TABLES, ids=lambda e: e.sheet)
def test_every_enum_declared_by_a_check_matches_it(inspector, entity: Entity):
    """Labels kept by a CHECK (tool_type, template format, …) are the ones the declaration allows."""
    inspect, _connection = inspector
    checks = " ".join(c["sqltext"] for c in inspect.get_check_constraints(entity.table))
    for column in entity.stored:
        if column.kind == "enum" and column.sql_type is None and f"{column.table_column} " in checks:
            for label in column.labels:
                assert f"'{label}'" in checks, f"{entity.table}.{column.table_column}: {label} is refused by a check"


@pytest.mark.parametrize("entity", ROW_TABLES, ids=lambda e: e.sheet)
def test_every_format_the_table_checks_is_the_declared_pattern(inspector, entity: Entity):
    """A key format the database checks (`slug ~ '…'`) is exactly the one the contract checks: neither refuses what
    the other lets through."""
    inspect, _connection = inspector
    for check in inspect.get_check_constraints(entity.table):
        found = re.search(r"\(?\(?(\w+)\)?::text ~ '(.+?)'::text", check["sqltext"])
        if not found or not any(c.table_column == found.group(1) for c in entity.stored):
            continue
        column = next(c for c in entity.stored if c.table_column == found.group(1))
        assert column.pattern == found.group(2), f"{entity.table}.{column.table_column}: {check['name']}"


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.sheet)
def test_every_junction_links_the_tables_it_names(inspector, entity: Entity):
    inspect, _connection = inspector
    # a junction sheet's links belong to the row its first reference names (an agent's prompt starters)
    owner_table = BY_SHEET[entity.references[0].target].table if entity.links_only else entity.table
    links = [(c.link.table, c.link.owner, owner_table, c.link.other, BY_SHEET[c.target].table) for c in entity.links]
    if entity.links_only and not entity.links:
        first, second = entity.references[:2]
        links.append((entity.table, first.table_column, BY_SHEET[first.target].table, second.table_column,
                      BY_SHEET[second.target].table))
    for junction, owner, owner_table, other, other_table in links:
        assert _foreign_target(inspect, junction, owner) == owner_table, f"{junction}.{owner}"
        assert _foreign_target(inspect, junction, other) == other_table, f"{junction}.{other}"
        table = _columns(inspect, junction)
        for column in (c for c in entity.columns if c.link and c.link.table == junction and c.link.position):
            assert column.link.position in table, f"{junction}.{column.link.position}"


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.sheet)
def test_the_loader_may_write_exactly_what_the_entity_loads(inspector, entity: Entity):
    _inspect, connection = inspector
    written = [entity.table, *(c.link.table for c in entity.links),
               *(j for j, *_ in DERIVED_LINKS.get(entity.sheet, ()))]
    for table in written:
        for privilege in ("SELECT", "INSERT", "UPDATE"):
            assert connection.execute(sa.text("select has_table_privilege('vital_loader', :t, :p)"),
                                      {"t": table, "p": privilege}).scalar(), f"vital_loader lacks {privilege} on {table}"
    junctions = [c.link.table for c in entity.links] + ([entity.table] if entity.links_only else [])
    for table in junctions:
        assert connection.execute(sa.text("select has_table_privilege('vital_loader', :t, 'DELETE')"),
                                  {"t": table}).scalar(), f"links of {table} are replaced: the loader deletes them"
    if not entity.links_only:
        assert not connection.execute(sa.text("select has_table_privilege('vital_loader', :t, 'DELETE')"),
                                      {"t": entity.table}).scalar(), f"{entity.table} rows are soft-deleted only"
    history = connection.execute(sa.text("select private.history_tables()")).scalar()
    assert set(written) <= set(history), "every table a load writes keeps its history (undo)"


@pytest.mark.parametrize("entity", [e for e in ROW_TABLES if e.owner], ids=lambda e: e.sheet)
def test_a_tenant_owned_entity_records_where_its_rows_came_from(inspector, entity: Entity):
    inspect, _connection = inspector
    table = _columns(inspect, entity.table)
    assert "loaded_from" in table, f"{entity.table}: a load soft-deletes only the rows its own source loaded"
    assert ("deleted_at" in table) == entity.soft_delete


def test_committed_templates_are_the_generated_ones(tmp_path):
    """raw/templates/ holds one blank workbook per registry workbook, with exactly the declared headers."""
    written = templates.write_templates(tmp_path)
    committed = Path(config.RAW_DIR) / "templates"
    assert sorted(p.name for p in committed.glob("*.template.xlsx")) == sorted(p.name for p in written)
    for fresh in written:
        ours = openpyxl.load_workbook(fresh)
        theirs = openpyxl.load_workbook(committed / fresh.name)
        assert ours.sheetnames == theirs.sheetnames, fresh.name
        for name in ours.sheetnames:
            headers = [c.value for c in ours[name][1]]
            assert headers == [c.value for c in theirs[name][1]], f"{fresh.name} › {name}: run `generate --templates`"
            assert headers == [c.name for c in BY_SHEET[name].columns]
