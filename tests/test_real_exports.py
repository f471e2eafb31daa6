"""The development set of the platform's real exports (../shared/real_exports), each read through its documented
mapping (docs/examples), loaded by the Dagster assets beside the sample workbooks: every record of every file is
accounted for, and `vital-pipelines validate --database` and the portal's check of the same file give the counts
the load gave."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pytest
import yaml

from vital_pipelines import cli, config
from vital_pipelines.db import connect
from vital_pipelines.db.scratch import loader_url

REAL = config.PROJECT_ROOT.parent / "shared" / "real_exports"
EXAMPLES = config.PROJECT_ROOT / "docs" / "examples"
pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason="the development set is not beside the checkout")


def _exports() -> list[tuple[str, Path]]:
    """(export file name, its mapping) for every documented mapping of a development-set file."""
    found = []
    for mapping in sorted(EXAMPLES.glob("*.mapping.yaml")):
        source = yaml.safe_load(mapping.read_text(encoding="utf-8")).get("source")
        if source and (REAL / source).is_file():
            found.append((source, mapping))
    return found


def _records(path: Path) -> int:
    """The records a spreadsheet shows under the header: lines of stray output before it (one field) left out."""
    rows = list(csv.reader(path.open(encoding="utf-8-sig", newline="")))
    start = next(i for i, row in enumerate(rows) if len(row) > 1)
    return len(rows) - start - 1


@pytest.fixture(scope="module")
def development_set(make_schema_database, tmp_path_factory):
    import dagster as dg

    from vital_pipelines.defs.common.resources import PostgresResource
    from vital_pipelines.defs.registry import assets as registry_assets
    from vital_pipelines.defs.registry.resources import RegistrySource

    raw = tmp_path_factory.mktemp("raw")
    for workbook in config.RAW_DIR.glob("*.xlsx"):
        shutil.copy(workbook, raw / workbook.name)
    for source, mapping in _exports():
        shutil.copy(REAL / source, raw / source)
        shutil.copy(mapping, raw / mapping.name)
    url = make_schema_database()
    resources = {"postgres": PostgresResource(database_url=loader_url(url)),
                 "registry_source": RegistrySource(raw_dir=str(raw), reports_dir=str(raw.parent / "reports"),
                                                   isolated_reader=False)}
    result = dg.materialize([*registry_assets.REGISTRY_ASSETS, registry_assets.solution_industry_matrix],
                            resources=resources, raise_on_error=False)
    accounts: dict[str, dict] = {}
    for event in result.get_asset_materialization_events():
        accounts.update(event.materialization.metadata["sheets"].value)
    return url, raw, result, accounts


def _account(accounts: dict, source: str) -> dict:
    [found] = [a for name, a in accounts.items() if name.startswith(f"{source} › ")]
    return found


def test_the_development_set_has_a_documented_mapping_for_every_file():
    assert sorted(p.name for p in REAL.glob("*.csv")) == sorted(source for source, _ in _exports())


@pytest.mark.parametrize("source", [s for s, _ in _exports()])
def test_every_record_of_every_real_export_is_loaded_warned_or_quarantined(development_set, source):
    url, _raw, result, accounts = development_set
    assert result.success
    account = _account(accounts, source)
    assert account["rows_in"] == _records(REAL / source), "every record was read"
    assert account["rows_in"] == account["loaded"] + account["loaded_with_warnings"] + account["quarantined"]
    target = re.sub(r"\.csv$", "", source)
    with connect(url) as conn:
        waiting = conn.execute("select count(*) from quarantined_rows where target = %s and resolved_at is null",
                               (target,)).fetchone()[0]
    assert waiting == account["quarantined"], "each quarantined row is kept with its findings"


def test_the_real_prompts_and_their_starters_load(development_set):
    url, _raw, _result, accounts = development_set
    prompts = _account(accounts, "prompts_export_b.csv")
    assert prompts["quarantined"] == 0 and prompts["rows_in"] == 887
    starters = _account(accounts, "agent_prompt_starters_part.csv")
    with connect(url) as conn:
        stored = conn.execute("select count(*), count(*) filter (where role_type = 'instruction'), "
                              "count(*) filter (where metadata ? 'id') from prompts "
                              "where loaded_from ->> 'file' = 'prompts_export_b.csv'").fetchone()
        links = conn.execute("select count(*), count(distinct agent_id) from agent_prompts ap join prompts p "
                             "on p.id = ap.prompt_id where p.loaded_from ->> 'file' = 'prompts_export_b.csv'"
                             ).fetchone()
    assert stored == (887, 727, 887)  # user prompts are instructions; the platform's id is kept
    # starters name their prompt by the platform's id: those in this part of the export become links
    assert links[0] > 0 and links[1] > 0
    assert starters["rows_in"] == 125


@pytest.mark.parametrize("source", [s for s, _ in _exports()])
def test_validate_and_the_portal_give_the_counts_the_load_gave(development_set, source, capsys, monkeypatch):
    from vital_pipelines.loading.registry import database_references
    from vital_pipelines.portal.uploads import UploadStore

    url, raw, _result, accounts = development_set
    account = _account(accounts, source)
    monkeypatch.setenv(config.LOADER_URL_VARIABLE, loader_url(url))
    code = cli.main(["validate", str(raw / source), "--raw-dir", str(raw), "--database"])
    out = capsys.readouterr().out
    summary = re.search(r"(\d+) row\(s\) in: (\d+) load, (\d+) with warnings, (\d+) quarantined", out)
    assert summary, out[-2000:]
    rows_in, loaded, warned, quarantined = map(int, summary.groups())
    # The same rows load and the same wait. (Which loaded rows carry a warning may differ: a key two sources both
    # write is reported by whichever did not load it last, and the dry run comes after the whole load.)
    assert (rows_in, loaded + warned, quarantined) == (
        account["rows_in"], account["loaded"] + account["loaded_with_warnings"], account["quarantined"])
    assert code == (1 if account["quarantined"] else 0)

    store = UploadStore(raw.parent / f"uploads-{source}", raw)
    mapping = raw / source.replace(".csv", ".mapping.yaml")
    with connect(loader_url(url)) as conn:
        references = database_references(conn)
    report = store.save("acme-pharma", "", (raw / source).read_bytes(), source,
                        mapping=mapping.read_bytes(), references=references)
    assert sum(report.rows.values()) == account["rows_in"]
    assert len({f["row"] for f in report.failures if f["rule"] != "tenant_of_source"}) <= account["quarantined"]


def test_a_crosswalk_written_with_suggest_turns_unresolved_roles_into_links(development_set, capsys, monkeypatch):
    """The steward's loop on the real persona export: `crosswalk --suggest` lists every role title that names no
    role with its candidates; the steward confirms the sure ones (every word of the title in one candidate's name);
    the next load links those personas and their warnings and `metadata.unresolved` notes are gone. (Runs last:
    it adds a crosswalk to the shared folder.)"""
    import dagster as dg

    from vital_pipelines.defs.common.resources import PostgresResource
    from vital_pipelines.defs.registry import assets as registry_assets
    from vital_pipelines.defs.registry.resources import RegistrySource

    url, raw, _result, accounts = development_set
    source = "personas_structured_load_scripts.csv"
    before = _account(accounts, source)
    monkeypatch.setenv(config.LOADER_URL_VARIABLE, loader_url(url))
    assert cli.main(["crosswalk", "--suggest", str(raw / source), "--database"]) == 0
    crosswalk = raw / source.replace(".csv", ".crosswalk.yaml")
    lines = crosswalk.read_text(encoding="utf-8").splitlines()
    assert any(line.startswith("role_code:") for line in lines)
    confirmed, filled = 0, []
    for line in lines:
        found = re.match(r"^  (.+?):   # (\d+) row\(s\); closest: (\S+) \(.*?\) 100\b", line)
        if found:
            confirmed += int(found.group(2))
            line = f"  {found.group(1)}: {found.group(3)}"
        filled.append(line)
    crosswalk.write_text("\n".join(filled) + "\n", encoding="utf-8")
    assert confirmed > 0
    with connect(url) as conn:
        waiting = conn.execute("select count(*) from personas where loaded_from ->> 'file' = %s "
                               "and metadata -> 'unresolved' ? 'role_code'", (source,)).fetchone()[0]

    resources = {"postgres": PostgresResource(database_url=loader_url(url)),
                 "registry_source": RegistrySource(raw_dir=str(raw), reports_dir=str(raw.parent / "reports"),
                                                   isolated_reader=False)}
    again = dg.materialize([registry_assets.WORKBOOK_ASSET["personas.xlsx"]], resources=resources)
    sheets = {}
    for event in again.get_asset_materialization_events():
        sheets.update(event.materialization.metadata["sheets"].value)
    after = _account(sheets, source)
    assert after["rows_in"] == before["rows_in"] and after["quarantined"] == before["quarantined"]
    assert after["loaded_with_warnings"] < before["loaded_with_warnings"]
    with connect(url) as conn:
        still = conn.execute("select count(*) from personas where loaded_from ->> 'file' = %s "
                             "and metadata -> 'unresolved' ? 'role_code'", (source,)).fetchone()[0]
    assert still == waiting - confirmed, "each confirmed title now links its personas to the role"
