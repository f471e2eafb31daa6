"""Ordinary steward mistakes never lose data behind a green load: every row of every sheet is loaded, loaded with a
warning or quarantined, and a sheet that cannot say what it means is refused whole."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from tests.waiting import wait_until
from tests.workbooks import edit_cells
from vital_pipelines.loading.sources import Source, load_source
from vital_pipelines import config
from vital_pipelines.db import connect
from vital_pipelines.db.scratch import loader_url
from vital_pipelines.loading.registry import load_workbook
from vital_pipelines.spreadsheets.validation import SheetRefused
from vital_pipelines.spreadsheets.workbooks import validate_registry_workbook


def _letter(path: Path, sheet: str, header: str) -> str:
    worksheet = openpyxl.load_workbook(path, read_only=True)[sheet]
    for cell in next(worksheet.iter_rows(min_row=1, max_row=1)):
        if str(cell.value).strip().lower() == header:
            return cell.column_letter
    raise AssertionError(f"no header {header} in {path.name} › {sheet}")


def _delete_column(path: Path, sheet: str, header: str) -> None:
    workbook = openpyxl.load_workbook(path)
    workbook[sheet].delete_cols(openpyxl.utils.column_index_from_string(_letter(path, sheet, header)))
    workbook.save(path)


def _load(url: str, raw: Path, workbook: str):
    with connect(loader_url(url)) as conn:
        return load_source(conn, Source(raw / workbook, workbook), raw_dir=raw, reload=True, isolated=False)


@pytest.fixture
def loaded(fresh_url, raw):
    for workbook in ("org_structure.xlsx", "personas.xlsx", "agents.xlsx", "jtbds.xlsx"):
        _load(fresh_url, raw, workbook)
    return fresh_url


def _scalar(url: str, query: str, *params):
    with connect(url) as conn:
        return conn.execute(query, params).fetchone()[0]


def test_a_misspelt_header_refuses_the_sheet_and_names_the_column_it_resembles(loaded, raw):
    letter = _letter(raw / "personas.xlsx", "personas", "description")
    edit_cells(raw / "personas.xlsx", "personas", {f"{letter}1": "Descriptoin"})
    with pytest.raises(SheetRefused) as refused:
        validate_registry_workbook(raw / "personas.xlsx", raw_dir=raw, isolated=False)
    [failure] = refused.value.failures
    assert (failure.rule, failure.cell, failure.value) == ("unknown_header", f"{letter}1", "Descriptoin")
    assert "did you mean `description`?" in failure.message
    assert _scalar(loaded, "select count(description) from personas") == 335


def test_data_under_a_blank_header_refuses_the_sheet(raw):
    worksheet = openpyxl.load_workbook(raw / "agents.xlsx")["agents"]
    spare = openpyxl.utils.get_column_letter(worksheet.max_column + 2)
    edit_cells(raw / "agents.xlsx", "agents", {f"{spare}7": "an orphan note"})
    with pytest.raises(SheetRefused) as refused:
        validate_registry_workbook(raw / "agents.xlsx", raw_dir=raw, isolated=False)
    [failure] = refused.value.failures
    assert failure.rule == "blank_header" and failure.letter == spare and f"first {spare}7" in failure.message


def test_an_extra_column_is_a_warning_and_everything_else_loads(fresh_url, raw):
    _load(fresh_url, raw, "org_structure.xlsx")
    worksheet = openpyxl.load_workbook(raw / "personas.xlsx")["personas"]
    extra = openpyxl.utils.get_column_letter(worksheet.max_column + 1)
    edit_cells(raw / "personas.xlsx", "personas", {f"{extra}1": "Steward notes", f"{extra}2": "check title"})
    result = _load(fresh_url, raw, "personas.xlsx")
    assert [(w.rule, w.cell) for w in result.warnings] == [("unknown_header", f"{extra}1")]
    assert "its values are not loaded" in result.warnings[0].message
    assert result.tables["personas"].inserted == 335 and result.rejected == 0


@pytest.mark.parametrize(("workbook", "sheet", "header", "table", "column"), [
    ("agents.xlsx", "agents", "tagline", "agents", "tagline"),
    ("personas.xlsx", "personas", "goals", "personas", "goals"),
    ("org_structure.xlsx", "functions", "display_order", "org_functions", "display_order"),
    ("agents.xlsx", "agents", "department_code", "agent_departments", "department_id"),
])
def test_a_column_the_sheet_lacks_leaves_stored_values_as_they_are(loaded, raw, workbook, sheet, header, table, column):
    before = _scalar(loaded, f"select count({column}) from {table}")
    assert before > 0
    _delete_column(raw / workbook, sheet, header)
    result = _load(loaded, raw, workbook)
    assert result.rejected == 0
    assert _scalar(loaded, f"select count({column}) from {table}") == before
    assert result.total.updated == 0, "nothing else changed either"


def test_personas_whose_org_codes_are_not_in_the_database_load_keeping_the_codes_and_link_later(fresh_url, raw):
    """personas' org references may be empty in the schema: a persona whose codes name nothing yet loads with a
    warning per cell and keeps the codes in metadata.unresolved; the load after the org's resolves and links them."""
    result = _load(fresh_url, raw, "personas.xlsx")
    assert result.tables["personas"].inserted == 335 and result.rejected == 0
    assert result.accounts["personas"] == {"rows_in": 335, "loaded": 0, "loaded_with_warnings": 335, "quarantined": 0}
    assert {f.rule for f in result.warnings} == {"reference_warning"}
    assert "names no department in the database" in next(w.message for w in result.warnings
                                                         if w.column == "department_code")
    assert _scalar(fresh_url, "select count(*) from personas where role_id is null "
                              "and metadata -> 'unresolved' ? 'role_code'") == 335
    _load(fresh_url, raw, "org_structure.xlsx")
    again = _load(fresh_url, raw, "personas.xlsx")
    assert again.tables["personas"].updated == 335 and again.rejected == 0 and not again.warnings
    assert _scalar(fresh_url, "select count(*) from personas where role_id is null or department_id is null") == 0
    assert _scalar(fresh_url, "select count(*) from personas where metadata ? 'unresolved'") == 0
    assert _scalar(fresh_url, "select count(*) from quarantined_rows where resolved_at is null") == 0


def test_jtbd_links_to_personas_not_in_the_database_warn_and_keep_the_links_there_were(loaded, raw):
    links = _scalar(loaded, "select count(*) from jtbd_personas")
    assert links > 0
    with connect(loaded) as conn:
        conn.execute("update personas set persona_key = persona_key || '-gone' where persona_key in "
                     "(select persona_key from personas order by persona_key limit 20)")
        conn.commit()
    result = _load(loaded, raw, "jtbds.xlsx")
    assert result.warnings and {w.rule for w in result.warnings} == {"reference_warning"}
    assert "the row is loaded and keeps the link it had" in result.warnings[0].message
    assert result.tables["jobs_to_be_done"].unchanged == 338 and result.rejected == 0
    warned = result.accounts["jtbds"]["loaded_with_warnings"]
    assert warned == len({w.row for w in result.warnings}) > 0
    assert _scalar(loaded, "select count(*) from jtbd_personas") == links, "no link was dropped"


def test_rows_that_share_a_key_are_each_quarantined_and_name_each_other(fresh_url, raw):
    _load(fresh_url, raw, "org_structure.xlsx")
    letter = _letter(raw / "personas.xlsx", "personas", "persona_key")
    key = openpyxl.load_workbook(raw / "personas.xlsx")["personas"][f"{letter}20"].value
    edit_cells(raw / "personas.xlsx", "personas", {f"{letter}21": key, f"{letter}22": key, f"{letter}23": key})
    result = _load(fresh_url, raw, "personas.xlsx")
    assert result.rejected == 4 and result.tables["personas"].inserted == 331
    assert result.accounts["personas"] == {"rows_in": 335, "loaded": 331, "loaded_with_warnings": 0, "quarantined": 4}
    on_20 = next(f for f in result.failures if f.row == 20 and f.rule == "unique")
    assert "(also on rows 21, 22, 23)" in on_20.message
    with connect(fresh_url) as conn:
        entries = conn.execute("select excel_row from quarantined_rows where resolved_at is null order by 1").fetchall()
        ledger = conn.execute("select rejected, details->'sheets'->'personas'->>'quarantined' from pipeline_loads "
                              "where target = 'personas'").fetchone()
    assert entries == [(20,), (21,), (22,), (23,)] and ledger == (4, "4")


def test_the_committed_workbooks_account_for_every_row(fresh_url):
    for workbook in ("org_structure.xlsx", "personas.xlsx", "agents.xlsx", "jtbds.xlsx"):
        result = _load(fresh_url, config.RAW_DIR, workbook)
        for sheet, counts in result.accounts.items():
            assert counts["rows_in"] == counts["loaded"] + counts["loaded_with_warnings"] + counts["quarantined"]
            assert counts["rows_in"] > 0 and counts["quarantined"] == 0, (workbook, sheet)


def test_a_jtbd_load_waits_for_an_open_personas_load_and_gets_every_link(fresh_url, raw):
    import threading

    _load(fresh_url, raw, "org_structure.xlsx")
    personas = connect(loader_url(fresh_url))
    personas.execute("select 1")  # an open transaction: the personas load below commits only with it
    load_workbook(personas, "personas.xlsx", validate_registry_workbook(raw / "personas.xlsx", raw_dir=raw,
                                                                         isolated=False),
                  source_path=raw / "personas.xlsx")
    results = []
    jtbds = threading.Thread(target=lambda: results.append(_load(fresh_url, raw, "jtbds.xlsx")))
    jtbds.start()
    try:
        with connect(fresh_url) as observer:
            waiting = wait_until(lambda: observer.execute("select count(*) from pg_locks where locktype = 'advisory' "
                                                          "and not granted").fetchone()[0])
        assert waiting == 1, "the JTBD load waits for the personas load it reads from"
    finally:
        personas.commit()
        personas.close()
        jtbds.join(timeout=120)
    [result] = results
    assert result.tables["jtbd_personas"].inserted == 675 and not result.warnings


def test_the_ledger_hashes_the_bytes_that_were_parsed_even_when_the_file_is_replaced(fresh_url, raw, tmp_path,
                                                                                     monkeypatch):
    import dagster as dg

    from vital_pipelines.defs.common.resources import PostgresResource
    from vital_pipelines.defs.registry import assets as registry_assets
    from vital_pipelines.defs.registry.resources import RegistrySource
    from vital_pipelines.files import file_sha256

    _load(fresh_url, raw, "org_structure.xlsx")
    parsed_sha = file_sha256(raw / "personas.xlsx")
    from vital_pipelines.loading import sources
    real = sources.validate_registry_workbook

    def validate_then_the_steward_saves(path, **kwargs):
        sheets = real(path, **kwargs)
        edit_cells(raw / "personas.xlsx", "personas", {"B2": "Saved while the load was reading"})
        return sheets

    monkeypatch.setattr(sources, "validate_registry_workbook", validate_then_the_steward_saves)
    resources = {"postgres": PostgresResource(database_url=loader_url(fresh_url)),
                 "registry_source": RegistrySource(raw_dir=str(raw), reports_dir=str(tmp_path / "reports"),
                                                   isolated_reader=False)}
    assert dg.materialize([registry_assets.WORKBOOK_ASSET["personas.xlsx"]], resources=resources).success
    assert file_sha256(raw / "personas.xlsx") != parsed_sha
    assert _scalar(fresh_url, "select source_sha256 from pipeline_loads where target = 'personas'") == parsed_sha
    assert _scalar(fresh_url, "select count(*) from personas where name = 'Saved while the load was reading'") == 0


def test_a_frozen_network_fails_the_load_in_bounded_time_and_the_server_releases_its_lock(fresh_url, raw):
    import threading
    import time

    from psycopg import conninfo

    from tests.tcp_proxy import FreezableProxy
    from vital_pipelines.db.connection import NoAnswer
    from vital_pipelines.db.transient import is_transient
    from vital_pipelines.defs.common.resources import PostgresResource

    _load(fresh_url, raw, "org_structure.xlsx")
    sheets = validate_registry_workbook(raw / "personas.xlsx", raw_dir=raw, isolated=False)
    server = conninfo.conninfo_to_dict(fresh_url)
    with FreezableProxy(int(server.get("port") or 5432)) as proxy:
        proxied = conninfo.make_conninfo(loader_url(fresh_url), host="127.0.0.1", port=str(proxy.port))
        resource = PostgresResource(database_url=proxied, lock_timeout_seconds=60, statement_timeout_seconds=2,
                                    idle_in_transaction_seconds=2, response_margin_seconds=3)
        blocker = connect(fresh_url)
        blocker.execute("lock table personas in access exclusive mode")
        outcome: dict = {}

        def load():
            try:
                with resource.get_connection() as conn:
                    load_workbook(conn, "personas.xlsx", sheets, source_path=raw / "personas.xlsx")
            except Exception as error:  # asserted below
                outcome["error"] = error
            outcome["at"] = time.monotonic()

        loader = threading.Thread(target=load)
        loader.start()
        with connect(fresh_url, autocommit=True) as observer:
            wait_until(lambda: observer.execute(  # the load holds its advisory lock and waits for the table
                "select count(*) from pg_locks where not granted and relation = 'personas'::regclass").fetchone()[0])
            proxy.freeze()
            frozen_at = time.monotonic()
            loader.join(timeout=30)
            assert not loader.is_alive(), "the load hangs on a frozen network"
            assert isinstance(outcome.get("error"), NoAnswer) and is_transient(outcome["error"])
            assert outcome["at"] - frozen_at < 10
            held = wait_until(lambda: observer.execute("select count(*) from pg_locks where locktype = 'advisory'")
                              .fetchone()[0], lambda n: n == 0, step=0.1)
            released_after = time.monotonic() - frozen_at
            assert held == 0 and released_after < 10, "the server ended the frozen session and its lock"
        blocker.rollback()
        blocker.close()
    assert _scalar(fresh_url, "select count(*) from personas") == 0
    assert _scalar(fresh_url, "select count(*) from pipeline_loads where target = 'personas'") == 0
    print(f"frozen network: load failed {outcome['at'] - frozen_at:.1f} s and its lock was released "
          f"{released_after:.1f} s after the freeze")


@pytest.mark.parametrize(("cell", "stored"), [
    # Excel stores control characters as OOXML escapes; the reader decodes them (or hands the escape through).
    ("Senior_x000B_ MSL", "Senior MSL"), ("Senior_x0001_ MSL", "Senior MSL"), ("Line one\nline two", "Line one\nline two"),
    ("_x001F_MSL_x007F_", "MSL"),
])
def test_control_characters_never_reach_the_database(fresh_url, raw, cell, stored):
    _load(fresh_url, raw, "org_structure.xlsx")
    letter = _letter(raw / "personas.xlsx", "personas", "title")
    edit_cells(raw / "personas.xlsx", "personas", {f"{letter}2": cell})
    result = _load(fresh_url, raw, "personas.xlsx")
    assert result.rejected == 0
    titles = {t for (t,) in connect(fresh_url).execute("select title from personas").fetchall()}
    assert stored in titles and not any(ch in "".join(titles) for ch in "\x0b\x1f\x7f") and "_x0001_" not in "".join(titles)


def test_the_soft_delete_spares_rows_the_application_created_and_lists_what_it_removed(loaded, raw):
    import json as _json

    with connect(loaded) as conn:
        member = conn.execute("insert into auth.users (email) values ('msl@acme.example') returning id::text").fetchone()[0]
        conn.execute("insert into tenant_members (tenant_id, user_id, role) values "
                     "('22222222-2222-2222-2222-222222222222', %s, 'member')", (member,))
        conn.commit()
        conn.execute("set role authenticated")
        conn.execute("select set_config('request.jwt.claims', %s, false)", (_json.dumps({"sub": member}),))
        for key in ("app-made-one", "app-made-two"):
            conn.execute("insert into personas (tenant_id, persona_key, name, title) values "
                         "('22222222-2222-2222-2222-222222222222', %s, 'Made in the app', 'MSL')", (key,))
        conn.commit()
    letter = _letter(raw / "personas.xlsx", "personas", "persona_key")
    sheet = openpyxl.load_workbook(raw / "personas.xlsx")["personas"]
    overwritten, moved = sheet[f"{letter}21"].value, sheet[f"{letter}2"].value
    tenant = _letter(raw / "personas.xlsx", "personas", "tenant")
    # One row now belongs to Acme, so the load covers Acme's personas; another row's key is overwritten by mistake.
    edit_cells(raw / "personas.xlsx", "personas", {f"{tenant}2": "acme-pharma", f"{letter}21": sheet[f"{letter}20"].value})
    result = _load(loaded, raw, "personas.xlsx")
    # The duplicated key waits in quarantine and may be the overwritten row: no deletion while it is in doubt.
    assert result.tables["personas"].deleted_keys == [] and \
        result.tables["personas"].held_back_keys == sorted([overwritten, moved])
    assert _scalar(loaded, "select count(*) from personas where persona_key = %s and deleted_at is null",
                   overwritten) == 1
    # The steward fixes the key: now the moved row's platform copy goes, and nothing the application made.
    edit_cells(raw / "personas.xlsx", "personas", {f"{letter}21": overwritten})
    result = _load(loaded, raw, "personas.xlsx")
    assert result.tables["personas"].deleted_keys == [moved], \
        "the platform's copy of the moved row, and nothing the application made"
    assert _scalar(loaded, "select count(*) from personas where persona_key like 'app-made-%%' "
                           "and deleted_at is null") == 2
    audit = _scalar(loaded, "select details->'tables'->'personas'->'deleted_keys' from audit_log "
                            "where entity_type = 'personas' order by created_at desc limit 1")
    assert audit == [moved]
    stamp = _scalar(loaded, "select loaded_from from personas where persona_key = %s", sheet[f"{letter}30"].value)
    assert stamp["file"] == "personas.xlsx" and stamp["sheet"] == "personas" and stamp["row"] == 30
    assert _scalar(loaded, "select count(*) from personas where loaded_from is null") == 2
    assert _scalar(loaded, "select count(*) from personas where tenant_id = '22222222-2222-2222-2222-222222222222' "
                           "and deleted_at is null") == 3


def test_every_row_names_the_sheet_row_and_load_that_wrote_it_and_unchanged_rows_keep_theirs(loaded, raw):
    letter = _letter(raw / "personas.xlsx", "personas", "persona_key")
    sheet = openpyxl.load_workbook(raw / "personas.xlsx")["personas"]
    rows = {sheet[f"{letter}{n}"].value: n for n in range(2, sheet.max_row + 1) if sheet[f"{letter}{n}"].value}
    with connect(loaded) as conn:
        first = {key: stamp for key, stamp in conn.execute("select persona_key, loaded_from from personas")}
        ledger = {load_id for (load_id,) in conn.execute(
            "select id::text from pipeline_loads where source_file = 'personas.xlsx' and status = 'succeeded'")}
    assert set(first) == set(rows) and len(rows) > 100
    assert {key: (s["file"], s["sheet"], s["row"]) for key, s in first.items()} == \
        {key: ("personas.xlsx", "personas", row) for key, row in rows.items()}
    assert {s["load_id"] for s in first.values()} == ledger and len(ledger) == 1

    edited = next(key for key, row in rows.items() if row == 7)
    edit_cells(raw / "personas.xlsx", "personas", {f"{_letter(raw / 'personas.xlsx', 'personas', 'title')}7": "Edited"})
    _load(loaded, raw, "personas.xlsx")
    with connect(loaded) as conn:
        second = {key: stamp for key, stamp in conn.execute("select persona_key, loaded_from from personas")}
    changed = {key for key in rows if second[key] != first[key]}
    assert changed == {edited}
    assert second[edited]["row"] == 7 and second[edited]["load_id"] not in ledger
