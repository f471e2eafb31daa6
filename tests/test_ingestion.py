"""Loading the registry workbooks into a real database: counts, idempotence, quarantine, strict, soft delete,
the deletion guard, and a round trip of every value."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import dagster as dg
import pytest

from tests.workbooks import delete_rows, edit_cells
from vital_pipelines.db import connect
from vital_pipelines.defs.common.resources import PostgresResource
from vital_pipelines.defs.registry import assets as registry_assets
from vital_pipelines.defs.registry.resources import RegistrySource
from vital_pipelines.defs.schema.assets import database_schema
from vital_pipelines.loading.registry import ContractViolation, load_workbook
from vital_pipelines.loading.upsert import DeletionGuardError
from vital_pipelines.spreadsheets.workbooks import validate_registry_workbook
from vital_pipelines.db.scratch import loader_url

REGISTRY = [database_schema, *registry_assets.REGISTRY_ASSETS, registry_assets.solution_industry_matrix]


def _materialize(url: str, raw: Path, tmp_path: Path, policy: str = "quarantine", selection=None):
    resources = {"postgres": PostgresResource(database_url=loader_url(url)),
                 "schema_owner": PostgresResource(database_url=url, role="owner"),
                 "registry_source": RegistrySource(raw_dir=str(raw), reports_dir=str(tmp_path / "reports"))}
    ops = selection or ("org_structure", "personas", "agents", "jobs_to_be_done", "solution_industry_matrix")
    run_config = {"ops": {op: {"config": {"policy": policy}} for op in ops}}
    return dg.materialize(REGISTRY, resources=resources, run_config=run_config, raise_on_error=False,
                          selection=selection)


def _metadata(result, key):
    return result.asset_materializations_for_node(key)[0].metadata if key != "org_roles" else \
        [m for m in result.asset_materializations_for_node("org_structure") if m.asset_key.to_user_string() == key][0].metadata


def _counts(url):
    with connect(url) as conn:
        return dict(conn.execute("""
            select 'agents', count(*) from agents where deleted_at is null union all
            select 'personas', count(*) from personas where deleted_at is null union all
            select 'jobs_to_be_done', count(*) from jobs_to_be_done where deleted_at is null union all
            select 'org_departments', count(*) from org_departments union all
            select 'org_roles', count(*) from org_roles union all
            select 'org_responsibilities', count(*) from org_responsibilities union all
            select 'solution_industry_matrix', count(*) from solution_industry_matrix union all
            select 'unavailable', count(*) from solution_industry_matrix where not is_available union all
            select 'jtbd_personas', count(*) from jtbd_personas union all
            select 'agent_roles', count(*) from agent_roles union all
            select 'agent_tools', count(*) from agent_tools union all
            select 'agent_skills', count(*) from agent_skills union all
            select 'agent_prompts', count(*) from agent_prompts union all
            select 'prompts', count(*) from prompts where deleted_at is null union all
            select 'capability_jtbd_mapping', count(*) from capability_jtbd_mapping union all
            select 'solution_agents', count(*) from solution_agents""").fetchall())


def test_full_load_then_a_second_run_changes_nothing(fresh_url, raw, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="vital_pipelines.loading.referential")
    first = _materialize(fresh_url, raw, tmp_path)
    assert first.success
    # Every insert's foreign keys are pre-checked set-based (tests/test_referential.py), then by the constraints.
    for table in ("personas", "agents", "jobs_to_be_done", "jtbd_personas", "agent_roles"):
        assert re.search(rf"\s{table}: \d+ new rows, \d+ foreign key\(s\) pre-checked set-based", caplog.text), table
    counts = _counts(fresh_url)
    assert (counts["agents"], counts["personas"], counts["jobs_to_be_done"]) == (254, 335, 338)
    assert (counts["solution_industry_matrix"], counts["unavailable"]) == (30, 5)
    assert counts["org_departments"] == 39 and counts["org_roles"] == 77 and counts["agent_roles"] == 254
    assert all(e.passed for e in first.get_asset_check_evaluations())
    # the agents, their three organisational links, and their tools and skills (the sample gives each agent some)
    assert counts["agent_tools"] > 254 and counts["agent_skills"] > 254
    assert _metadata(first, "agents")["inserted"].value == 254 * 4 + counts["agent_tools"] + counts["agent_skills"]
    # the libraries: a system prompt and two starters per agent, the starters linked to their agent
    assert (counts["prompts"], counts["agent_prompts"]) == (254 * 3, 254 * 2)
    assert counts["capability_jtbd_mapping"] > 0 and counts["solution_agents"] > 0
    with connect(fresh_url) as conn:
        stamp = conn.execute("select max(updated_at) from agents").fetchone()[0]

    second = _materialize(fresh_url, raw, tmp_path)
    assert second.success
    for key in ("agents", "personas", "jobs_to_be_done", "solution_industry_matrix"):
        meta = _metadata(second, key)
        assert (meta["inserted"].value, meta["updated"].value, meta["soft_deleted"].value) == (0, 0, 0), key
    assert _metadata(second, "personas")["unchanged"].value == 335
    with connect(fresh_url) as conn:
        assert conn.execute("select max(updated_at) from agents").fetchone()[0] <= stamp
        loads = conn.execute("select count(*), count(distinct source_sha256) from pipeline_loads").fetchone()
        audits = conn.execute("select count(*) from audit_log where source = 'pipeline'").fetchone()[0]
    # nothing changed: the second run recognised every source and the database as loaded, and wrote nothing
    workbooks = len(registry_assets.REGISTRY_ASSETS) + 1  # and the matrix
    assert loads == (workbooks, workbooks) and audits == workbooks
    assert all(_metadata(second, key)["skipped"].value for key in ("agents", "personas", "jobs_to_be_done"))


def test_round_trip_every_value(fresh_url, raw, tmp_path):
    assert _materialize(fresh_url, raw, tmp_path).success
    sheet = validate_registry_workbook(raw / "personas.xlsx", isolated=False)["personas"].valid
    with connect(fresh_url) as conn:
        rows = {r[0]: r for r in conn.execute("""
            select p.persona_key, p.name, p.title, f.code, d.code, r.code, p.seniority_level, p.years_experience,
                   p.description, p.goals, p.pain_points, p.motivations, p.tools_used, p.decision_authority::text,
                   p.visibility::text
            from personas p join org_functions f on f.id = p.function_id join org_departments d on d.id = p.department_id
            join org_roles r on r.id = p.role_id""")}
    assert len(rows) == sheet.height
    for record in sheet.iter_rows(named=True):
        expected = (record["persona_key"], record["name"], record["title"], record["function_code"],
                    record["department_code"], record["role_code"], record["seniority_level"],
                    record["years_experience"], record["description"], record["goals"] or [],
                    record["pain_points"] or [], record["motivations"] or [], record["tools_used"] or [],
                    record["decision_authority"], record["visibility"])
        assert rows[record["persona_key"]] == expected


def test_quarantine_loads_valid_rows_and_a_fixed_row_leaves_quarantine(fresh_url, raw, tmp_path):
    assert _materialize(fresh_url, raw, tmp_path).success
    edit_cells(raw / "personas.xlsx", "personas", {"O17": "secret"})
    result = _materialize(fresh_url, raw, tmp_path)
    # the rejected row makes the check red, not the run: the JTBDs still load against the personas that did
    assert result.success and result.asset_materializations_for_node("jobs_to_be_done")
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "personas_contract")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["failures"].value == 1
    assert "| personas | O17 | secret | allowed_values | visibility must be one of" in check.metadata["failing_cells"].value
    assert "`" not in check.metadata["failing_cells"].value
    assert Path(check.metadata["annotated_workbook"].value).exists()
    with connect(fresh_url) as conn:
        live = conn.execute("select count(*) from personas where deleted_at is null").fetchone()[0]
        open_rows = conn.execute("select row_key, excel_row, failures->0->>'cell' from quarantined_rows "
                                 "where resolved_at is null").fetchall()
    assert live == 335, "the rejected persona was loaded before and must not be soft-deleted"
    assert len(open_rows) == 1 and open_rows[0][1:] == (17, "O17")

    edit_cells(raw / "personas.xlsx", "personas", {"O17": "tenant"})
    assert _materialize(fresh_url, raw, tmp_path).success
    with connect(fresh_url) as conn:
        assert conn.execute("select count(*) from quarantined_rows where resolved_at is null").fetchone()[0] == 0
        assert conn.execute("select count(*) from quarantined_rows where resolved_at is not null").fetchone()[0] == 1


def test_rows_naming_a_rejected_parent_load_with_a_warning_and_link_once_it_is_fixed(fresh_url, raw, tmp_path):
    """personas.role_id may be empty, so a persona whose role was rejected loads (severity from the schema), keeps
    the code in metadata.unresolved, and is linked by the load after the role is fixed."""
    edit_cells(raw / "org_structure.xlsx", "roles", {"A2": "bad code!"})
    org = validate_registry_workbook(raw / "org_structure.xlsx", isolated=False)
    personas = validate_registry_workbook(raw / "personas.xlsx", isolated=False)["personas"]
    assert org["roles"].rejected.height == 1
    dependants = [f for f in personas.warnings if f.column == "role_code"]
    assert dependants and all(f.rule == "reference_warning" for f in dependants)
    assert not personas.failures and personas.valid.height == 335
    assert _materialize(fresh_url, raw, tmp_path).success
    with connect(fresh_url) as conn:
        waiting = conn.execute("select count(*) from personas where role_id is null "
                               "and metadata -> 'unresolved' ->> 'role_code' is not null").fetchone()[0]
    assert waiting == len(dependants)

    edit_cells(raw / "org_structure.xlsx", "roles", {"A2": "BRAND-MGR"})  # the code it had
    assert _materialize(fresh_url, raw, tmp_path).success
    with connect(fresh_url) as conn:
        assert conn.execute("select count(*) from personas where role_id is null").fetchone()[0] == 0
        assert conn.execute("select count(*) from personas where metadata ? 'unresolved'").fetchone()[0] == 0


def test_strict_policy_writes_nothing(fresh_url, raw):
    edit_cells(raw / "agents.xlsx", "agents", {"A5": "Not A Slug"})
    sheets = validate_registry_workbook(raw / "agents.xlsx", isolated=False)
    with connect(fresh_url) as conn:
        with pytest.raises(ContractViolation, match=r"agents.xlsx › agents › A5"):
            load_workbook(conn, "agents.xlsx", sheets, source_path=raw / "agents.xlsx", policy="strict")
        assert conn.execute("select count(*) from agents").fetchone()[0] == 0
        assert conn.execute("select count(*) from pipeline_loads").fetchone()[0] == 0


def test_removed_row_is_soft_deleted_and_comes_back(fresh_url, raw, tmp_path):
    assert _materialize(fresh_url, raw, tmp_path).success
    slug = validate_registry_workbook(raw / "agents.xlsx", isolated=False)["agents"].valid.row(9, named=True)["slug"]
    backup = tmp_path / "agents.backup.xlsx"
    shutil.copy(raw / "agents.xlsx", backup)
    delete_rows(raw / "agents.xlsx", "agents", 11)
    result = _materialize(fresh_url, raw, tmp_path, selection=["agents"])
    assert _metadata(result, "agents")["soft_deleted"].value == 1  # links stay, so a restored row is whole again
    with connect(fresh_url) as conn:
        assert conn.execute("select deleted_at is not null from agents where slug = %s", (slug,)).fetchone()[0]
        assert conn.execute("select count(*) from agents where deleted_at is null").fetchone()[0] == 253
    shutil.copy(backup, raw / "agents.xlsx")
    _materialize(fresh_url, raw, tmp_path, selection=["agents"])
    with connect(fresh_url) as conn:
        assert conn.execute("select deleted_at is null from agents where slug = %s", (slug,)).fetchone()[0]


def test_deletion_guard_refuses_a_truncated_sheet(fresh_url, raw, tmp_path):
    assert _materialize(fresh_url, raw, tmp_path).success
    delete_rows(raw / "personas.xlsx", "personas", 50, 300)
    result = _materialize(fresh_url, raw, tmp_path, selection=["personas"])
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert "would soft-delete 287 of 335 live personas rows" in failure.description
    with connect(fresh_url) as conn:
        assert conn.execute("select count(*) from personas where deleted_at is null").fetchone()[0] == 335

    sheets = validate_registry_workbook(raw / "personas.xlsx", isolated=False)
    with connect(fresh_url) as conn:
        with pytest.raises(DeletionGuardError):
            load_workbook(conn, "personas.xlsx", sheets, source_path=raw / "personas.xlsx", max_delete_share=0.5)
        result = load_workbook(conn, "personas.xlsx", sheets, source_path=raw / "personas.xlsx", max_delete_share=1.0)
    assert result.tables["personas"].deleted == 287


def test_unknown_tenant_is_rejected_and_known_tenant_assigned(fresh_url, raw, tmp_path):
    edit_cells(raw / "agents.xlsx", "agents", {"tenant@2": "acme-pharma", "tenant@3": "no-such-tenant"})
    result = _materialize(fresh_url, raw, tmp_path)
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "agents_contract")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    with connect(fresh_url) as conn:
        owners = dict(conn.execute("select t.slug, count(*) from agents a join tenants t on t.id = a.tenant_id "
                                   "group by 1").fetchall())
        reason = conn.execute("select failures->0->>'message' from quarantined_rows where target = 'agents'").fetchone()[0]
    assert owners == {"vital-platform": 252, "acme-pharma": 1}
    assert reason == "`tenant` must be the slug of an existing tenant; `no-such-tenant` is not one"


def test_refused_workbook_fails_with_the_reason(fresh_url, raw, tmp_path):
    (raw / "jtbds.xlsx").write_text("not a workbook")
    result = _materialize(fresh_url, raw, tmp_path)
    assert not result.success
    failures = [e.step_failure_data.user_failure_data.description for e in result.get_step_failure_events()]
    assert any("jtbds.xlsx: not an Excel workbook" in d for d in failures)


def test_a_refused_sheet_fails_its_check_with_the_reason_and_the_header_cell(fresh_url, raw, tmp_path, monkeypatch):
    import openpyxl

    monkeypatch.setenv("VITAL_PORTAL_URL", "http://portal.example:8090")
    assert _materialize(fresh_url, raw, tmp_path).success
    edit_cells(raw / "personas.xlsx", "personas", {"G1": "seniorty_level"})
    result = _materialize(fresh_url, raw, tmp_path)
    assert not result.success
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "personas_contract")
    assert not check.passed and "personas.xlsx was refused" in check.description and "did you mean" in check.description
    assert "| personas | G1 | seniorty_level | unknown_header |" in check.metadata["failing_cells"].value
    annotated = Path(check.metadata["annotated_workbook"].value)
    assert openpyxl.load_workbook(annotated)["personas"]["G1"].comment is not None
    assert check.metadata["annotated_workbook_download"].value == \
        "http://portal.example:8090/reports/personas.annotated.xlsx"
    assert check.metadata["full_report"].value == "http://portal.example:8090/reports/personas.failures.csv"
    assert "G1,1,,seniorty_level,unknown_header" in (annotated.parent / "personas.failures.csv").read_text()
    # The JTBDs, which did not change, still load against the personas that are stored.
    with connect(fresh_url) as conn:
        assert conn.execute("select count(*) from personas where deleted_at is null").fetchone()[0] == 335
