"""Every load can be seen and taken back: row history written by the load itself, `loads undo` restoring exactly what
one load changed (values, links, soft deletes) as a load of its own, and refusing when a later load stands in the way."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workbooks import delete_rows, edit_cells
from vital_pipelines.loading.sources import Source, load_source
from vital_pipelines import cli
from vital_pipelines.db import connect
from vital_pipelines.db.scratch import loader_url
from vital_pipelines.loading import history
from vital_pipelines.loading.registry import load_workbook
from vital_pipelines.spreadsheets.workbooks import validate_registry_workbook


def _load(url: str, raw: Path, workbook: str):
    with connect(loader_url(url)) as conn:
        return load_source(conn, Source(raw / workbook, workbook), raw_dir=raw, reload=True, isolated=False)


@pytest.fixture
def loaded(fresh_url, raw, monkeypatch):
    for workbook in ("org_structure.xlsx", "personas.xlsx", "agents.xlsx", "jtbds.xlsx"):
        _load(fresh_url, raw, workbook)
    monkeypatch.setenv("DATABASE_URL", loader_url(fresh_url))
    return fresh_url


def _state(url: str) -> dict:
    """Every persona and agent with all their columns but the clock's, and the agents' and JTBDs' links."""
    with connect(url) as conn:
        def rows(table: str, order: str) -> list:
            return [{k: v for k, v in row.items() if k != "updated_at"} for row in conn.execute(
                f"select to_jsonb(t) as r from {table} t order by {order}").fetchall() for row in [row[0]]]
        return {"personas": rows("personas", "id"), "agents": rows("agents", "id"),
                "agent_functions": rows("agent_functions", "agent_id, function_id"),
                "agent_roles": rows("agent_roles", "agent_id, role_id"),
                "jtbd_personas": rows("jtbd_personas", "jtbd_id, persona_id")}


def test_undo_latest_restores_every_column_link_and_soft_delete_and_can_itself_be_undone(loaded, raw, capsys):
    before = _state(loaded)
    personas = raw / "personas.xlsx"
    edit_cells(personas, "personas", {"I2": "Rewritten one.", "I3": "Rewritten two.", "C4": "Head of Oncology Brand"})
    delete_rows(personas, "personas", 6)
    edited = _load(loaded, raw, "personas.xlsx")
    assert (edited.tables["personas"].updated, edited.tables["personas"].deleted) == (3, 1)
    after_edit = _state(loaded)
    assert after_edit != before

    assert cli.main(["loads", "undo", "--latest", "personas", "--dry-run"]) == 0
    preview = capsys.readouterr().out
    assert "would change 4 rows" in preview and "restore the values it changed × 4" in preview
    assert _state(loaded) == after_edit  # a dry run writes nothing

    assert cli.main(["loads", "undo", "--latest", "personas"]) == 0
    assert "did change 4 rows" in capsys.readouterr().out
    assert _state(loaded) == before
    with connect(loaded) as conn:
        ledger = conn.execute("select policy, details->>'undo_of', updated from pipeline_loads "
                              "order by finished_at desc limit 1").fetchone()
    assert ledger[0] == "undo" and ledger[1] == edited_load(loaded) and ledger[2] == 4

    # The undo is a load: undoing it brings the edit back.
    assert cli.main(["loads", "undo", "--latest", "personas"]) == 0
    capsys.readouterr()
    assert _state(loaded) == after_edit


def edited_load(url: str) -> str:
    with connect(url) as conn:
        return conn.execute("select id::text from pipeline_loads where target = 'personas' and policy = 'quarantine' "
                            "order by finished_at desc limit 1").fetchone()[0]


def test_links_come_back_and_inserted_rows_are_soft_deleted(loaded, raw):
    before = _state(loaded)
    agents = raw / "agents.xlsx"
    edit_cells(agents, "agents", {"function_code@2": "MA", "department_code@2": "MA-MSL", "role_code@2": "MSL"})
    _load(loaded, raw, "agents.xlsx")
    personas = raw / "personas.xlsx"
    edit_cells(personas, "personas", {"A400": "new-persona-added-by-mistake", "B400": "Added By Mistake",
                                      "C400": "Brand Manager", "D400": "COMM", "E400": "COMM-MKT", "F400": "BRAND-MGR"})
    added = _load(loaded, raw, "personas.xlsx")
    assert added.tables["personas"].inserted == 1
    with connect(loader_url(loaded)) as conn:
        history.undo_load(conn, history.latest_load(conn, "personas").load_id)
        history.undo_load(conn, history.latest_load(conn, "agents").load_id)
    with connect(loaded) as conn:
        gone = conn.execute("select deleted_at is not null from personas where persona_key = "
                            "'new-persona-added-by-mistake'").fetchone()
    assert gone == (True,)
    now = _state(loaded)
    assert now["agent_functions"] == before["agent_functions"] and now["agent_roles"] == before["agent_roles"]
    assert [p for p in now["personas"] if p["persona_key"] != "new-persona-added-by-mistake"] == before["personas"]


def test_undo_refuses_and_names_the_rows_a_later_load_changed(loaded, raw, capsys):
    personas = raw / "personas.xlsx"
    edit_cells(personas, "personas", {"I2": "First edit."})
    _load(loaded, raw, "personas.xlsx")
    first = edited_load(loaded)
    edit_cells(personas, "personas", {"I2": "Second edit.", "I3": "Other row."})
    _load(loaded, raw, "personas.xlsx")
    second = edited_load(loaded)
    state = _state(loaded)
    assert cli.main(["loads", "undo", first]) == 1
    refusal = capsys.readouterr().err
    assert "later loads changed 1 of the rows" in refusal and f"(load {second})" in refusal and "personas id=" in refusal
    assert _state(loaded) == state
    # Newest first works, and then the first one is free to go.
    assert cli.main(["loads", "undo", second]) == 0
    assert cli.main(["loads", "undo", first]) == 0
    assert cli.main(["loads", "undo", first]) == 1
    assert "already undone" in capsys.readouterr().err


def test_history_is_compact_and_the_ledger_keeps_real_times(loaded, raw, capsys):
    personas = raw / "personas.xlsx"
    edit_cells(personas, "personas", {"I2": "Only this changed."})
    _load(loaded, raw, "personas.xlsx")
    load = edited_load(loaded)
    with connect(loaded) as conn:
        changes = history.load_changes(conn, load)
        started, finished = conn.execute("select started_at, finished_at from pipeline_loads where id = %s",
                                          (load,)).fetchone()
    assert len(changes) == 1
    [(_, table, key, operation, before, after)] = changes
    assert (table, operation) == ("personas", "update") and set(key) == {"id"}
    assert after["description"] == "Only this changed." and "name" not in after and "description" in before
    assert finished > started
    assert cli.main(["loads", "show", load]) == 0
    shown = capsys.readouterr().out
    assert "1 row changes recorded" in shown and "'Only this changed.'" in shown
    assert cli.main(["loads", "list", "--target", "personas"]) == 0
    assert load in capsys.readouterr().out


def test_the_undo_is_a_dagster_run(loaded, raw):
    import dagster as dg

    from vital_pipelines.defs.common.resources import PostgresResource
    from vital_pipelines.defs.registry.jobs import undo_load

    before = _state(loaded)
    edit_cells(raw / "personas.xlsx", "personas", {"I2": "Edited for the run."})
    _load(loaded, raw, "personas.xlsx")
    resources = {"postgres": PostgresResource(database_url=loader_url(loaded))}
    result = undo_load.execute_in_process(run_config={"ops": {"undo_registry_load": {"config": {"latest": "personas"}}}},
                                          resources=resources)
    assert result.success
    [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    assert output.event_specific_data.metadata["rows"].value == 1
    assert _state(loaded) == before
    refused = undo_load.execute_in_process(
        run_config={"ops": {"undo_registry_load": {"config": {"load_id": edited_load(loaded)}}}},
        resources=resources, raise_on_error=False)
    assert not refused.success
    failure = [e for e in refused.all_events if e.event_type_value == "STEP_FAILURE"][0]
    assert "already undone" in failure.event_specific_data.error.message


def test_undo_never_overwrites_a_change_made_after_the_load(loaded, raw, capsys):
    personas = raw / "personas.xlsx"
    edit_cells(personas, "personas", {"I2": "Loaded edit."})
    _load(loaded, raw, "personas.xlsx")
    with connect(loaded) as conn:  # an admin's hand edit, which no load recorded
        conn.execute("update personas set description = 'Edited by hand.' where description = 'Loaded edit.'")
        conn.commit()
    state = _state(loaded)
    assert cli.main(["loads", "undo", "--latest", "personas"]) == 1
    refusal = capsys.readouterr().err
    assert "was changed after the load by someone else" in refusal and "Nothing was undone" in refusal
    assert _state(loaded) == state
    with connect(loaded) as conn:
        assert conn.execute("select count(*) from pipeline_loads where policy = 'undo'").fetchone()[0] == 0
