"""Property: whatever a steward does to a sheet (duplicate keys, bad cells, missing, renamed, misspelt or extra
columns), every row ends loaded, loaded with a warning or quarantined, or the sheet is refused and nothing changes;
and the ledger's counts equal the quarantine's."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vital_pipelines import config
from vital_pipelines.db import connect
from vital_pipelines.db.scratch import loader_url
from vital_pipelines.loading.registry import load_workbook
from vital_pipelines.spreadsheets.contracts import PERSONAS
from samples.generate import _header, _rows, _write, persona_records
from vital_pipelines.spreadsheets.validation import SheetRefused
from vital_pipelines.spreadsheets.workbooks import validate_registry_workbook

HEADER = _header(PERSONAS)
RECORDS = _rows(PERSONAS, persona_records(1)[:40])
OPTIONAL = ["description", "goals", "pain_points", "motivations", "tools_used", "years_experience", "visibility"]
BAD_CELLS = {"persona_key": "Not A Slug", "seniority_level": "bogus", "department_code": "NOPE-XX",
             "years_experience": "many", "visibility": "everyone", "name": None}
RENAMES = {"persona_key": "Persona Key", "title": "Job Title", "name": "persona_name"}
MISSPELT = {"description": "Descriptoin", "title": "Titel"}


@st.composite
def sheets(draw):
    count = draw(st.integers(min_value=1, max_value=len(RECORDS)))
    rows = [list(r) for r in RECORDS[:count]]
    header = list(HEADER)
    for _ in range(draw(st.integers(0, 4))):  # duplicate keys
        source, target = draw(st.integers(0, count - 1)), draw(st.integers(0, count - 1))
        rows[target][header.index("persona_key")] = rows[source][header.index("persona_key")]
    for _ in range(draw(st.integers(0, 6))):  # bad cells
        column = draw(st.sampled_from(sorted(BAD_CELLS)))
        rows[draw(st.integers(0, count - 1))][header.index(column)] = BAD_CELLS[column]
    for column in draw(st.lists(st.sampled_from(OPTIONAL), unique=True, max_size=3)):  # missing columns
        position = header.index(column)
        header.pop(position)
        for row in rows:
            row.pop(position)
    for column in draw(st.lists(st.sampled_from(sorted(RENAMES)), unique=True, max_size=2)):  # documented aliases
        header[header.index(column)] = RENAMES[column]
    if draw(st.booleans()):  # a column nobody documented
        header.append("Steward notes")
        for row in rows:
            row.append(draw(st.sampled_from([None, "check", "ok"])))
    misspelt = draw(st.sampled_from([None, *sorted(MISSPELT)]))
    if misspelt not in header:
        misspelt = None
    if misspelt:
        header[header.index(misspelt)] = MISSPELT[misspelt]
    return header, rows, misspelt


@pytest.fixture(scope="module")
def org_loaded(make_schema_database):

    url = make_schema_database()
    raw = config.RAW_DIR
    with connect(loader_url(url)) as conn:
        load_workbook(conn, "org_structure.xlsx", validate_registry_workbook(raw / "org_structure.xlsx",
                                                                             isolated=False),
                      source_path=raw / "org_structure.xlsx")
    return url


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sheet=sheets())
def test_every_row_is_loaded_warned_or_quarantined(org_loaded, tmp_path, sheet):
    header, rows, misspelt = sheet
    path = tmp_path / "personas.xlsx"
    _write(path, {PERSONAS.sheet: (header, rows)})
    try:
        sheets_ = validate_registry_workbook(path, raw_dir=config.RAW_DIR, isolated=False)
    except SheetRefused as refused:
        assert misspelt is not None and {f.rule for f in refused.failures} <= {"unknown_header", "missing_header"}
        return
    with connect(loader_url(org_loaded)) as conn:
        try:
            conn.execute("select 1")  # an outer transaction, rolled back: every example starts from the same state
            result = load_workbook(conn, "personas.xlsx", sheets_, source_path=path)
            counts = result.accounts["personas"]
            assert counts["rows_in"] == len(rows)
            assert counts["rows_in"] == counts["loaded"] + counts["loaded_with_warnings"] + counts["quarantined"]
            written = result.tables["personas"]
            assert written.inserted + written.updated + written.unchanged == counts["rows_in"] - counts["quarantined"]
            open_entries = conn.execute("select count(*), count(distinct excel_row) from quarantined_rows "
                                        "where resolved_at is null").fetchone()
            ledger = conn.execute("select rejected from pipeline_loads order by started_at desc limit 1").fetchone()[0]
            assert open_entries == (counts["quarantined"], counts["quarantined"]) and ledger == counts["quarantined"]
            live = conn.execute("select count(*) from personas where deleted_at is null").fetchone()[0]
            assert live == counts["rows_in"] - counts["quarantined"]
        finally:
            conn.rollback()


def test_the_strategy_reaches_refusals_rejections_and_extra_columns():
    """The strategy reaches every outcome the property speaks of (else the property could hold by never trying)."""
    from hypothesis import find

    find(sheets(), lambda s: s[2] is not None and s[2] in ("description", "title"))
    find(sheets(), lambda s: "Steward notes" in s[0])
    find(sheets(), lambda s: any(row[s[0].index("persona_key")] == "Not A Slug" for row in s[1])
         if "persona_key" in s[0] else False)
