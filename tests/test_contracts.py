"""Every contract rule, broken once, reported at the exact cell with the exact message."""

from __future__ import annotations

import zipfile

import openpyxl
import pytest

from tests.workbooks import write_workbook
from vital_pipelines import enums
from vital_pipelines.spreadsheets.contracts import AGENTS, PERSONAS
from vital_pipelines.spreadsheets.safety import Limits, UnsafeWorkbookError, inspect_workbook
from vital_pipelines.spreadsheets.validation import SheetRefused, validate_workbook

REFS = {"functions.code": {"MA"}, "departments.code": {"MA-MSL"}, "roles.code": {"MSL", "SR-MSL"}}
HEADER = ["persona_key", "name", "title", "function_code", "department_code", "role_code", "years_experience",
          "visibility", "goals", "decision_authority"]
GOOD = ["ok-persona", "Dr Ada Lee", "MSL", "MA", "MA-MSL", "MSL", "7", "tenant", "a; b", "tactical"]


def _personas(tmp_path, *rows, header=HEADER, **kwargs):
    path = write_workbook(tmp_path / "personas.xlsx", {"personas": [header, *rows]}, **kwargs)
    return validate_workbook(path, (PERSONAS,), REFS, isolated=False)["personas"]


def _only(result):
    assert len(result.failures) == 1, [f.message for f in result.failures]
    return result.failures[0]


@pytest.mark.parametrize("column, bad, cell, rule, message", [
    ("title", None, "C3", "required", "`title` is required; the cell is empty"),
    ("visibility", "secret", "H3", "allowed_values",
     "`visibility` must be one of private, tenant, subtenant, organization, public; got `secret`"),
    ("persona_key", "Bad Key", "A3", "format",
     "`persona_key` must be lower-case letters and digits joined by single hyphens or underscores (like "
     "oncology-msl-advisor or oncology_msl_advisor); got `Bad Key`"),
    ("name", "x" * 256, "B3", "length", "`name` must be at most 255 characters; got 256"),
])
def test_each_rule_names_cell_and_fix(tmp_path, column, bad, cell, rule, message):
    row = list(GOOD)
    row[0] = "second-persona"
    row[HEADER.index(column)] = bad
    result = _personas(tmp_path, GOOD, row)
    failure = _only(result)
    assert (failure.cell, failure.rule, failure.message) == (cell, rule, message)
    assert result.valid.height == 1 and result.rejected.height == 1


def test_an_optional_reference_that_names_nothing_warns_and_keeps_its_text_for_the_load(tmp_path):
    """personas.role_id may be empty in the schema: a role that names nothing warns (severity from the schema), and
    the text stays with the row, for the load to try against the database and keep in metadata.unresolved."""
    row = list(GOOD)
    row[0] = "second-persona"
    row[HEADER.index("role_code")] = "Nope"
    result = _personas(tmp_path, GOOD, row)
    assert result.failures == [] and result.rejected.height == 0
    [warning] = [w for w in result.warnings if w.column == "role_code"]
    assert (warning.cell, warning.rule, warning.value) == ("F3", "reference_warning", "Nope")
    assert warning.message.startswith("`role_code` must name an existing role (its code or name, in the database or "
                                      "in org_structure.xlsx › roles); `Nope` is not there or was rejected")
    loaded = result.valid.filter(result.valid["persona_key"] == "second-persona").row(0, named=True)
    assert loaded["role_code"] == "NOPE"


@pytest.mark.parametrize("column, bad, cell, rule, message", [
    ("years_experience", "70", "G3", "range", "`years_experience` must be at most 60; got `70`"),
    ("years_experience", "-1", "G3", "range", "`years_experience` must be at least 0; got `-1`"),
    ("years_experience", "5.5", "G3", "type", "`years_experience` must be a whole number; got `5.5`"),
    ("decision_authority", "sometimes", "J3", "allowed_values",
     "`decision_authority` must be one of routine, tactical, strategic, critical; got `sometimes`"),
])
def test_a_bad_optional_cell_warns_and_the_row_loads_without_it(tmp_path, column, bad, cell, rule, message):
    row = list(GOOD)
    row[0] = "second-persona"
    row[HEADER.index(column)] = bad
    result = _personas(tmp_path, GOOD, row)
    assert result.failures == [] and result.rejected.height == 0
    warnings = [w for w in result.warnings if w.column == column]
    assert len(warnings) == 1, [w.message for w in result.warnings]
    warning = warnings[0]
    assert (warning.cell, warning.rule) == (cell, f"{rule}_warning")
    assert warning.message.startswith(message)
    loaded = result.valid.filter(result.valid["persona_key"] == "second-persona").row(0, named=True)
    assert loaded[column] is None and column in loaded["_keep"]
    kept = result.valid.filter(result.valid["persona_key"] == "ok-persona").row(0, named=True)
    assert kept[column] is not None and column not in (kept["_keep"] or [])


def test_uniqueness_after_normalisation(tmp_path):
    twin = list(GOOD)
    twin[0] = "\u200bOK-Persona\u00a0"
    result = _personas(tmp_path, GOOD, twin)
    assert [(f.cell, f.rule) for f in result.failures] == [("A2", "unique"), ("A3", "unique")]
    assert result.valid.height == 0


def test_agent_colour_and_temperature(tmp_path):
    header = ["slug", "name", "description", "status", "domain_expertise", "function_code", "color", "temperature"]
    rows = [header, ["a-one", "A", "d", "active", "medical", "MA", "#12ABzz", "0.3"],
            ["a-two", "B", "d", "Active", "Market Access", "MA", "#12ABCD", "2.5"]]
    path = write_workbook(tmp_path / "agents.xlsx", {"agents": rows})
    result = validate_workbook(path, (AGENTS,), REFS, isolated=False)["agents"]
    assert result.failures == [] and result.valid.height == 2
    assert [(w.cell, w.rule) for w in result.warnings] == [("G2", "format_warning"), ("H3", "range_warning")]
    assert result.warnings[0].message.startswith(
        "`color` must be a colour written #RRGGBB (like #1F77B4); got `#12ABzz`")


def test_enum_spellings_are_normalised(tmp_path):
    header = ["slug", "name", "description", "status", "domain_expertise", "function_code", "agent_type"]
    rows = [header, ["a-one", "A", "d", "ACTIVE", "market access", "ma", "Orchestrator"]]
    path = write_workbook(tmp_path / "agents.xlsx", {"agents": rows})
    result = validate_workbook(path, (AGENTS,), REFS, isolated=False)["agents"]
    assert result.failures == []
    row = result.valid.row(0, named=True)
    assert (row["status"], row["domain_expertise"], row["agent_type"], row["function_code"]) == \
        ("active", "market_access", "orchestrator", "MA")
    assert (row["tier"], row["visibility"], row["validation_status"]) == (2, "tenant", "pending")


def test_what_real_exports_contain(tmp_path):
    header = ["\ufeffPersona Key", "NAME", "Job Title", "Function-Code", "department", "RoleCode", "Years",
              "Visibility", "Goals", "pains", "Tools"]
    rows = [header,
            [" lee-ada ", "Dr\u00a0Ada Lee", "MSL", "MA", "MA-MSL", "MSL", "7.0", None, "a\nb\n\nb", '{x,"y z",NULL}', "p, q"],
            [None] * 11,
            ["kim-jo", "Jo Kim", "Senior MSL", "MA", "MA-MSL", "SR-MSL", 12, "Organization", "{}", "one;two", None]]
    result = _personas(tmp_path, *rows[1:], header=header)
    assert result.failures == []
    first, second = result.valid.sort("_row").iter_rows(named=True)
    assert (first["_row"], second["_row"]) == (2, 4)
    assert first["persona_key"] == "lee-ada" and first["name"] == "Dr Ada Lee"
    assert first["years_experience"] == 7 and first["visibility"] == "tenant"
    assert first["goals"] == ["a", "b"] and first["pain_points"] == ["x", "y z"] and first["tools_used"] == ["p", "q"]
    assert second["years_experience"] == 12 and second["visibility"] == "organization"
    assert second["goals"] is None and second["pain_points"] == ["one", "two"]


def test_header_below_a_title_row_keeps_excel_rows(tmp_path):
    rows = [["Personas export — do not edit"], [], HEADER, GOOD, ["x"] + GOOD[1:2] + [None] + GOOD[3:]]
    path = write_workbook(tmp_path / "personas.xlsx", {"personas": rows})
    result = validate_workbook(path, (PERSONAS,), REFS, isolated=True)["personas"]
    assert [(f.cell, f.rule) for f in result.failures] == [("C5", "required")]


@pytest.mark.parametrize("header, rule, message", [
    (HEADER[1:], "missing_header", "required column(s) persona_key missing from the header row 1"),
    (HEADER + ["Persona-Key"], "duplicate_header",
     "the column `persona_key` appears twice: `persona_key` and `Persona-Key` both mean `persona_key` (columns A and K); "
         "delete or rename one of them"),
])
def test_header_problems_refuse_the_sheet(tmp_path, header, rule, message):
    path = write_workbook(tmp_path / "personas.xlsx", {"personas": [header, GOOD[: len(header)]]})
    with pytest.raises(SheetRefused) as refused:
        validate_workbook(path, (PERSONAS,), REFS, isolated=False)
    assert [(f.rule, f.message) for f in refused.value.failures] == [(rule, message)]


def test_missing_and_hidden_sheets_are_refused(tmp_path):
    path = write_workbook(tmp_path / "personas.xlsx", {"people": [HEADER, GOOD]})
    with pytest.raises(SheetRefused, match="has no sheet `personas` \\(it has: people\\)"):
        validate_workbook(path, (PERSONAS,), REFS, isolated=False)
    path = write_workbook(tmp_path / "hidden.xlsx", {"cover": [["x"]], "personas": [HEADER, GOOD]}, hidden=("personas",))
    with pytest.raises(SheetRefused, match="is hidden"):
        validate_workbook(path, (PERSONAS,), REFS, isolated=False)


def test_merged_cells_and_formulas_without_values_are_refused(tmp_path):
    path = tmp_path / "personas.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "personas"
    sheet.append(HEADER)
    sheet.append(GOOD)
    sheet["B3"] = "=UPPER(B2)"
    sheet.merge_cells("C4:D4")
    workbook.save(path)
    with pytest.raises(SheetRefused) as refused:
        validate_workbook(path, (PERSONAS,), REFS, isolated=False)
    found = {(f.rule, f.cell) for f in refused.value.failures}
    assert found == {("formula_without_value", "B3"), ("merged_cells", "C4")}


def test_not_a_workbook(tmp_path):
    path = tmp_path / "personas.xlsx"
    path.write_text("persona_key,name\nx,y\n")
    with pytest.raises(UnsafeWorkbookError, match="not an Excel workbook"):
        inspect_workbook(path)
    with zipfile.ZipFile(tmp_path / "zip.xlsx", "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(UnsafeWorkbookError, match="no xl/workbook.xml"):
        inspect_workbook(tmp_path / "zip.xlsx")


def test_decompression_bomb_is_refused_before_reading(tmp_path):
    path = write_workbook(tmp_path / "personas.xlsx", {"personas": [HEADER, GOOD]})
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/padding.bin", b"\0" * 20_000_000)
    with pytest.raises(UnsafeWorkbookError, match="zip bomb"):
        inspect_workbook(path)


def test_absurd_declared_range_is_refused_without_allocating(tmp_path):
    path = write_workbook(tmp_path / "personas.xlsx", {"personas": [HEADER, GOOD]})
    original = zipfile.ZipFile(path)
    patched = tmp_path / "huge.xlsx"
    with zipfile.ZipFile(patched, "w", compression=zipfile.ZIP_DEFLATED) as out:
        for item in original.infolist():
            data = original.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b'<dimension ref="A1:J2"/>', b'<dimension ref="A1:XFD1048576"/>')
                assert b"XFD1048576" in data
            out.writestr(item, data)
    with pytest.raises(UnsafeWorkbookError, match=r"declares the range A1:XFD1048576"):
        inspect_workbook(patched)
    assert inspect_workbook(patched, Limits(max_declared_cells=10**12)).sheets["personas"].last_row == 2


def test_entity_expansion_is_refused(tmp_path):
    path = write_workbook(tmp_path / "personas.xlsx", {"personas": [HEADER, GOOD]})
    original = zipfile.ZipFile(path)
    evil = tmp_path / "evil.xlsx"
    with zipfile.ZipFile(evil, "w") as out:
        for item in original.infolist():
            data = original.read(item.filename)
            if item.filename == "xl/workbook.xml":
                data = data.replace(b"?>", b'?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>', 1)
            out.writestr(item, data)
    with pytest.raises(UnsafeWorkbookError, match="entity-expansion attack"):
        inspect_workbook(evil)


def test_python_enums_match_the_sql_enums(db):
    for name, labels in enums.SQL_ENUMS.items():
        actual = [r[0] for r in db.execute(
            "select e.enumlabel from pg_enum e join pg_type t on t.oid = e.enumtypid where t.typname = %s "
            "order by e.enumsortorder", (name,))]
        assert actual == labels, name
