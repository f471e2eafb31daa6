"""Real exports through mapping files: fixtures shaped like the platform's exports (written here, not copied),
validated and loaded into a real database, every row accounted for, every message naming its cell."""

from __future__ import annotations

import json
import random
from pathlib import Path

import openpyxl
import pytest
import yaml

from vital_pipelines import config
from vital_pipelines.db import connect
from vital_pipelines.db.scratch import loader_url
from vital_pipelines.loading.registry import database_references, load_workbook
from vital_pipelines.spreadsheets.mapping import MappingError, apply_mapping, parse_mapping, read_source
from vital_pipelines.spreadsheets.suggest import suggest_mapping
from vital_pipelines.spreadsheets.workbooks import (
    mapped_source, mapped_sources, validate_mapped_source, validate_registry_workbook,
)

NOTION_AGENTS = (
    "Name,Display Name,Description,Status,Tier,Is Public,Function,Capabilities,System Prompt,Avatar\n"
    'fda_regulatory_strategist,FDA Regulatory Strategist,"Knows 510(k), PMA and De Novo",Active,Tier 1,true,'
    'IT/Digital,"[""Pathways, 510(k)"", ""Strategy""]","You are an FDA strategist.\nBe precise.",⚖️\n'
    "dosing_calculator,Dosing Calculator,Calculates doses,Inactive,Tier 3,false,Marketing,,Compute doses.,🔬\n"
    "payer_whisperer,Payer Whisperer,Talks to payers,Retired,Tier 2,true,Payer Relations,,,💰\n"
)
NOTION_AGENTS_MAPPING = """
entity: agents
columns:
  slug: {from: Name, normalise: slug}
  name: Display Name
  description: Description
  status: {from: Status, values: {Active: active, Inactive: deprecated}}
  tier: {from: Tier, pattern: 'Tier\\s*([0-9]+)'}
  visibility: {from: Is Public, values: {"true": public, "false": tenant}}
  function_code: Function
  capabilities: {from: Capabilities, extract: json_list}
  system_prompt: System Prompt
  domain_expertise: {value: regulatory}
metadata: [Avatar]
"""


def _write(folder: Path, name: str, text: str, *, bom: bool = False, junk: str | None = None) -> Path:
    path = folder / name
    path.write_text((junk + "\n" if junk else "") + text, encoding="utf-8-sig" if bom else "utf-8")
    return path


def _load_source(url: str, mapping_file: Path):
    source = mapped_source(mapping_file)
    with connect(loader_url(url)) as conn:
        sheets = validate_mapped_source(source, raw_dir=mapping_file.parent, references=database_references(conn),
                                        isolated=False)
        return load_workbook(conn, source.workbook, sheets, source_path=source.path, source_name=source.path.name)


def _one(url: str, query: str, *params):
    with connect(url) as conn:
        return conn.execute(query, params).fetchone()


@pytest.fixture
def exports(tmp_path) -> Path:
    folder = tmp_path / "exports"
    folder.mkdir()
    return folder


def test_a_notion_export_with_bom_and_junk_line_loads_through_its_mapping(fresh_url, exports):
    _write(exports, "agents_notion.csv", NOTION_AGENTS, bom=True, junk='DETAIL:  "supautils" is now a reserved prefix.')
    mapping = _write(exports, "agents_notion.mapping.yaml", NOTION_AGENTS_MAPPING)
    result = _load_source(fresh_url, mapping)

    assert result.accounts["agents"] == {"rows_in": 3, "loaded": 1, "loaded_with_warnings": 1, "quarantined": 1}
    [failure] = result.failures
    # the record's row as a spreadsheet shows it (junk line 1, header 2, a two-line prompt in record 3): row 5
    assert (failure.cell, failure.column, failure.value, failure.rule) == ("D5", "status", "Retired", "allowed_values")
    assert failure.line == 6
    assert failure.message.startswith("`status` must be one of development, testing, active")
    # the quarantined row's own warnings are said too (one round trip fixes all of it); the loaded row's:
    [warning] = [w for w in result.warnings if w.column == "function_code" and w.row != failure.row]
    assert warning.cell == "G4" and "`Marketing` is not there" in warning.message  # message keeps the spelling
    row = _one(fresh_url, "select a.status::text, a.tier, a.visibility::text, a.capabilities, a.system_prompt, "
                          "a.metadata ->> 'Avatar', f.code from agents a join agent_functions af on af.agent_id = a.id "
                          "join org_functions f on f.id = af.function_id where a.slug = 'fda-regulatory-strategist'")
    # IT/Digital is the *name* of function IT; the JSON list keeps the item that holds a comma whole.
    assert row == ("active", 1, "public", ["Pathways, 510(k)", "Strategy"], "You are an FDA strategist.\nBe precise.",
                   "⚖️", "IT")
    assert _one(fresh_url, "select status::text, tier, visibility::text from agents where slug = 'dosing-calculator'") \
        == ("deprecated", 3, "tenant")


def test_the_same_export_twice_changes_nothing(fresh_url, exports):
    _write(exports, "agents_notion.csv", NOTION_AGENTS)
    mapping = _write(exports, "agents_notion.mapping.yaml", NOTION_AGENTS_MAPPING)
    _load_source(fresh_url, mapping)
    again = _load_source(fresh_url, mapping)
    assert (again.tables["agents"].inserted, again.tables["agents"].updated, again.tables["agents"].unchanged) == (0, 0, 2)


def test_notion_relation_cells_and_names_resolve_to_keys(fresh_url, exports):
    personas = ("Key,Name,Title,Role,Department,Function\n"
                "ada-lee,Ada Lee,MSL,Medical Science Liaison (https://www.notion.so/abc123),,\n"
                "bo-chen,Bo Chen,Payer lead,nope (https://www.notion.so/x),,\n")
    roles_yaml = """
entity: roles
columns:
  code: {from: Role, normalise: code}
  name: Role
  department_code: Department
"""
    _write(exports, "roles.csv", "Role,Department\nMedical Science Liaison,Medical Affairs Field\n")
    _write(exports, "departments.csv", "Name,Function\nMedical Affairs Field,Medical Affairs\n")
    _write(exports, "departments.mapping.yaml", "entity: departments\ncolumns:\n  code: {from: Name, normalise: code}\n"
                                                "  name: Name\n  function_code: Function\n")
    _write(exports, "roles.mapping.yaml", roles_yaml)
    _write(exports, "people.csv", personas)
    _write(exports, "people.mapping.yaml", """
entity: personas
columns:
  persona_key: Key
  name: Name
  title: Title
  role_code: {from: Role, extract: before_parenthesis}
  department_code: Department
  function_code: Function
""")
    jtbds = ("Code,Title,Statement,Area,Category,Personas\n"
             'JTBD-MA-900,Brief KOLs,"When data lands, I brief KOLs",Medical Affairs,strategic,'
             '"Ada Lee (https://www.notion.so/p1), Bo Chen (https://www.notion.so/p2)"\n')
    _write(exports, "jobs.csv", jtbds)
    _write(exports, "jobs.mapping.yaml", """
entity: jtbds
columns:
  code: Code
  title: Title
  job_statement: Statement
  functional_area: Area
  job_category: Category
  personas: {from: Personas, extract: relation_names}
""")
    results = [_load_source(fresh_url, s.mapping_file) for s in mapped_sources(exports)]
    departments, roles, people, jobs = results
    # personas.role_id may be empty: Bo Chen's unknown role is a warning, and he loads with the text kept
    assert [r.accounts[next(iter(r.accounts))]["quarantined"] for r in results] == [0, 0, 0, 0]
    # the role resolves by name; department and function come from the role, as the contract says
    assert _one(fresh_url, "select r.code, d.code, f.code from personas p join org_roles r on r.id = p.role_id "
                          "join org_departments d on d.id = p.department_id join org_functions f on f.id = p.function_id "
                          "where p.persona_key = 'ada-lee'") == ("MEDICAL-SCIENCE-LIAISON", "MEDICAL-AFFAIRS-FIELD", "MA")
    [warning] = [w for w in people.warnings if w.column == "role_code"]
    assert warning.value == "nope" and warning.cell == "D3" and warning.rule == "reference_warning"
    assert _one(fresh_url, "select role_id, metadata -> 'unresolved' ->> 'role_code' from personas "
                           "where persona_key = 'bo-chen'") == (None, "nope")
    # both personas loaded: the job links both, by name
    assert _one(fresh_url, "select array_agg(p.persona_key order by p.persona_key) from jtbd_personas jp join personas p "
                           "on p.id = jp.persona_id") == (["ada-lee", "bo-chen"],)
    assert not jobs.warnings


def test_an_optional_enum_drift_warns_loads_and_keeps_the_stored_value(fresh_url, exports):
    header = "code,name,job_statement,functional_area,job_category,complexity,frequency\n"
    source = _write(exports, "jobs.csv", header + "JTBD-MA-901,Plan,When x I want y,Medical Affairs,strategic,high,annually\n")
    mapping = _write(exports, "jobs.mapping.yaml", "entity: jtbds\ncolumns:\n  code: code\n  title: name\n"
                     "  job_statement: job_statement\n  functional_area: functional_area\n  job_category: job_category\n"
                     "  complexity: {from: complexity, values: {high: complex}}\n"
                     "  frequency: {from: frequency, values: {annually: yearly}}\n")
    _load_source(fresh_url, mapping)
    assert _one(fresh_url, "select complexity::text, frequency::text from jobs_to_be_done where code = 'JTBD-MA-901'") \
        == ("complex", "yearly")
    source.write_text(header + "JTBD-MA-901,Plan,When x I want y,Medical Affairs,strategic,extreme,weekly\n")
    result = _load_source(fresh_url, mapping)
    assert result.failures == [] and result.accounts["jtbds"]["loaded_with_warnings"] == 1
    [warning] = result.warnings
    assert (warning.cell, warning.rule, warning.value) == ("F2", "allowed_values_warning", "extreme")
    assert "simple, moderate, complex, expert" in warning.message
    assert _one(fresh_url, "select complexity::text, frequency::text from jobs_to_be_done where code = 'JTBD-MA-901'") \
        == ("complex", "weekly")


def test_a_seeded_name_under_a_new_code_is_reported_at_its_cell_and_the_rest_loads(fresh_url, exports):
    _write(exports, "functions.csv", "name,slug\nMedical Affairs,medical-affairs\nProcurement,procurement\n")
    mapping = _write(exports, "functions.mapping.yaml",
                     "entity: functions\ncolumns:\n  code: {from: slug, normalise: code}\n  name: name\n")
    result = _load_source(fresh_url, mapping)
    assert result.accounts["functions"] == {"rows_in": 2, "loaded": 1, "loaded_with_warnings": 0, "quarantined": 1}
    [failure] = result.failures
    assert (failure.cell, failure.column, failure.value) == ("A2", "name", "Medical Affairs")
    assert "MA" in failure.message and "MEDICAL-AFFAIRS" in failure.message
    assert _one(fresh_url, "select count(*) from org_functions where code = 'PROCUREMENT'") == (1,)
    assert _one(fresh_url, "select count(*) from quarantined_rows where target = 'functions'") == (1,)


def test_several_source_columns_fill_one_cell_first_non_empty(exports):
    _write(exports, "jobs.csv", "code,name,job_statement,description,functional_area,job_category\n"
                                "JTBD-MA-1,A,,When x I want y,Medical Affairs,strategic\n"
                                "JTBD-MA-2,B,When p I want q,other,Medical Affairs,strategic\n")
    mapping = _write(exports, "jobs.mapping.yaml", "entity: jtbds\ncolumns:\n  code: code\n  title: name\n"
                     "  job_statement: {from: [job_statement, description]}\n  description: description\n"
                     "  functional_area: functional_area\n  job_category: job_category\n")
    [result] = validate_mapped_source(mapped_source(mapping), isolated=False).values()
    assert result.valid.select("code", "job_statement").rows() == [("JTBD-MA-1", "When x I want y"),
                                                                   ("JTBD-MA-2", "When p I want q")]


def test_literal_backslash_n_becomes_a_newline_where_the_mapping_says(exports):
    _write(exports, "agents.csv", "slug,name,description,status,domain_expertise,system_prompt\n"
                                  "a-one,A,Line one\\nline two,active,medical,Be brief.\\nCite sources.\n")
    mapping = _write(exports, "agents.mapping.yaml", "entity: agents\ncolumns:\n  slug: slug\n  name: name\n"
                     "  description: description\n  status: status\n  domain_expertise: domain_expertise\n"
                     "  system_prompt: {from: system_prompt, newlines: true}\n")
    [result] = validate_mapped_source(mapped_source(mapping), isolated=False).values()
    assert result.valid.row(0, named=True)["system_prompt"] == "Be brief.\nCite sources."
    assert result.valid.row(0, named=True)["description"] == "Line one\\nline two"


@pytest.mark.parametrize("text, expected", [
    ("entity: agent\n", "entity: `agent` is not a registry entity; did you mean `agents`?"),
    ("entity: agents\ncolumns:\n  descripton: Description\n",
     "columns › descripton: `descripton` is not a column of `agents`; did you mean `description`?"),
    ("entity: agents\ncolumns:\n  tier: {from: Tier, value: 2}\n",
     "columns › tier: give either `from` (a source column) or `value` (a constant), not both or neither"),
    ("entity: agents\ncolumns:\n  tier: {from: Tier, pattern: 'Tier'}\n",
     "columns › tier › pattern: `pattern` must have exactly one (group): the part of the cell to keep"),
    ("entity: agents\ncolums: {}\n", "colums: is not a mapping setting"),
    ("entity: [agents\n", "line 2, column 1: not valid YAML"),
])
def test_every_mistake_in_a_mapping_is_named_with_its_place(text, expected):
    with pytest.raises(MappingError) as refused:
        parse_mapping(text, "x.mapping.yaml")
    assert any(p.startswith(expected) for p in refused.value.problems), refused.value.problems


def test_a_mapping_naming_a_column_the_export_lacks_is_refused_with_the_closest_header(exports):
    _write(exports, "agents.csv", NOTION_AGENTS)
    mapping = _write(exports, "agents.mapping.yaml", NOTION_AGENTS_MAPPING.replace("Display Name", "Display Nmae"))
    source = mapped_source(mapping)
    with pytest.raises(MappingError) as refused:
        apply_mapping(read_source(source.path, None, "agents", isolated=False), source.mapping, mapping.name)
    assert refused.value.problems[0].startswith(
        "columns › name › from: the source has no column `Display Nmae`; did you mean `Display Name`?")


def _cli(capsys, *args) -> tuple[int, str]:
    from vital_pipelines.cli import main

    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_validate_exits_0_with_warnings_1_with_rejections_2_when_the_mapping_is_refused(exports, capsys):
    good = NOTION_AGENTS.replace("Retired", "Active").replace("Marketing", "")
    _write(exports, "agents_notion.csv", good.replace("Payer Relations", ""))
    mapping = _write(exports, "agents_notion.mapping.yaml", NOTION_AGENTS_MAPPING)
    validate = ("validate", exports / "agents_notion.csv", "--raw-dir", config.RAW_DIR)
    code, out = _cli(capsys, *validate)
    assert code == 0 and "3 row(s), every row loads" in out, out
    _write(exports, "agents_notion.csv", NOTION_AGENTS)
    code, out = _cli(capsys, *validate)
    assert code == 1 and "agents_notion.csv › agents › D4 (line 5 of the file): `status`" in out and "`Retired`" in out, out
    assert "warning: agents_notion.csv › agents › G3 (line 4 of the file): `function_code`" in out
    mapping.write_text(NOTION_AGENTS_MAPPING.replace("slug:", "slugg:"))
    code, out = _cli(capsys, *validate)
    assert code == 2 and "did you mean `slug`?" in out and "Traceback" not in out, out


def _renamed_shuffled_export(target: Path) -> tuple[Path, dict[str, str]]:
    """The committed personas workbook as a stranger's CSV: headers renamed, columns shuffled, enum values in
    Title Case. Returns the file and {contract column: new header}."""
    rows = list(openpyxl.load_workbook(config.RAW_DIR / "personas.xlsx", read_only=True)["personas"]
                .iter_rows(values_only=True))
    header = [str(h) for h in rows[0]]
    renamed = {"persona_key": "Persona Key", "name": "Full Name", "title": "Job Title", "function_code": "Function",
               "department_code": "Department", "role_code": "Role", "seniority_level": "Seniority",
               "years_experience": "Years Experience", "description": "Persona Description", "goals": "Goals",
               "pain_points": "Pain Points", "motivations": "Motivations", "tools_used": "Tools",
               "decision_authority": "Decision Authority", "visibility": "Visibility", "tenant": "Tenant"}
    order = [i for i, h in enumerate(header) if h != "metadata"]  # the workbook's own (empty) column, not an export's
    random.Random(7).shuffle(order)
    import csv
    with target.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([renamed.get(header[i], header[i]) for i in order])
        for row in rows[1:]:
            cells = ["" if v is None else str(v) for v in row]
            writer.writerow([cells[i].title() if header[i] == "seniority_level" else cells[i] for i in order])
    return target, {c: renamed[c] for c in header if c in renamed}


def test_map_suggest_recovers_the_mapping_of_a_renamed_shuffled_export(tmp_path):
    export, renamed = _renamed_shuffled_export(tmp_path / "people_export.csv")
    text = suggest_mapping(export, raw_dir=config.RAW_DIR)
    mapping = yaml.safe_load(text)
    assert mapping["entity"] == "personas"
    found = {name: rule if isinstance(rule, str) else rule["from"] for name, rule in mapping["columns"].items()}
    assert found == renamed, text
    assert "# guess" in text  # what the header alone does not settle is marked for the steward
    (tmp_path / "people_export.mapping.yaml").write_text(text)
    [mapped] = validate_mapped_source(mapped_source(tmp_path / "people_export.mapping.yaml"), raw_dir=config.RAW_DIR,
                                      isolated=False).values()
    original = validate_registry_workbook(config.RAW_DIR / "personas.xlsx", isolated=False)["personas"]
    columns = [c for c in original.valid.columns if not c.startswith("_")]
    assert mapped.valid.select(columns).sort("persona_key").equals(original.valid.select(columns).sort("persona_key"))
    assert mapped.rejected.height == original.rejected.height == 0


def test_map_suggest_on_the_command_line_writes_a_file_and_never_overwrites(tmp_path, capsys):
    export, _ = _renamed_shuffled_export(tmp_path / "people_export.csv")
    suggest = ("map", "--suggest", export, "--raw-dir", config.RAW_DIR)
    code, out = _cli(capsys, *suggest)
    assert code == 0, out
    written = tmp_path / "people_export.mapping.yaml"
    assert yaml.safe_load(written.read_text())["entity"] == "personas"
    before = written.read_text()
    written.write_text(before + "# the steward's notes\n")
    code, out = _cli(capsys, *suggest)
    assert code == 2 and "--force" in out and written.read_text().endswith("# the steward's notes\n")


ORG_CONTENT = {
    "org_functions": "select json_agg(json_build_array(code, name, description, color, display_order) order by code) "
                     "from org_functions",
    "org_departments": "select json_agg(json_build_array(d.code, d.name, f.code, d.description) order by d.code) "
                       "from org_departments d join org_functions f on f.id = d.function_id",
    "org_roles": "select json_agg(json_build_array(r.code, r.name, d.code, r.seniority_level, p.code) order by r.code) "
                 "from org_roles r join org_departments d on d.id = r.department_id "
                 "left join org_roles p on p.id = r.reports_to_role_id",
    "org_responsibilities": "select json_agg(json_build_array(code, name, category, description) order by code) "
                            "from org_responsibilities",
    "role_responsibilities": "select json_agg(json_build_array(r.code, s.code) order by r.code, s.code) "
                             "from role_responsibilities x join org_roles r on r.id = x.role_id "
                             "join org_responsibilities s on s.id = x.responsibility_id",
}


def test_each_org_sheet_as_csv_with_an_entity_only_mapping_loads_like_the_workbook(make_schema_database, tmp_path):
    import csv

    from vital_pipelines.spreadsheets.contracts import ORG_SHEETS

    workbook = openpyxl.load_workbook(config.RAW_DIR / "org_structure.xlsx", read_only=True)
    for contract in ORG_SHEETS:
        with (tmp_path / f"{contract.sheet}_export.csv").open("w", encoding="utf-8", newline="") as out:
            csv.writer(out).writerows([["" if v is None else str(v) for v in r]
                                       for r in workbook[contract.sheet].iter_rows(values_only=True)])
        (tmp_path / f"{contract.sheet}_export.mapping.yaml").write_text(f"entity: {contract.sheet}\n")
    stored = []
    for load in ("workbook", "csv"):
        url = make_schema_database()
        if load == "workbook":
            sheets = validate_registry_workbook(config.RAW_DIR / "org_structure.xlsx", isolated=False)
            with connect(loader_url(url)) as conn:
                load_workbook(conn, "org_structure.xlsx", sheets, source_path=config.RAW_DIR / "org_structure.xlsx")
        else:
            sources = mapped_sources(tmp_path)
            assert [s.mapping.entity for s in sources] == [c.sheet for c in ORG_SHEETS]
            for source in sources:
                result = _load_source(url, source.mapping_file)
                assert result.failures == [], [f.message for f in result.failures[:3]]
        with connect(url) as conn:
            stored.append({table: conn.execute(query).fetchone()[0] for table, query in ORG_CONTENT.items()})
    assert stored[0] == stored[1]
    assert all(stored[0][table] for table in ORG_CONTENT)


def test_every_example_mapping_in_the_docs_is_valid():
    examples = sorted((config.PROJECT_ROOT / "docs" / "examples").glob("*.mapping.yaml"))
    assert len(examples) >= 10
    for path in examples:
        mapping = parse_mapping(path.read_text(), path.name)
        assert mapping.source and path.name.startswith(Path(mapping.source).stem)


def test_the_documented_formats_are_generated_from_the_contracts():
    from vital_pipelines.spreadsheets.templates import format_markdown

    documented = (config.PROJECT_ROOT / "docs" / "workbook-formats.md").read_text(encoding="utf-8")
    assert documented == format_markdown(), "run: python -c 'from vital_pipelines.spreadsheets.templates import " \
                                            "format_markdown; print(format_markdown(), end=\"\")' > docs/workbook-formats.md"


def test_the_agents_asset_loads_the_workbook_then_each_mapped_export_beside_it(fresh_url, raw, tmp_path):
    import dagster as dg

    from tests.test_ingestion import REGISTRY
    from vital_pipelines.defs.common.resources import PostgresResource
    from vital_pipelines.defs.registry.resources import RegistrySource

    def materialize():
        resources = {"postgres": PostgresResource(database_url=loader_url(fresh_url)),
                     "schema_owner": PostgresResource(database_url=fresh_url, role="owner"),
                     "registry_source": RegistrySource(raw_dir=str(raw), reports_dir=str(tmp_path / "reports"))}
        return dg.materialize(REGISTRY, resources=resources, raise_on_error=False,
                              selection=["database_schema", "org_functions", "org_departments", "org_roles",
                                         "org_responsibilities", "agents"])

    _write(raw, "agents_notion.csv", NOTION_AGENTS)
    _write(raw, "agents_notion.mapping.yaml", NOTION_AGENTS_MAPPING)
    result = materialize()
    assert result.success
    [materialization] = result.asset_materializations_for_node("agents")
    sheets = materialization.metadata["sheets"].value
    assert sheets["agents_notion.csv › agents"] == {"rows_in": 3, "loaded": 1, "loaded_with_warnings": 1,
                                                   "quarantined": 1}
    assert sheets["agents"]["rows_in"] == 254
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "agents_contract")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert _one(fresh_url, "select count(*) from agents where deleted_at is null") == (256,)
    assert _one(fresh_url, "select loaded_from ->> 'file' from agents where slug = 'dosing-calculator'") == \
        ("agents_notion.csv",)
    again = materialize()
    assert again.success and _one(fresh_url, "select count(*) from agents where deleted_at is null") == (256,)


@pytest.mark.parametrize("cell, items", [
    ('["Pathways, 510(k)", "Strategy"]', ["Pathways, 510(k)", "Strategy"]),
    ('{"Market access (EU, UK)",HEOR}', ["Market access (EU, UK)", "HEOR"]),
    ("{a,b}", ["a", "b"]),
    ("Veeva CRM; PubMed", ["Veeva CRM", "PubMed"]),
])
def test_list_cells_keep_quoted_and_json_items_whole(cell, items):
    from vital_pipelines.spreadsheets import normalise

    assert normalise.parse_list(cell) == items


def test_the_raw_sensor_reloads_a_registry_when_its_mapped_export_or_mapping_changes(raw):
    import dagster as dg

    from tests.test_operations import _raw_sensor, _selections

    tick = _raw_sensor(dg.DagsterInstance.ephemeral(), raw)
    cursor = tick(None).cursor
    export = _write(raw, "agents_notion.csv", NOTION_AGENTS)
    mapping = _write(raw, "agents_notion.mapping.yaml", NOTION_AGENTS_MAPPING)
    added = tick(cursor)
    # the agents, and what reads them: their profiles, the prompts (starters name agents), solutions and the matrix
    downstream = ["agent_profile_embeddings", "agents", "prompts", "solution_industry_matrix", "solutions"]
    assert _selections(added) == [downstream]
    assert not tick(added.cursor).run_requests
    export.write_text(NOTION_AGENTS.replace("Knows 510(k)", "Knows 513(g)"), encoding="utf-8")
    edited = tick(added.cursor)
    assert _selections(edited) == [downstream]
    mapping.write_text(NOTION_AGENTS_MAPPING + "ignore: []\n", encoding="utf-8")
    assert _selections(tick(edited.cursor)) == [downstream]


def test_a_supabase_json_export_keeps_nested_values_as_json_in_metadata(exports):
    rows = [{"id": "6f1c", "slug": "dosing_calculator", "display_name": "Dosing Calculator", "description": "Doses",
             "status": "Inactive", "tier": 3, "capabilities": ["Dose, renal", "Weight-based"],
             "settings": {"owner": "ops", "n": 2}, "aliases": "{calc,\"dose, tool\"}"}]
    (exports / "agents_supabase.json").write_text(json.dumps(rows))
    mapping = _write(exports, "agents_supabase.mapping.yaml", """
entity: agents
columns:
  slug: {from: slug, normalise: slug}
  name: display_name
  description: description
  status: {from: status, values: {Inactive: deprecated}}
  tier: tier
  capabilities: capabilities
  domain_expertise: {value: general}
metadata: rest
""")
    [result] = validate_mapped_source(mapped_source(mapping), isolated=False).values()
    row = result.valid.row(0, named=True)
    assert (row["slug"], row["status"], row["tier"], row["capabilities"]) == \
        ("dosing-calculator", "deprecated", 3, ["Dose, renal", "Weight-based"])
    assert json.loads(row["metadata"]) == {"id": "6f1c", "settings": {"owner": "ops", "n": 2},
                                           "aliases": "{calc,\"dose, tool\"}"}


def test_map_suggest_reads_notion_relation_cells_by_their_names(exports):
    _write(exports, "people_notion.csv", "🏷️ Name,Title,Role (Notion),Department,Function,Key\n"
                                         "Ada Lee,MSL,Medical Science Liaison (https://www.notion.so/abc),MA-MSL,MA,"
                                         "ada-lee\n", bom=True)
    mapping = yaml.safe_load(suggest_mapping(exports / "people_notion.csv", raw_dir=config.RAW_DIR))
    assert mapping["columns"]["name"] == "🏷️ Name"
    assert mapping["columns"]["role_code"] == {"from": "Role (Notion)", "extract": "before_parenthesis"}


def test_a_key_that_another_source_loads_is_reported_at_its_cell(fresh_url, exports):
    _write(exports, "tasks_a.csv", "code,name\nPROC-1,Procurement\n")
    _write(exports, "tasks_b.csv", "code,name\nPROC-1,Procurement and Sourcing\nFAC-1,Facilities\n")
    for name in ("tasks_a", "tasks_b"):
        _write(exports, f"{name}.mapping.yaml", "entity: responsibilities\n")
    first = _load_source(fresh_url, exports / "tasks_a.mapping.yaml")
    assert first.warnings == []
    second = _load_source(fresh_url, exports / "tasks_b.mapping.yaml")
    [warning] = second.warnings
    assert (warning.cell, warning.rule, warning.value) == ("A2", "shared_key_warning", "PROC-1")
    assert "also loaded from tasks_a.csv (row 2)" in warning.message
    assert second.accounts["responsibilities"] == {"rows_in": 2, "loaded": 1, "loaded_with_warnings": 1, "quarantined": 0}


def test_normalising_keys_never_merges_two_source_keys(exports):
    """`heor_specialist_automator` and `heor-specialist-automator` are two personas of the platform: a mapping that
    normalises keys to hyphens keeps both as written (both valid keys) and says so on both rows."""
    _write(exports, "people.csv", "Key,Name,Title\nheor_specialist_automator,A,HEOR\n"
                                  "heor-specialist-automator,B,HEOR\nMSL_Lead,C,MSL\n")
    _write(exports, "people.mapping.yaml", "entity: personas\ncolumns:\n  persona_key: {from: Key, normalise: slug}\n"
                                           "  name: Name\n  title: Title\n")
    [sheet] = validate_mapped_source(mapped_source(exports / "people.mapping.yaml"), raw_dir=exports,
                                     isolated=False).values()
    assert sorted(sheet.valid["persona_key"]) == ["heor-specialist-automator", "heor_specialist_automator", "msl-lead"]
    notes = [w for w in sheet.warnings if w.rule == "normalise_collision_warning"]
    assert sorted(n.cell for n in notes) == ["A2", "A3"]
    assert "would all become `heor-specialist-automator`" in notes[0].message


@pytest.mark.parametrize("source", sorted(p.name for p in (config.PROJECT_ROOT.parent / "shared" / "real_exports")
                                          .glob("*.csv")) if (config.PROJECT_ROOT.parent / "shared").is_dir() else [])
def test_map_suggest_proposes_the_documented_entity_for_every_development_set_file(source):
    documented = next(yaml.safe_load(p.read_text(encoding="utf-8"))["entity"]
                      for p in (config.PROJECT_ROOT / "docs" / "examples").glob("*.mapping.yaml")
                      if yaml.safe_load(p.read_text(encoding="utf-8")).get("source") == source)
    text = suggest_mapping(config.PROJECT_ROOT.parent / "shared" / "real_exports" / source, raw_dir=config.RAW_DIR)
    assert yaml.safe_load(text)["entity"] == documented
    assert "# Headers matched: " in text


def test_map_suggest_takes_a_file_named_after_its_registry_at_its_word(exports):
    """An industries-shaped file is industries, not functions; a personas.csv shaped like functions is never mapped
    as functions: its name says personas, and when personas do not fit, nothing is proposed."""
    from vital_pipelines.spreadsheets.suggest import NoEntityFits

    industries = _write(exports, "industries.csv", "code,name,short_name,description\n"
                                                   "pharmaceuticals,Pharmaceutical,Phrm,Medicines\n"
                                                   "medtech,Medical Technology,MedT,Devices\n")
    assert yaml.safe_load(suggest_mapping(industries, raw_dir=config.RAW_DIR))["entity"] == "industries"
    functions_like = _write(exports, "personas.csv", "code,name,color\nMA,Medical Affairs,#2CA02C\n"
                                                     "COMM,Commercial,#1F77B4\n")
    try:
        proposed = yaml.safe_load(suggest_mapping(functions_like, raw_dir=config.RAW_DIR))["entity"]
    except NoEntityFits as refusal:
        assert "no entity fits" in str(refusal) and "personas" in str(refusal)
    else:
        assert proposed == "personas"


def test_map_suggest_says_no_entity_fits_and_writes_nothing(exports, capsys):
    from vital_pipelines import cli

    unrelated = _write(exports, "quarterly_figures.csv", "quarter,revenue,units\nQ1,120.5,30\nQ2,130.1,31\n")
    assert cli.main(["map", "--suggest", str(unrelated)]) == 2
    err = capsys.readouterr().err
    assert "no entity fits" in err and "closest:" in err
    assert not (exports / "quarterly_figures.mapping.yaml").exists()


@pytest.mark.parametrize("cell, expected", [
    ("Drug Discovery (https://www.notion.so/abc)", "Drug Discovery"),
    ("Regulatory Writer (https://www.notion.so/x), Pharmacologist", "Regulatory Writer, Pharmacologist"),
    ("MSL (EU)", "MSL"),
])
def test_before_parenthesis_drops_every_relation_url(cell, expected):
    from vital_pipelines.spreadsheets.mapping import _extract

    assert _extract(cell, "before_parenthesis") == expected
