"""CSV exports are a source like a workbook: the same contract, the same located failures, the same database."""

from __future__ import annotations

import codecs
import csv
import shutil
from pathlib import Path

import openpyxl
import pytest

from vital_pipelines import config
from vital_pipelines.db import connect
from vital_pipelines.db.scratch import loader_url
from vital_pipelines.loading.registry import load_workbook
from vital_pipelines.spreadsheets.csv_source import read_csv_sheet
from vital_pipelines.spreadsheets.safety import UnsafeWorkbookError
from vital_pipelines.spreadsheets.workbooks import validate_registry_workbook

TABLES = {"personas.xlsx": "personas", "agents.xlsx": "agents", "jtbds.xlsx": "jobs_to_be_done"}


def _as_csv(workbook: Path, target: Path, *, delimiter: str = ",", bom: bool = False, junk: str | None = None) -> Path:
    rows = [["" if v is None else str(v) for v in row]
            for row in openpyxl.load_workbook(workbook, read_only=True).worksheets[0].iter_rows(values_only=True)]
    with open(target, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as out:
        if junk:
            out.write(junk + "\n")
        csv.writer(out, delimiter=delimiter).writerows(rows)
    return target


# Seeded org functions get a random id per database: compare the code they stand for.
_ROW = ("(to_jsonb(t) - 'created_at' - 'updated_at' - 'loaded_from' - 'function_id' || jsonb_build_object('function', "
        "(select f.code from org_functions f where f.id = (to_jsonb(t) ->> 'function_id')::uuid)))")


def _content(url: str, table: str) -> str:
    with connect(url) as conn:
        return conn.execute(f"select md5(string_agg({_ROW}::text, '' order by t.id)) from {table} t").fetchone()[0]


def _load(url: str, path: Path, workbook: str):
    sheets = validate_registry_workbook(path, raw_dir=config.RAW_DIR, isolated=False)
    with connect(loader_url(url)) as conn:
        return load_workbook(conn, workbook, sheets, source_path=path)


@pytest.mark.parametrize("workbook", sorted(TABLES))
def test_a_csv_copy_validates_and_loads_exactly_like_the_workbook(make_schema_database, tmp_path, workbook):

    urls = []
    for _ in range(2):
        urls.append(make_schema_database())
        _load(urls[-1], config.RAW_DIR / "org_structure.xlsx", "org_structure.xlsx")
        if workbook == "jtbds.xlsx":
            _load(urls[-1], config.RAW_DIR / "personas.xlsx", "personas.xlsx")
    source = config.RAW_DIR / workbook
    copy = _as_csv(source, tmp_path / workbook.replace(".xlsx", ".csv"), delimiter=";", bom=True,
                   junk='DETAIL:  "supautils" is now a reserved prefix.')
    from_workbook, from_csv = _load(urls[0], source, workbook), _load(urls[1], copy, workbook)
    assert {t: vars(c) for t, c in from_workbook.tables.items()} == {t: vars(c) for t, c in from_csv.tables.items()}
    assert from_csv.rejected == 0 and from_csv.tables[TABLES[workbook]].inserted > 200
    assert _content(urls[0], TABLES[workbook]) == _content(urls[1], TABLES[workbook]), _first_difference(
        urls, TABLES[workbook])


def _first_difference(urls: list[str], table: str) -> str:
    rows = []
    for url in urls:
        with connect(url) as conn:
            rows.append(conn.execute(f"select {_ROW} from {table} t order by t.id").fetchall())
    for a, b in zip(*rows):
        if a != b:
            return str({k: (a[0].get(k), b[0].get(k)) for k in a[0] if a[0].get(k) != b[0].get(k)})
    return "no row differs"


def test_a_csv_failure_names_the_line_and_the_header(tmp_path):
    copy = _as_csv(config.RAW_DIR / "personas.xlsx", tmp_path / "personas.csv", junk="exported by psql")
    lines = copy.read_text(encoding="utf-8").splitlines()
    header = next(csv.reader([lines[1]]))
    row = next(csv.reader([lines[5]]))
    row[header.index("seniority_level")] = "grand poobah"
    lines[5] = ",".join(f'"{v}"' for v in row)
    copy.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = validate_registry_workbook(copy, raw_dir=config.RAW_DIR, isolated=False)["personas"]
    assert result.failures == []
    [failure] = [w for w in result.warnings if w.column == "seniority_level"]
    assert (failure.row, failure.column, failure.value) == (6, "seniority_level", "grand poobah")
    assert failure.location.startswith("personas.csv › personas › ")


def test_a_finding_names_the_record_a_spreadsheet_shows_and_the_line_in_addition(tmp_path):
    """Cells holding newlines: the record after a three-line cell is row 3 in Excel, though it starts on line 5 of
    the file; a finding names the row a steward opening the file will see, and the line for a text editor."""
    path = tmp_path / "personas.csv"
    path.write_text('persona_key,name,title,visibility\n'
                    'a-one,"First\nsecond\nthird line",MSL,tenant\n'
                    'b-two,B,MSL,secret\n', encoding="utf-8")
    raw = read_csv_sheet(path, "personas")
    assert raw.frame["_row"].to_list() == [1, 2, 3] and raw.frame["B"].to_list() == [
        "name", "First\nsecond\nthird line", "B"]
    assert raw.lines == {3: 5}
    result = validate_registry_workbook(path, isolated=False)["personas"]
    [finding] = [f for f in result.failures + result.warnings if f.column == "visibility"]
    assert (finding.cell, finding.line) == ("D3", 5)
    assert finding.location == "personas.csv › personas › D3 (line 5 of the file)"


@pytest.mark.parametrize(("data", "message"), [
    ("persona_key;name\ncafé;Zoë\n".encode("cp1252"), r"not UTF-8 \(byte 0xe9 on line 2\).*CSV UTF-8"),
    (b"a,b\x00c\n", "NUL bytes"),
])
def test_files_that_are_not_utf8_text_are_refused_with_the_fix(tmp_path, data, message):
    path = tmp_path / "personas.csv"
    path.write_bytes(data)
    with pytest.raises(UnsafeWorkbookError, match=message):
        read_csv_sheet(path, "personas")


def test_utf16_with_its_bom_and_tabs_is_read(tmp_path):
    path = tmp_path / "personas.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + "persona_key\tname\na-one\tÅsa\n".encode("utf-16-le"))
    raw = read_csv_sheet(path, "personas")
    assert raw.frame["B"].to_list() == ["name", "Åsa"]


def test_a_multi_sheet_registry_is_not_taken_from_one_csv(tmp_path):
    path = tmp_path / "org_structure.csv"
    path.write_text("code,name\nMA,Medical Affairs\n", encoding="utf-8")
    with pytest.raises(UnsafeWorkbookError, match="a CSV file holds one sheet"):
        validate_registry_workbook(path, raw_dir=config.RAW_DIR, isolated=False)


def _as_json(workbook: Path, target: Path, *, lines: bool) -> Path:
    import json

    rows = list(openpyxl.load_workbook(workbook, read_only=True).worksheets[0].iter_rows(values_only=True))
    header, records = rows[0], [dict(zip(rows[0], row)) for row in rows[1:]]
    for record in records:  # lists as JSON arrays, as a Supabase export writes them
        for key, value in record.items():
            if isinstance(value, str) and "; " in value:
                record[key] = value.split("; ")
    text = "\n".join(json.dumps(r) for r in records) if lines else json.dumps(records, indent=1)
    target.write_text(text, encoding="utf-8")
    return target


@pytest.mark.parametrize("lines", [False, True], ids=["array", "json-lines"])
def test_a_json_copy_validates_like_the_workbook_and_keeps_list_items_whole(tmp_path, lines):
    source = config.RAW_DIR / "personas.xlsx"
    copy = _as_json(source, tmp_path / ("personas.jsonl" if lines else "personas.json"), lines=lines)
    from_workbook = validate_registry_workbook(source, isolated=False)["personas"].valid.drop("_row")
    from_json = validate_registry_workbook(copy, raw_dir=config.RAW_DIR, isolated=False)["personas"].valid.drop("_row")
    assert from_json.height == 335 and from_json.equals(from_workbook)


def test_json_that_is_not_a_table_is_refused_with_its_place(tmp_path):
    path = tmp_path / "personas.json"
    path.write_text('[{"persona_key": "a"}, ["not", "an", "object"]]', encoding="utf-8")
    with pytest.raises(UnsafeWorkbookError, match="item 2 is a list, not an object"):
        validate_registry_workbook(path, raw_dir=config.RAW_DIR, isolated=False)
    path.write_text('{"persona_key": "a"}\n{"persona_key": ', encoding="utf-8")
    with pytest.raises(UnsafeWorkbookError, match="not valid JSON"):
        validate_registry_workbook(path, raw_dir=config.RAW_DIR, isolated=False)


def _materialize(url: str, raw: Path, tmp_path: Path, workbook: str):
    import dagster as dg

    from vital_pipelines.defs.common.resources import PostgresResource
    from vital_pipelines.defs.registry import assets as registry_assets
    from vital_pipelines.defs.registry.resources import RegistrySource

    resources = {"postgres": PostgresResource(database_url=loader_url(url)),
                 "registry_source": RegistrySource(raw_dir=str(raw), reports_dir=str(tmp_path / "reports"),
                                                   isolated_reader=False)}
    return dg.materialize([registry_assets.WORKBOOK_ASSET[workbook]], resources=resources, raise_on_error=False)


def test_an_export_named_after_its_registry_loads_without_the_workbook(fresh_url, tmp_path):
    """raw/ with the org structure and `personas.csv` in the documented layout, but no personas.xlsx: the asset
    loads the export, every row, under the export's own name."""
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(config.RAW_DIR / "org_structure.xlsx", raw / "org_structure.xlsx")
    assert _materialize(fresh_url, raw, tmp_path, "org_structure.xlsx").success
    _as_csv(config.RAW_DIR / "personas.xlsx", raw / "personas.csv")
    result = _materialize(fresh_url, raw, tmp_path, "personas.xlsx")
    assert result.success
    [event] = result.get_asset_materialization_events()
    assert event.materialization.metadata["sheets"].value == {
        "personas.csv › personas": {"rows_in": 335, "loaded": 335, "loaded_with_warnings": 0, "quarantined": 0}}
    with connect(fresh_url) as conn:
        assert conn.execute("select count(*) from personas where loaded_from ->> 'file' = 'personas.csv'"
                            ).fetchone()[0] == 335


def test_a_registry_with_no_source_fails_in_one_sentence_naming_what_was_looked_for(fresh_url, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    result = _materialize(fresh_url, raw, tmp_path, "personas.xlsx")
    assert not result.success
    [check] = result.get_asset_check_evaluations()
    assert not check.passed
    assert check.description == (f"{raw} has nothing for personas: it looked for personas.xlsx, personas.csv, "
                                  "personas.json, personas.jsonl, and a *.mapping.yaml whose entity is personas; "
                                  "add one of them")
