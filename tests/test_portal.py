"""The stewards' portal over HTTP against a real database: API keys, 401 without one, upload → report, filters and
pages that never truncate, the annotated workbook's marked cells, CSV/JSON reports, tenant separation, CSRF and
size limits."""

from __future__ import annotations

import csv
import io
import re
import shutil
from pathlib import Path

import openpyxl
import pytest
from fastapi.testclient import TestClient

from vital_pipelines import cli
from vital_pipelines.db import connect
from vital_pipelines.db.scratch import loader_url
from vital_pipelines.portal import uploads as uploads_module
from vital_pipelines.portal.app import PortalSettings, create_app
from vital_pipelines.portal.keys import KeyProblem, create_key, list_keys, revoke_key, verify_key
from tests.workbooks import edit_cells, write_workbook


@pytest.fixture
def portal(fresh_url, raw, tmp_path):
    with connect(fresh_url) as conn:
        acme, _ = create_key(conn, "acme-pharma", "Dana (steward)")
        other, _ = create_key(conn, "pharma-solutions", "Lee (steward)")
    settings = PortalSettings(database_url=loader_url(fresh_url), portal_dir=tmp_path / "portal", raw_dir=raw,
                              secret="test-secret")
    return TestClient(create_app(settings)), {"acme": acme, "other": other}, fresh_url


def _signed_in(client: TestClient, key: str) -> str:
    page = client.get("/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    response = client.post("/signin", data={"key": key, "csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303
    return re.search(r'name="csrf" value="([^"]+)"', client.get("/").text).group(1)


def _acme_personas(raw: Path, target: Path, rows: int = 80) -> Path:
    """The committed personas workbook cut to `rows` rows, every row acme-pharma's."""
    shutil.copy(raw / "personas.xlsx", target)
    workbook = openpyxl.load_workbook(target)
    sheet = workbook["personas"]
    sheet.delete_rows(rows + 2, sheet.max_row)
    column = next(c.column_letter for c in sheet[1] if c.value == "tenant")
    for row in range(2, rows + 2):
        sheet[f"{column}{row}"] = "acme-pharma"
    workbook.save(target)
    return target


def _upload(client, csrf: str, path: Path, workbook: str = "personas.xlsx"):
    with path.open("rb") as stream:
        return client.post("/uploads", data={"workbook": workbook, "csrf": csrf},
                           files={"file": (path.name, stream, "application/octet-stream")}, follow_redirects=False)


def test_keys_are_shown_once_stored_as_hashes_and_revocable(fresh_url, capsys, monkeypatch):
    monkeypatch.setenv("DATABASE_OWNER_URL", fresh_url)
    assert cli.main(["keys", "create", "--tenant", "acme-pharma", "--name", "ci"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert key.startswith("vk_") and len(key) > 40
    with connect(fresh_url) as conn:
        stored = conn.execute("select key_prefix, key_hash from api_keys where name = 'ci'").fetchone()
        assert stored[0] == key[:12] and key not in stored[1] and stored[1].startswith("$2")
        assert verify_key(conn, key).tenant_slug == "acme-pharma"
        assert verify_key(conn, key[:-1] + ("A" if key[-1] != "A" else "B")) is None
        with pytest.raises(KeyProblem):
            create_key(conn, "acme-pharma", "ci")
        with pytest.raises(KeyProblem):
            create_key(conn, "no-such-tenant", "x")
    assert cli.main(["keys", "list", "--tenant", "acme-pharma"]) == 0
    listed = capsys.readouterr().out
    assert "ci" in listed and key not in listed and "live" in listed
    assert cli.main(["keys", "revoke", "--tenant", "acme-pharma", "--name", "ci"]) == 0
    with connect(fresh_url) as conn:
        assert verify_key(conn, key) is None
        assert [k.revoked_at is not None for k in list_keys(conn, "acme-pharma")] == [True]
        assert revoke_key(conn, "acme-pharma", "ci") is False


def test_everything_answers_401_without_a_live_key(portal, fresh_url):
    client, keys, url = portal
    for path in ("/", "/quarantine", "/uploads/20260101T000000-abcdefghijklmnop", "/api/uploads/x"):
        assert client.get(path).status_code == 401, path
    assert client.get("/api/uploads/x", headers={"Authorization": "Bearer vk_wrong"}).status_code == 401
    page = client.get("/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    assert client.post("/signin", data={"key": "vk_guess", "csrf": csrf}).status_code == 401
    _signed_in(client, keys["acme"])
    assert client.get("/").status_code == 200
    with connect(url) as conn:
        revoke_key(conn, "acme-pharma", "Dana (steward)")
    # Revoking the key ends the session at its next request.
    assert client.get("/").status_code == 401


def test_a_steward_uploads_a_broken_workbook_and_gets_every_failure_and_the_marked_up_copy(portal, raw, tmp_path):
    client, keys, _ = portal
    csrf = _signed_in(client, keys["acme"])
    broken = _acme_personas(raw, tmp_path / "my personas.xlsx")
    edit_cells(broken, "personas", {"B5": None, "A7": "Not A Key!"} | {f"G{r}": "guru" for r in range(10, 70)})
    response = _upload(client, csrf, broken)
    assert response.status_code == 303
    report_url = response.headers["location"]
    page = client.get(report_url)
    assert "2 failure(s) in 2 row(s): those rows would wait in quarantine" in page.text
    assert '<td class="warning">warning</td><td><a href="?rule=allowed_values_warning">not an allowed value</a></td><td>60</td>' \
        in page.text.replace("\n", "").replace("    ", "")
    # Messages are plain text: no Markdown backticks in the table.
    assert "`" not in re.sub(r"<[^>]+>", "", page.text.split('id="findings"')[1])
    # Filtered by column and paginated (50 a page): every finding is on some page, none twice.
    seen = []
    for number in (1, 2):
        body = client.get(report_url, params={"column": "seniority_level", "page": number}).text
        assert f"60 finding(s), page {number} of 2" in body
        seen += re.findall(r'<td class="short">(G\d+)</td>', body)
    assert seen == [f"G{r}" for r in range(10, 70)]
    # The annotated workbook marks exactly the failing and warned cells.
    annotated = client.get(f"{report_url}/annotated.xlsx")
    assert annotated.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(annotated.content))["personas"]
    assert "name" in sheet["B5"].comment.text and "persona_key" in sheet["A7"].comment.text
    assert sheet["G69"].comment is not None and sheet["G9"].comment is None and sheet["B4"].comment is None
    rows = list(csv.DictReader(io.StringIO(client.get(f"{report_url}/report.csv").text)))
    assert len(rows) == 62 and {r["cell"] for r in rows} >= {"B5", "A7", "G69"}
    report = client.get(f"{report_url}/report.json").json()
    assert report["rows"] == {"personas": 80} and len(report["findings"]) == 62
    assert report["original_name"] == "my personas.xlsx"


def test_a_renamed_header_is_reported_at_its_cell_as_a_refusal(portal, raw, tmp_path):
    client, keys, _ = portal
    csrf = _signed_in(client, keys["acme"])
    renamed = edit_cells(_acme_personas(raw, tmp_path / "p.xlsx"), "personas", {"G1": "seniorty_level"})
    report_url = _upload(client, csrf, renamed).headers["location"]
    page = client.get(report_url).text
    assert "refused as a whole" in page and "did you mean" in page
    sheet = openpyxl.load_workbook(io.BytesIO(client.get(f"{report_url}/annotated.xlsx").content))["personas"]
    assert sheet["G1"].comment is not None and sheet["A1"].comment is None


def test_rows_of_another_tenant_are_refused_and_tenants_never_see_each_others_uploads(portal, raw, tmp_path):
    client, keys, _ = portal
    csrf = _signed_in(client, keys["acme"])
    # row 5's empty tenant cell is the file's own tenant (acme-pharma's key): not a finding
    mixed = edit_cells(_acme_personas(raw, tmp_path / "p.xlsx", rows=10), "personas",
                       {"tenant@3": "pharma-solutions", "tenant@4": "vital-platform", "tenant@5": None})
    report_url = _upload(client, csrf, mixed).headers["location"]
    findings = client.get(f"{report_url}/report.json").json()["findings"]
    assert sorted((f["cell"], f["value"]) for f in findings if f["rule"] == "tenant_of_source") == [
        ("Q3", "pharma-solutions"), ("Q4", "vital-platform")]
    other = TestClient(client.app)
    _signed_in(other, keys["other"])
    assert other.get(report_url).status_code == 404
    assert other.get(f"{report_url}/annotated.xlsx").status_code == 404
    assert "p.xlsx" not in other.get("/").text and "p.xlsx" in client.get("/").text


def test_forms_need_their_csrf_token_and_uploads_their_size_limit(portal, raw, tmp_path, monkeypatch):
    client, keys, _ = portal
    csrf = _signed_in(client, keys["acme"])
    workbook = _acme_personas(raw, tmp_path / "p.xlsx", rows=5)
    assert _upload(client, "forged", workbook).status_code == 403
    monkeypatch.setattr(uploads_module, "MAX_UPLOAD_BYTES", 1000)
    monkeypatch.setattr("vital_pipelines.portal.app.MAX_UPLOAD_BYTES", 1000)
    assert _upload(client, csrf, workbook).status_code == 413

    def unsized():  # a form sent without a declared size, 64 KiB at a time: 2.5 MiB
        yield b"key="
        for _ in range(40):
            yield b"a" * 65_536

    refused = client.post("/signin", content=unsized(), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert refused.status_code == 413 and "larger than any form" in refused.text


def test_an_api_client_uploads_with_its_key_and_reads_the_report(portal, raw, tmp_path):
    client, keys, _ = portal
    workbook = _acme_personas(raw, tmp_path / "p.xlsx", rows=5)
    headers = {"Authorization": f"Bearer {keys['acme']}"}
    with workbook.open("rb") as stream:
        created = client.post("/api/uploads", headers=headers, data={"workbook": "personas.xlsx"},
                              files={"file": ("p.xlsx", stream)})
    assert created.status_code == 201
    report = created.json()
    assert report["tenant"] == "acme-pharma" and report["rows"] == {"personas": 5} and report["findings"] == []
    assert client.get(f"/api/uploads/{report['upload_id']}", headers=headers).json()["upload_id"] == report["upload_id"]
    # The kind is recognised from the file (its personas sheet): a chosen name is never used as a path.
    with workbook.open("rb") as stream:
        recognised = client.post("/api/uploads", headers=headers, data={"workbook": "../../x.xlsx"},
                                 files={"file": ("p.xlsx", stream)})
    assert recognised.status_code == 201 and recognised.json()["workbook"] == "personas.xlsx"
    unknown = write_workbook(tmp_path / "notes.xlsx", {"Sheet1": [["what"], ["a note"]]})
    folders = sorted((tmp_path / "portal").rglob("*"))
    with unknown.open("rb") as stream:
        refused = client.post("/api/uploads", headers=headers, data={"workbook": "../../x.xlsx"},
                              files={"file": ("notes.xlsx", stream)})
    assert refused.status_code == 422 and "do not say which registry it is" in refused.json()["error"]
    assert sorted((tmp_path / "portal").rglob("*")) == folders, "a refused upload leaves nothing behind"


def test_the_quarantine_page_lists_only_the_tenants_own_open_rows(portal):
    client, keys, url = portal
    with connect(url) as conn:
        for tenant, key in (("acme-pharma", "a"), ("", "b"), ("pharma-solutions", "c")):
            conn.execute("insert into quarantined_rows (target, row_key, source_file, sheet, excel_row, payload, failures) "
                         "values ('personas', %s, 'personas.xlsx', 'personas', 7, %s, %s)",
                         (key, f'{{"tenant": "{tenant}", "persona_key": "p-{key}"}}',
                          f'[{{"cell": "G7", "rule": "enum", "message": "row {key} is wrong"}}]'))
        # pharma-solutions' own file holds a row naming acme-pharma: it is pharma-solutions' row, never acme's
        conn.execute("insert into quarantined_rows (target, row_key, source_file, sheet, excel_row, payload, failures) "
                     "values ('tenants/pharma-solutions/personas', 'd', 'tenants/pharma-solutions/personas.xlsx', "
                     "'personas', 9, '{\"tenant\": \"acme-pharma\", \"persona_key\": \"p-d\"}', "
                     "'[{\"cell\": \"Q9\", \"rule\": \"tenant_of_source\", \"message\": \"row d is theirs\"}]')")
        conn.commit()
    _signed_in(client, keys["acme"])
    page = client.get("/quarantine").text
    assert "row a is wrong" in page and "row b is wrong" not in page and "row c is wrong" not in page
    assert "row d is theirs" not in page and "1 row(s) of acme-pharma" in page
    other = TestClient(client.app)
    _signed_in(other, keys["other"])
    theirs = other.get("/quarantine").text
    assert "row d is theirs" in theirs and "row c is wrong" in theirs and "2 row(s) of pharma-solutions" in theirs


def _materialize_personas(url: str, raw: Path, tmp_path: Path):
    import dagster as dg

    from vital_pipelines.defs.common.resources import PostgresResource
    from vital_pipelines.defs.registry import assets as registry_assets
    from vital_pipelines.defs.registry.resources import RegistrySource

    resources = {"postgres": PostgresResource(database_url=loader_url(url)),
                 "registry_source": RegistrySource(raw_dir=str(raw), reports_dir=str(tmp_path / "reports"))}
    return dg.materialize([registry_assets.WORKBOOK_ASSET["personas.xlsx"]], resources=resources, raise_on_error=False)


def _live(url: str, tenant: str) -> set[str]:
    with connect(url) as conn:
        return {key for (key,) in conn.execute(
            "select p.persona_key from personas p join tenants t on t.id = p.tenant_id "
            "where t.slug = %s and p.deleted_at is null", (tenant,))}


def test_preview_shows_every_change_and_approval_puts_the_file_in_place_for_the_load(portal, raw, tmp_path):
    from tests.test_tenant_sources import _load

    client, keys, url = portal
    _load(url, raw, raw / "org_structure.xlsx", "org_structure.xlsx")
    _load(url, raw, raw / "personas.xlsx", "personas.xlsx")
    csrf = _signed_in(client, keys["acme"])
    first = _acme_personas(raw, tmp_path / "first.xlsx", rows=10)
    edit_cells(first, "personas", {f"A{r}": f"acme-p{r}" for r in range(2, 12)})
    upload = _upload(client, csrf, first).headers["location"]
    preview = client.get(f"{upload}/preview").text
    assert "<td>personas</td><td>10</td><td>0</td><td>0</td><td>0</td>" in preview.replace("\n", "")
    assert _live(url, "acme-pharma") == set()  # a preview writes nothing
    approved = client.post(f"{upload}/approve", data={"csrf": csrf}, follow_redirects=True)
    assert approved.status_code == 200 and "The raw sensor loads the file" in approved.text
    # Approving again (a double click, another tab) approves nothing more: it shows the first approval's run.
    again = client.post(f"{upload}/approve", data={"csrf": csrf}, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].endswith("/run")
    source = raw / "tenants" / "acme-pharma" / "personas.xlsx"
    assert source.read_bytes() == first.read_bytes()
    assert _materialize_personas(url, raw, tmp_path).success
    assert _live(url, "acme-pharma") == {f"acme-p{r}" for r in range(2, 12)}

    # The next file drops six rows and renames one person's title: the guard wants the deletions approved.
    second = _acme_personas(raw, tmp_path / "second.xlsx", rows=4)
    edit_cells(second, "personas", {f"A{r}": f"acme-p{r}" for r in range(2, 6)} | {"C3": "Chief Brand Officer"})
    upload = _upload(client, csrf, second).headers["location"]
    preview = client.get(f"{upload}/preview").text
    assert "type 6 to approve exactly those deletions" in preview
    assert re.search(r"acme-p3</td><td class=\"short\">title</td><td>[^<]+</td><td>Chief Brand Officer</td>", preview)
    deleted = re.search(r'<p class="deletions" id="deletions-personas">([^<]+)</p>', preview).group(1).split(", ")
    assert sorted(deleted) == sorted(f"acme-p{r}" for r in range(6, 12))
    assert client.post(f"{upload}/approve", data={"csrf": csrf}).status_code == 409
    assert client.post(f"{upload}/approve", data={"csrf": csrf, "deletions": "5"}).status_code == 409
    assert source.read_bytes() == first.read_bytes()
    assert client.post(f"{upload}/approve", data={"csrf": csrf, "deletions": "6"}).status_code == 200
    assert source.read_bytes() == second.read_bytes()
    assert [p.read_bytes() for p in (source.parent / ".history").iterdir()] == [first.read_bytes()]
    # The approval travels with exactly these bytes: the load honours it and deletes the six rows.
    assert _materialize_personas(url, raw, tmp_path).success
    assert _live(url, "acme-pharma") == {f"acme-p{r}" for r in range(2, 6)}
    with connect(url) as conn:
        audit = conn.execute("select entity_id, details->>'approved_by', (details->>'deletions_approved')::int "
                             "from audit_log where action = 'approve_upload' order by created_at").fetchall()
    assert audit == [("tenants/acme-pharma/personas.xlsx", "Dana (steward)", 0),
                     ("tenants/acme-pharma/personas.xlsx", "Dana (steward)", 6)]
    # Another tenant cannot approve it.
    other = TestClient(client.app)
    other_csrf = _signed_in(other, keys["other"])
    assert other.post(f"{upload}/approve", data={"csrf": other_csrf, "deletions": "6"}).status_code == 404


def test_without_an_approval_the_guard_still_refuses_a_tenant_file_that_deletes_too_much(portal, raw, tmp_path):
    from tests.test_tenant_sources import _load, _tenant_copy

    _client, _keys, url = portal
    _load(url, raw, raw / "org_structure.xlsx", "org_structure.xlsx")
    _tenant_copy(raw, "acme-pharma", 10)
    assert _materialize_personas(url, raw, tmp_path).success
    _tenant_copy(raw, "acme-pharma", 3)
    result = _materialize_personas(url, raw, tmp_path)
    assert not result.success and len(_live(url, "acme-pharma")) == 10


def test_pipeline_reports_are_served_to_the_platforms_stewards_only(fresh_url, raw, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "personas.failures.csv").write_text("file,sheet,cell\npersonas.xlsx,personas,O17\n")
    with connect(fresh_url) as conn:
        platform, _ = create_key(conn, "vital-platform", "ops")
        acme, _ = create_key(conn, "acme-pharma", "dana")
    client = TestClient(create_app(PortalSettings(database_url=loader_url(fresh_url), portal_dir=tmp_path / "p",
                                                  raw_dir=raw, secret="s", reports_dir=reports)))
    assert client.get("/reports/personas.failures.csv").status_code == 401
    as_platform = {"Authorization": f"Bearer {platform}"}
    assert "O17" in client.get("/reports/personas.failures.csv", headers=as_platform).text
    assert client.get("/reports/personas.failures.csv", headers={"Authorization": f"Bearer {acme}"}).status_code == 404
    assert client.get("/reports/..%2F..%2Fetc%2Fpasswd", headers=as_platform).status_code == 404
    assert client.get("/reports/other.txt", headers=as_platform).status_code == 404


def test_a_csv_export_is_checked_previewed_approved_and_loaded_as_the_tenants_source(portal, raw, tmp_path):
    from tests.test_csv_sources import _as_csv
    from tests.test_tenant_sources import _load

    client, keys, url = portal
    _load(url, raw, raw / "org_structure.xlsx", "org_structure.xlsx")
    csrf = _signed_in(client, keys["acme"])
    workbook = _acme_personas(raw, tmp_path / "p.xlsx", rows=6)
    edit_cells(workbook, "personas", {f"A{r}": f"acme-csv-{r}" for r in range(2, 8)} | {"G4": "guru"})
    export = _as_csv(workbook, tmp_path / "from notion.csv")
    upload = _upload(client, csrf, export).headers["location"]
    report = client.get(f"{upload}/report.json").json()
    assert report["stored"] == "personas.csv" and report["rows"] == {"personas": 6}
    assert [(f["rule"], f["cell"]) for f in report["findings"]] == [("allowed_values_warning", "G4")]
    assert client.get(f"{upload}/annotated.xlsx").status_code == 404  # an export's report names its lines
    assert "annotated workbook" not in client.get(upload).text
    assert "<td>personas</td><td>6</td>" in client.get(f"{upload}/preview").text.replace("\n", "")
    assert client.post(f"{upload}/approve", data={"csrf": csrf}).status_code == 200
    assert (raw / "tenants" / "acme-pharma" / "personas.csv").read_bytes() == export.read_bytes()
    assert _materialize_personas(url, raw, tmp_path).success
    assert _live(url, "acme-pharma") == {f"acme-csv-{r}" for r in range(2, 8)}
    # Not a workbook and not an export: refused with the reason.
    (tmp_path / "notes.txt").write_text("hello")
    refused = _upload(client, csrf, tmp_path / "notes.txt")
    assert refused.status_code == 422 and "neither an Excel workbook" in refused.text


EXPORT = """ID,Full name,Job title,Function,Department,Role,Level
Ana Ruiz,Ana Ruiz,Brand Manager,COMM,COMM-MKT,BRAND-MGR,Manager
Ben Ode,Ben Ode,Senior Brand Manager,COMM,COMM-MKT,SR-BRAND-MGR,Senior
Cy Lam,Cy Lam,Brand Director,COMM,COMM-MKT,BRAND-DIR,Director
"""

MAPPING = """entity: personas
columns:
  persona_key:
    from: ID
    normalise: slug
  name: Full name
  title: Job title
  function_code: Function
  department_code: Department
  role_code: Role
  seniority_level:
    from: Level
    values: {Manager: mid, Senior: senior, Director: head}
  tenant:
    value: acme-pharma
"""


def test_an_export_in_another_layout_comes_with_its_mapping_file_and_loads_as_the_tenants_source(portal, raw, tmp_path):
    from tests.test_tenant_sources import _load

    client, keys, url = portal
    _load(url, raw, raw / "org_structure.xlsx", "org_structure.xlsx")
    csrf = _signed_in(client, keys["acme"])
    (tmp_path / "crm.csv").write_text(EXPORT)
    (tmp_path / "crm.mapping.yaml").write_text(MAPPING)
    with (tmp_path / "crm.csv").open("rb") as export, (tmp_path / "crm.mapping.yaml").open("rb") as mapping:
        response = client.post("/uploads", data={"workbook": "", "csrf": csrf}, follow_redirects=False,
                               files={"file": ("crm.csv", export), "mapping": ("crm.mapping.yaml", mapping)})
    assert response.status_code == 303, response.text
    upload = response.headers["location"]
    report = client.get(f"{upload}/report.json").json()
    assert (report["workbook"], report["stored"], report["mapping"]) == (
        "personas.xlsx", "personas_export.csv", "personas_export.mapping.yaml")
    assert report["rows"] == {"personas": 3} and report["findings"] == []
    assert "<td>personas</td><td>3</td>" in client.get(f"{upload}/preview").text.replace("\n", "")
    assert client.post(f"{upload}/approve", data={"csrf": csrf}).status_code == 200
    folder = raw / "tenants" / "acme-pharma"
    assert (folder / "personas_export.mapping.yaml").read_text() == MAPPING
    assert _materialize_personas(url, raw, tmp_path).success
    assert _live(url, "acme-pharma") == {"ana-ruiz", "ben-ode", "cy-lam"}

    # A mapping whose `source:` is not a plain file name, or that cannot be read, is refused with the reason.
    for bad, reason in (("source: ../../etc/passwd.csv\n" + MAPPING, "plain file name"),
                        ("entity: nobody\ncolumns: {}\n", "mapping file was refused")):
        (tmp_path / "bad.mapping.yaml").write_text(bad)
        with (tmp_path / "crm.csv").open("rb") as export, (tmp_path / "bad.mapping.yaml").open("rb") as mapping:
            refused = client.post("/uploads", data={"workbook": "", "csrf": csrf},
                                  files={"file": ("crm.csv", export), "mapping": ("bad.mapping.yaml", mapping)})
        assert refused.status_code == 422 and reason in refused.text, refused.text


def _tenant_load(url: str, raw: Path, path: Path, tenant: str):
    from vital_pipelines.loading.registry import load_workbook
    from vital_pipelines.loading.tenant_sources import tenant_source_name
    from vital_pipelines.spreadsheets.workbooks import validate_registry_workbook

    sheets = validate_registry_workbook(path, raw_dir=raw, isolated=False)
    with connect(loader_url(url)) as conn:
        load_workbook(conn, "personas.xlsx", sheets, source_path=path, tenant=tenant,
                      source_name=tenant_source_name(tenant, "personas.xlsx"))


def test_a_steward_sees_the_tenants_loads_a_rows_history_and_takes_a_load_back(portal, raw, tmp_path):
    from vital_pipelines.loading.registry import load_workbook
    from vital_pipelines.spreadsheets.workbooks import validate_registry_workbook

    client, keys, url = portal
    with connect(loader_url(url)) as conn:
        load_workbook(conn, "org_structure.xlsx", validate_registry_workbook(raw / "org_structure.xlsx", isolated=False),
                      source_path=raw / "org_structure.xlsx")
    path = _acme_personas(raw, tmp_path / "personas.xlsx", rows=20)
    _tenant_load(url, raw, path, "acme-pharma")
    edit_cells(path, "personas", {"I2": "Rewritten by mistake."})
    _tenant_load(url, raw, path, "acme-pharma")
    with connect(url) as conn:
        latest, first = [r[0] for r in conn.execute(
            "select id::text from pipeline_loads where target = 'tenants/acme-pharma/personas' order by finished_at desc")]
        persona, persona_key = conn.execute("select id::text, persona_key from personas "
                                            "where description = 'Rewritten by mistake.'").fetchone()

    csrf = _signed_in(client, keys["acme"])
    listing = client.get("/loads")
    assert listing.status_code == 200 and f"/loads/{latest}" in listing.text and f"/loads/{first}" in listing.text
    shown = client.get(f"/loads/{latest}")
    assert shown.status_code == 200
    assert "Rewritten by mistake." in shown.text and "personas: restore the values it changed × 1" in shown.text
    assert f'<a href="/history/personas/{persona}">{persona_key}</a>' in shown.text, "a row by its key, not its id"
    row = client.get(f"/history/personas/{persona}")
    assert row.status_code == 200 and row.text.count("open the load") == 2 and "Rewritten by mistake." in row.text
    # The first load is in the way of nothing, but a later load changed one of its rows: refused, with the reason.
    assert "later loads changed 1 of the rows" in client.get(f"/loads/{first}").text

    undone = client.post(f"/loads/{latest}/undo", data={"csrf": csrf}, follow_redirects=False)
    assert undone.status_code == 303
    with connect(url) as conn:
        assert conn.execute("select description from personas where id = %s", (persona,)).fetchone()[0] \
            != "Rewritten by mistake."
    assert "takes back" in client.get(undone.headers["location"]).text
    assert client.post(f"/loads/{latest}/undo", data={"csrf": "forged"}).status_code == 403

    # Another tenant reaches none of it.
    client.cookies.clear()
    _signed_in(client, keys["other"])
    assert latest not in client.get("/loads").text
    assert client.get(f"/loads/{latest}").status_code == 404
    assert client.get(f"/history/personas/{persona}").status_code == 404
    other_csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/").text).group(1)
    assert client.post(f"/loads/{first}/undo", data={"csrf": other_csrf}).status_code == 409
    with connect(url) as conn:
        assert conn.execute("select count(*) from pipeline_loads where policy = 'undo'").fetchone()[0] == 1


def _served(app):
    """The app on a real server (uvicorn, an ephemeral port), for what a test client cannot show: when the body is
    read."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    return server, port


def _declare_upload(port: int, size: int, key: str | None, path: str = "/api/uploads") -> bytes:
    """Send only the headers of a `size`-byte multipart upload asking `Expect: 100-continue`; the server's first
    answer, before any byte of the body is sent."""
    import socket

    headers = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: multipart/form-data; boundary=b",
               f"Content-Length: {size}", "Expect: 100-continue"] + ([f"Authorization: Bearer {key}"] if key else [])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(("\r\n".join(headers) + "\r\n\r\n").encode())
        return connection.recv(65536)


def test_an_upload_is_refused_before_its_body_is_sent_and_nothing_is_written(portal, tmp_path):
    """A keyless 60 MiB upload is answered 401, and a keyed one over the limit 413, before the client sends a byte
    of the body (it waits for `100 Continue`, which never comes); no folder is made for either."""
    client, keys, _url = portal
    server, port = _served(client.app)
    try:
        keyless = _declare_upload(port, 60 * 2 ** 20, None)
        too_big = _declare_upload(port, 60 * 2 ** 20, keys["acme"])
        # the page's forms too: a check, and an export to map
        forms = [_declare_upload(port, 60 * 2 ** 20, key, path) for path in ("/uploads", "/mappings")
                 for key in (None, keys["acme"])]
        # every other form is small: a 60 MiB sign-in or fix is refused before its body, key or not
        small = [_declare_upload(port, 60 * 2 ** 20, key, path) for path in
                 ("/signin", "/uploads/20260101T000000-abcdefghijklmnop/fixes") for key in (None, keys["acme"])]
    finally:
        server.should_exit = True
    assert keyless.startswith(b"HTTP/1.1 401"), keyless[:200]
    assert too_big.startswith(b"HTTP/1.1 413") and b"25 MiB limit" in too_big, too_big[:300]
    assert [answer[:12] for answer in forms] == [b"HTTP/1.1 401", b"HTTP/1.1 413"] * 2, forms
    assert [answer[:12] for answer in small] == [b"HTTP/1.1 413"] * 4, small
    assert not list((tmp_path / "portal").rglob("*")), "nothing is written for a refused upload"
