"""The steward's workbench over HTTP against a real database: cells fixed in the report, a suggestion taken with
one click and one value fixed in every cell at once, each as a new version of the upload (the upload kept); an
export mapped column by column in the page; a deletion that a failing key may explain held back and shown beside
that failure; pages that name rows by key and rules in words."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import openpyxl
import pytest

from tests.test_portal import _acme_personas, _signed_in, _upload, portal  # noqa: F401 (fixture)
from tests.test_tenant_sources import _load, _personas, _tenant_copy
from tests.workbooks import edit_cells
from vital_pipelines.db import connect
from vital_pipelines.loading.tenant_sources import tenant_source_path


def _findings(client, url: str) -> dict[str, dict]:
    report = client.get(url.replace("/uploads/", "/api/uploads/")).json()
    return {f"{f['sheet']}!{f['cell']}": f for f in report["findings"]}, report


def _cells(content: bytes, sheet: str, *refs: str) -> list:
    book = openpyxl.load_workbook(io.BytesIO(content))
    return [book[sheet][ref].value for ref in refs]


def test_cells_fixed_in_the_page_make_a_new_version_that_is_checked_at_once(portal, raw, tmp_path):
    client, keys, _ = portal
    csrf = _signed_in(client, keys["acme"])
    broken = _acme_personas(raw, tmp_path / "acme personas.xlsx", rows=30)
    headers = [c.value for c in openpyxl.load_workbook(broken)["personas"][1]]
    seniority = openpyxl.utils.get_column_letter(headers.index("seniority_level") + 1)
    # five kinds of mistakes: an empty name, a malformed key, a misspelt level in four cells, a duplicate key, a
    # level a typo away from an allowed one
    edit_cells(broken, "personas", {"B5": None, "A7": "Not A Key!", "A9": "acme-pharma-dup", "A10": "acme-pharma-dup",
                                    **{f"{seniority}{r}": "Senoir" for r in (11, 12, 13, 14)},
                                    f"{seniority}15": "Executiv"})
    first = _upload(client, csrf, broken).headers["location"]
    findings, report = _findings(client, first)
    assert report["version"] == 1 and not report["refused"]
    assert {"personas!B5", "personas!A7", "personas!A9", "personas!A10", f"personas!{seniority}11"} <= set(findings)

    page = client.get(first).text
    assert 'aria-label="New value for personas B5"' in page and 'id="bulk"' in page
    findings_table = page.split('id="findings"')[1].split("</table>")[0]
    assert "allowed_values" not in findings_table and "not an allowed value" in findings_table

    # Two cells fixed in the page (the name, the malformed key), one sent unchanged.
    fixed = client.post(f"{first}/fixes", data={"csrf": csrf, "cell:personas!B5": "Oncology Access Lead",
                                                 "cell:personas!A7": "acme-pharma-persona-seven",
                                                 "cell:personas!A9": findings["personas!A9"]["value"]},
                        follow_redirects=False)
    assert fixed.status_code == 303, fixed.text
    second = fixed.headers["location"]
    assert second != first
    findings2, report2 = _findings(client, second)
    assert report2["version"] == 2 and report2["parent"] == first.rsplit("/", 1)[1]
    assert {(e["cell"], e["new"]) for e in report2["edits"]} == {("B5", "Oncology Access Lead"),
                                                                 ("A7", "acme-pharma-persona-seven")}
    assert "personas!B5" not in findings2 and "personas!A7" not in findings2
    assert len(report2["findings"]) == len(report["findings"]) - 2
    assert _cells(client.get(f"{second}/file").content, "personas", "B5", "A7") == \
        ["Oncology Access Lead", "acme-pharma-persona-seven"]
    assert _cells(client.get(f"{first}/file").content, "personas", "B5")[0] is None, "the upload stays as it was"

    # Every `Senoir` of the column at once, with the value the report suggests.
    bulk = next(b for b in re.finditer(r'<form method="post" action="([^"]+)/bulk" class="bulk-fix">(.*?)</form>',
                                       client.get(second).text, re.S) if "Senoir" in b.group(2))
    suggested = re.search(r'name="new" value="([^"]*)"', bulk.group(2)).group(1)
    third = client.post(f"{second}/bulk", data={"csrf": csrf, "sheet": "personas", "column": "seniority_level",
                                                "value": "Senoir", "rule": findings2[f"personas!{seniority}11"]["rule"],
                                                "new": suggested}, follow_redirects=False).headers["location"]
    findings3, report3 = _findings(client, third)
    assert len(report3["edits"]) == 4 and not any(k.startswith(f"personas!{seniority}1") and
                                                  k[len(f"personas!{seniority}"):] in ("11", "12", "13", "14")
                                                  for k in findings3)
    assert suggested == "senior"

    # A suggestion taken with one click: `Executiv` is offered `executive`.
    [target] = [f for f in report3["findings"] if f.get("suggestion")]
    assert (target["cell"], target["suggestion"]) == (f"{seniority}15", "executive")
    place = f"{target['sheet']}!{target['cell']}"
    fourth = client.post(f"{third}/fixes", data={"csrf": csrf, "apply": place}, follow_redirects=False)
    assert fourth.status_code == 303
    _f4, report4 = _findings(client, fourth.headers["location"])
    assert report4["edits"] == [{"sheet": target["sheet"], "cell": target["cell"], "old": target["value"],
                                 "new": target["suggestion"]}]

    # A value that looks like a formula is written as text, never run; nothing to change is said, not done.
    formula = client.post(f"{third}/fixes", data={"csrf": csrf, f"cell:personas!{seniority}15": "=1+1"},
                          follow_redirects=False)
    assert formula.status_code == 303
    cell = openpyxl.load_workbook(io.BytesIO(client.get(f"{formula.headers['location']}/file").content))[
        "personas"][f"{seniority}15"]
    assert cell.value == "=1+1" and cell.data_type == "s"
    nothing = client.post(f"{third}/fixes", data={"csrf": csrf})
    assert nothing.status_code == 422 and "nothing to change" in nothing.text
    assert client.post(f"{third}/fixes", data={"csrf": "forged", "cell:personas!B5": "x"}).status_code == 403
    # Another tenant cannot revise it.
    other = type(client)(client.app)
    other_csrf = _signed_in(other, keys["other"])
    assert other.post(f"{third}/fixes", data={"csrf": other_csrf, "cell:personas!B5": "x"}).status_code == 404
    # The uploads list shows every version.
    home = client.get("/").text
    assert "(version 3)" in home and "(version 2)" in home and "not approved" in home


def test_a_suggestion_is_taken_with_one_click(portal, raw, tmp_path):
    client, keys, _ = portal
    csrf = _signed_in(client, keys["acme"])
    broken = _acme_personas(raw, tmp_path / "personas.xlsx", rows=5)
    edit_cells(broken, "personas", {"G1": "seniorty_level"})  # a misspelt header: refused, with a suggestion
    first = _upload(client, csrf, broken).headers["location"]
    findings, report = _findings(client, first)
    assert report["refused"] and findings["personas!G1"]["suggestion"] == "seniority_level"
    page = client.get(first).text
    assert 'name="apply" value="personas!G1"' in page
    second = client.post(f"{first}/fixes", data={"csrf": csrf, "apply": "personas!G1"}, follow_redirects=False)
    _f, report2 = _findings(client, second.headers["location"])
    assert not report2["refused"] and report2["edits"][0]["new"] == "seniority_level"
    assert report2["rows"] == {"personas": 5}


def test_a_csv_export_is_fixed_in_the_page_with_its_own_delimiter(portal, raw, tmp_path):
    client, keys, _ = portal
    csrf = _signed_in(client, keys["acme"])
    book = openpyxl.load_workbook(_acme_personas(raw, tmp_path / "p.xlsx", rows=4))["personas"]
    rows = [[c.value for c in r] for r in book.iter_rows()]
    target = tmp_path / "personas.csv"
    with target.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerows(rows)
        writer.writerow(["Not A Key!", *rows[1][1:]])
    first = _upload(client, csrf, target).headers["location"]
    findings, report = _findings(client, first)
    assert "personas!A6" in findings
    second = client.post(f"{first}/fixes", data={"csrf": csrf, "cell:personas!A6": "acme-pharma-persona-csv"},
                         follow_redirects=False).headers["location"]
    _f2, report2 = _findings(client, second)
    assert not [f for f in report2["findings"] if f["severity"] == "failure"], report2["findings"]
    text = client.get(f"{second}/file").content.decode("utf-8")
    assert text.splitlines()[5].startswith("acme-pharma-persona-csv;")


def test_an_export_is_mapped_in_the_page_and_its_mapping_saved(portal, raw, tmp_path):
    client, keys, _ = portal
    csrf = _signed_in(client, keys["acme"])
    export = tmp_path / "notion personas.csv"
    with export.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["Persona ID", "Who", "Job", "Tenant", "Notes"])
        for n in range(1, 7):
            writer.writerow([f"acme-pharma-mapped-{n}", f"Mapped persona {n}", f"Medical lead {n}", "acme-pharma",
                             f"note {n}"])
    with export.open("rb") as stream:
        drafted = client.post("/mappings", data={"csrf": csrf}, files={"file": (export.name, stream)},
                              follow_redirects=False)
    assert drafted.status_code == 303
    page = client.get(drafted.headers["location"]).text
    assert 'id="columns"' in page, page
    entity = re.search(r'name="entity" value="([^"]+)"', page).group(1)
    assert entity == "personas"
    proposed = dict(re.findall(r'name="column:([a-z_]+)">.*?<option value="([^"]*)" selected', page, re.S))
    assert proposed.get("persona_key") == "Persona ID", proposed
    # the steward confirms the proposal and names the two columns no header gave away
    choices = {f"column:{k}": v for k, v in proposed.items()} | {"column:name": "Who", "column:title": "Job"}
    saved = client.post(drafted.headers["location"], data={"csrf": csrf, "entity": entity, **choices},
                        follow_redirects=False)
    assert saved.status_code == 303, saved.text
    _findings_, report = _findings(client, saved.headers["location"])
    assert report["mapping"] and report["workbook"] == "personas.xlsx" and report["rows"] == {"personas": 6}, [f["message"] for f in report["findings"]]
    assert not report["refused"], report["findings"]
    mapping = client.get(f"{saved.headers['location']}/mapping.yaml").text
    assert "Persona ID" in mapping and "entity: personas" in mapping and "Notes" in mapping
    # a draft of another tenant is not reachable
    other = type(client)(client.app)
    _signed_in(other, keys["other"])
    assert other.get(drafted.headers["location"]).status_code == 404


def test_a_deletion_a_failing_key_may_explain_is_held_back_and_shown_beside_it(portal, raw, tmp_path):
    client, keys, url = portal
    _load(url, raw, raw / "org_structure.xlsx", "org_structure.xlsx")
    source = _tenant_copy(raw, "acme-pharma", 6)
    _load(url, raw, source, "personas.xlsx", tenant="acme-pharma")
    # The steward's typo: row 4's key becomes row 5's, so persona-4 vanishes from the file while the typo row
    # (and the row it duplicates) waits in quarantine.
    typo = tmp_path / "personas.xlsx"
    typo.write_bytes(source.read_bytes())
    edit_cells(typo, "personas", {"A4": "acme-pharma-persona-5"})
    csrf = _signed_in(client, keys["acme"])
    upload = _upload(client, csrf, typo).headers["location"]
    preview = client.get(f"{upload}/preview").text
    assert 'id="held-back"' in preview and "acme-pharma-persona-4" in preview, preview
    assert 'id="deletions-personas"' not in preview
    result = _load(url, raw, typo_source := _replace(source, typo), "personas.xlsx", tenant="acme-pharma")
    assert result.tables["personas"].held_back_keys == ["acme-pharma-persona-4"]
    assert _personas(url)["acme-pharma-persona-4"] == ("acme-pharma", False), "held back, not deleted"
    assert any(w.rule == "deletion_held_back_warning" and w.cell == "A4" for w in result.warnings)
    # The key fixed (persona-4 really renamed): now its absence is a deletion.
    edit_cells(typo_source, "personas", {"A4": "acme-pharma-persona-4b"})
    result = _load(url, raw, typo_source, "personas.xlsx", tenant="acme-pharma")
    assert result.tables["personas"].deleted_keys == ["acme-pharma-persona-4"]
    assert _personas(url)["acme-pharma-persona-4"] == ("acme-pharma", True)


def _replace(source: Path, new: Path) -> Path:
    source.write_bytes(new.read_bytes())
    return source


def test_the_quarantine_names_rows_by_key_and_rules_in_words(portal, raw, tmp_path):
    client, keys, url = portal
    _load(url, raw, raw / "org_structure.xlsx", "org_structure.xlsx")
    source = _tenant_copy(raw, "acme-pharma", 4)
    _load(url, raw, source, "personas.xlsx", tenant="acme-pharma")
    edit_cells(source, "personas", {"B4": None, "B5": None, "A5": "acme-pharma-persona-new"})
    _load(url, raw, source, "personas.xlsx", tenant="acme-pharma")
    _signed_in(client, keys["acme"])
    page = client.get("/quarantine").text
    assert "acme-pharma-persona-4" in page and "empty but required" in page, page
    # the waiting row's live version (loaded before) is one click away; a new row has none
    with connect(url) as conn:
        live = conn.execute("select id::text from personas where persona_key = 'acme-pharma-persona-4'").fetchone()[0]
    assert f'<a href="/history/personas/{live}"' in page
    assert client.get(f"/history/personas/{live}").status_code == 200
    assert "<strong>acme-pharma-persona-new</strong>" in page
    assert "tenants/acme-pharma/personas.xlsx" in page, page.split("id=\"quarantine\"")[1]


def test_downloads_are_named_after_the_stewards_file_and_errors_keep_the_way_back(portal, raw, tmp_path):
    client, keys, _ = portal
    csrf = _signed_in(client, keys["acme"])
    broken = _acme_personas(raw, tmp_path / "acme personas.xlsx", rows=3)
    edit_cells(broken, "personas", {"B3": None})
    upload = _upload(client, csrf, broken).headers["location"]
    assert "acme%20personas.annotated.xlsx" in client.get(f"{upload}/annotated.xlsx").headers["content-disposition"]
    assert client.get(f"{upload}/report.json").headers["content-disposition"].startswith("attachment;")
    assert "attachment" not in client.get(upload.replace("/uploads/", "/api/uploads/")).headers.get(
        "content-disposition", "")
    # The annotated copy tells failures (light red) from warnings (amber).
    sheet = openpyxl.load_workbook(io.BytesIO(client.get(f"{upload}/annotated.xlsx").content))["personas"]
    assert sheet["B3"].fill.start_color.rgb == "FFFFC7CE"
    error = client.post(f"{upload}/approve", data={"csrf": "forged"})
    assert error.status_code == 403 and 'href="/quarantine"' in error.text and f'href="{upload}"' in error.text


def test_the_dagster_check_of_a_tenants_file_reports_that_files_own_accounting(fresh_url, raw, tmp_path):
    import dagster as dg

    from vital_pipelines.db.scratch import loader_url
    from vital_pipelines.defs.common.resources import PostgresResource
    from vital_pipelines.defs.registry import assets as registry_assets
    from vital_pipelines.defs.registry.resources import RegistrySource

    _load(fresh_url, raw, raw / "org_structure.xlsx", "org_structure.xlsx")
    source = _tenant_copy(raw, "acme-pharma", 6, foreign_row=5)  # one row names the platform: quarantined
    # approved in the portal as upload U: the check links the steward's report of exactly these bytes
    import hashlib
    import json

    from vital_pipelines.loading.tenant_sources import approval_record

    approval_record(source).parent.mkdir(parents=True, exist_ok=True)
    approval_record(source).write_text(json.dumps({"sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
                                                   "deletions": 0, "upload_id": "20261207T000000-uploadfortest"}))
    resources = {"postgres": PostgresResource(database_url=loader_url(fresh_url)),
                 "registry_source": RegistrySource(raw_dir=str(raw), reports_dir=str(tmp_path / "reports"),
                                                   portal_url="https://portal.example")}
    result = dg.materialize([registry_assets.WORKBOOK_ASSET["personas.xlsx"]], resources=resources,
                            raise_on_error=False)
    assert result.success
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "personas_contract"]
    assert not check.passed
    metadata = {k: v.value for k, v in check.metadata.items()}
    rows = metadata["rows"]
    assert rows["tenants/acme-pharma/personas.xlsx"] == {"rows_in": 6, "loaded": 5, "loaded_with_warnings": 0,
                                                        "quarantined": 1}
    assert rows["platform workbook"]["quarantined"] == 0 and rows["platform workbook"]["rows_in"] > 300
    cells = metadata["failing_cells_table"].records
    assert [(r.data["file"], r.data["cell"]) for r in cells] == [("tenants/acme-pharma/personas.xlsx", "Q5")]
    assert cells[0].data["rule"] == "belongs to another tenant"
    assert metadata["portal_quarantine"] == "https://portal.example/quarantine"
    assert metadata["portal_report tenants/acme-pharma/personas.xlsx"] == \
        "https://portal.example/uploads/20261207T000000-uploadfortest"
    assert "upload it again" in check.description and "annotated copy in the" not in check.description
    assert source.exists()


def test_an_exports_values_are_taught_to_its_mapping_and_go_with_the_approval(portal, raw, tmp_path):
    """A mapped export is not edited: a reference value is remembered in its crosswalk, an allowed value in its
    mapping's synonyms; the approval puts both beside the tenant's export, and the load reads them."""
    from tests.test_portal import EXPORT, MAPPING, _materialize_personas, _live

    client, keys, url = portal
    _load(url, raw, raw / "org_structure.xlsx", "org_structure.xlsx")
    csrf = _signed_in(client, keys["acme"])
    export = EXPORT.replace("BRAND-DIR", "Brand Directr").replace(",Senior\n", ",Seniour\n")
    (tmp_path / "crm.csv").write_text(export)
    (tmp_path / "crm.mapping.yaml").write_text(MAPPING)
    with (tmp_path / "crm.csv").open("rb") as data, (tmp_path / "crm.mapping.yaml").open("rb") as mapping:
        first = client.post("/uploads", data={"csrf": csrf}, follow_redirects=False,
                            files={"file": ("crm.csv", data), "mapping": ("crm.mapping.yaml", mapping)})
    upload = first.headers["location"]
    report = client.get(f"{upload}/report.json").json()
    values = {(f["column"], f["value"]) for f in report["findings"]}
    assert ("role_code", "Brand Directr") in values and ("seniority_level", "Seniour") in values, report["findings"]
    page = client.get(upload).text
    assert "Teach the mapping a value" in page and "New value for" not in page  # no cell of an export is edited
    rule = {f["column"]: f["rule"] for f in report["findings"]}
    taught = client.post(f"{upload}/bulk", data={"csrf": csrf, "sheet": "personas", "column": "role_code",
                                                 "value": "Brand Directr", "rule": rule["role_code"],
                                                 "new": "BRAND-DIR"}, follow_redirects=False).headers["location"]
    taught = client.post(f"{taught}/bulk", data={"csrf": csrf, "sheet": "personas", "column": "seniority_level",
                                                 "value": "Seniour", "rule": rule["seniority_level"],
                                                 "new": "senior"}, follow_redirects=False).headers["location"]
    report = client.get(f"{taught}/report.json").json()
    assert report["version"] == 3 and report["findings"] == [], report["findings"]
    assert [e["remembered_in"] for e in report["edits"]] == ["mapping synonyms"]
    assert "Seniour: senior" in client.get(f"{taught}/mapping.yaml").text
    assert client.post(f"{taught}/approve", data={"csrf": csrf}).status_code == 200
    folder = raw / "tenants" / "acme-pharma"
    assert "Brand Directr: BRAND-DIR" in (folder / "personas_export.crosswalk.yaml").read_text()
    assert (folder / "personas_export.csv").read_text() == export, "the export is kept as exported"
    assert _materialize_personas(url, raw, tmp_path).success
    assert _live(url, "acme-pharma") == {"ana-ruiz", "ben-ode", "cy-lam"}
    with connect(url) as conn:
        rows = dict(conn.execute(
            "select p.persona_key, (r.code, p.seniority_level::text) from personas p "
            "left join org_roles r on r.id = p.role_id where p.persona_key in ('cy-lam', 'ben-ode')").fetchall())
    assert rows == {"cy-lam": ("BRAND-DIR", "head"), "ben-ode": ("SR-BRAND-MGR", "senior")}


def test_an_edited_workbook_is_the_stewards_workbook_plus_the_edits(raw, tmp_path):
    """Only the edited cells change: a formula elsewhere keeps its formula and its value, a cell keeps its style, a
    cell or row the sheet lacks is added in its place, text is escaped; editing a formula cell itself goes through
    openpyxl, whose copy holds the formulas' last values (nothing refused for a formula without one)."""
    import zipfile

    from tests.test_hostile_workbooks import _rewrite
    from vital_pipelines.spreadsheets.edits import CellEdit, EditProblem, apply_edits
    from vital_pipelines.spreadsheets.workbooks import validate_registry_workbook

    workbook = openpyxl.load_workbook(raw / "personas.xlsx")
    workbook["personas"]["C5"] = '=UPPER("msl")'
    workbook["personas"]["B7"] = None
    workbook.save(raw / "personas.xlsx")
    _rewrite(raw / "personas.xlsx", "xl/worksheets/sheet1.xml",
             lambda xml: xml.replace('<c r="C5"><f>UPPER("msl")</f><v></v>',
                                     '<c r="C5" t="str"><f>UPPER("msl")</f><v>MSL</v>'))  # as Excel saves it
    edited = tmp_path / "personas.xlsx"
    edited.write_bytes(apply_edits(raw / "personas.xlsx", [
        CellEdit("personas", "C6", "Medical <Science> & Liaison"), CellEdit("personas", "B7", "Ana Ruiz"),
        CellEdit("personas", "A1", "persona_key"), CellEdit("personas", "D400", "far away")]))
    result = validate_registry_workbook(edited, raw_dir=raw, isolated=False)["personas"]
    titles = dict(result.valid.select("_row", "title").iter_rows())
    names = dict(result.valid.select("_row", "name").iter_rows())
    assert titles[5] == "MSL" and titles[6] == "Medical <Science> & Liaison" and names[7] == "Ana Ruiz"
    assert [w.cell for w in result.warnings if w.rule == "formula"] == ["C5"], "the formula is still there"
    assert 400 in result.rejected["_row"].to_list(), "a row the sheet lacked is added (and read)"
    with zipfile.ZipFile(raw / "personas.xlsx") as before, zipfile.ZipFile(edited) as after:
        assert {i.filename for i in before.infolist()} == {i.filename for i in after.infolist()}
        for name in before.namelist():  # every other part byte for byte
            if name != "xl/worksheets/sheet1.xml":
                assert before.read(name) == after.read(name), name
    sheet = openpyxl.load_workbook(edited)["personas"]
    assert sheet["A1"].font.b and sheet["C5"].value == '=UPPER("msl")' and sheet["D400"].value == "far away"
    # the formula cell itself: through openpyxl, the copy holding values
    on_formula = tmp_path / "on_formula.xlsx"
    on_formula.write_bytes(apply_edits(raw / "personas.xlsx", [CellEdit("personas", "C5", "MSL lead")]))
    result = validate_registry_workbook(on_formula, raw_dir=raw, isolated=False)["personas"]
    assert dict(result.valid.select("_row", "title").iter_rows())[5] == "MSL lead"
    with pytest.raises(EditProblem, match="no sheet"):
        apply_edits(raw / "personas.xlsx", [CellEdit("nowhere", "A1", "x")])
    # a workbook openpyxl cannot read back is refused in one sentence, never a stack trace
    (tmp_path / "broken.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(EditProblem, match="cannot be edited in the page"):
        apply_edits(tmp_path / "broken.xlsx", [CellEdit("personas", "C6", "x")])


def test_the_uploads_list_pages_through_every_upload_newest_first(portal, raw, tmp_path, monkeypatch):
    from vital_pipelines.portal import app as app_module

    monkeypatch.setattr(app_module, "PAGE_SIZE", 2)
    client, keys, _ = portal
    csrf = _signed_in(client, keys["acme"])
    ids = []
    for n in range(3):
        path = _acme_personas(raw, tmp_path / f"upload {n}.xlsx", rows=2)
        ids.append(_upload(client, csrf, path).headers["location"].rsplit("/", 1)[1])
    first, second = client.get("/").text, client.get("/?page=2").text
    assert ids[2] in first and ids[1] in first and ids[0] not in first and 'href="?page=2"' in first
    assert ids[0] in second and ids[2] not in second
    assert first.index(ids[2]) < first.index(ids[1]), "newest first"


def test_an_export_left_unmapped_for_a_week_is_forgotten(tmp_path):
    import os
    import time

    from vital_pipelines.portal.uploads import DRAFT_DAYS, UploadStore

    store = UploadStore(tmp_path / "portal", tmp_path / "raw")
    old = store.save_draft("acme-pharma", b"a,b\n1,2\n", "old.csv")
    folder = tmp_path / "portal" / "acme-pharma" / "drafts" / old
    stale = time.time() - DRAFT_DAYS * 86_400 - 60
    os.utime(folder, (stale, stale))
    recent = store.save_draft("acme-pharma", b"a,b\n1,2\n", "new.csv")
    assert not folder.exists() and store.draft("acme-pharma", recent)[1] == "new.csv"


def test_serve_says_at_start_what_becomes_of_an_approval():
    from tests.test_ui import _free_port
    from vital_pipelines.cli import _runs_readiness

    assert "raw sensor" in _runs_readiness(None) and "DAGSTER_WEBSERVER_URL" in _runs_readiness(None)
    assert "does not answer yet" in _runs_readiness(f"http://127.0.0.1:{_free_port()}")


def test_a_frozen_dagster_costs_the_uploads_list_one_short_wait_and_says_so(fresh_url, raw, tmp_path):
    """Dagster's address accepts connections and never answers (a frozen network path): the list of three approved
    uploads waits for it once (5 s), not once per upload (30 s each before), and the run page says it will look
    again instead of calling the run failed."""
    import time

    from fastapi.testclient import TestClient

    from tests.tcp_proxy import FreezableProxy
    from vital_pipelines.db.scratch import loader_url
    from vital_pipelines.portal.app import PortalSettings, create_app
    from vital_pipelines.portal.keys import create_key

    with connect(fresh_url) as conn:
        key, _ = create_key(conn, "acme-pharma", "Dana (steward)")
    import socket

    dagster = socket.create_server(("127.0.0.1", 0))  # where Dagster listens, behind the path that freezes
    with dagster, FreezableProxy(dagster.getsockname()[1]) as frozen:
        frozen.freeze()
        settings = PortalSettings(database_url=loader_url(fresh_url), portal_dir=tmp_path / "portal", raw_dir=raw,
                                  secret="test", dagster_url=f"http://127.0.0.1:{frozen.port}")
        client = TestClient(create_app(settings))
        csrf = _signed_in(client, key)
        from vital_pipelines.portal.uploads import UploadStore

        store = UploadStore(tmp_path / "portal", raw)
        ids = []
        for n in range(3):
            upload = _upload(client, csrf, _acme_personas(raw, tmp_path / f"p{n}.xlsx", rows=2)).headers["location"]
            ids.append(upload.rsplit("/", 1)[1])
            store.write_state("acme-pharma", ids[-1], {"source": "tenants/acme-pharma/personas.xlsx",
                                                       "sha256": "0" * 64, "run_id": f"run-{n}", "problem": None})
        started = time.time()
        home = client.get("/").text
        waited = time.time() - started
        assert waited < 12, f"the list waited {waited:.1f} s"
        assert home.count("Dagster did not answer just now") == 3, home
        run_page = client.get(f"/uploads/{ids[0]}/run").text
        assert "Dagster did not answer just now" in run_page and 'http-equiv="refresh"' in run_page
        assert "red" not in run_page.split('id="status"')[1].split("</p>")[0]
