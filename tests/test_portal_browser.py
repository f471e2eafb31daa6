"""The steward's loop in Debian's Chromium, against real processes: `vital-pipelines serve`, a Dagster webserver
that runs what the portal launches, and PostgreSQL. Create a key; a request without it is refused; sign in; upload
a workbook whose header is misspelt and read the refusal at its cell; download the annotated copy; upload the fixed
workbook; preview inserts, updates and deletions; approve; follow the run to green; the database holds the fixed
rows; another tenant's key sees none of it. Screenshots of each page go to test-artifacts/portal-*.png."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import openpyxl
import pytest
import requests

from tests.test_tenant_sources import _load, _tenant_copy
from tests.test_ui import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, _free_port
from tests.workbooks import edit_cells
from vital_pipelines import config
from vital_pipelines.db import connect
from vital_pipelines.db.scratch import loader_url

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")]

# Runs launched from the webserver start at once (no queue, so no daemon is needed for the test).
INSTANCE = """
telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
"""


def _wait_for(url: str, process: subprocess.Popen, seconds: int = 120) -> None:
    for _ in range(seconds):
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            if process.poll() is not None:
                pytest.fail(f"{process.args[0]} exited: {process.stderr.read().decode()[-2000:]}")
            time.sleep(1)
    pytest.fail(f"{url} did not answer within {seconds} s")


@pytest.fixture
def world(make_schema_database, tmp_path):

    url = make_schema_database()
    raw = tmp_path / "raw"
    shutil.copytree(config.RAW_DIR, raw, ignore=shutil.ignore_patterns("templates"))
    _load(url, raw, raw / "org_structure.xlsx", "org_structure.xlsx")
    # Acme's stewards loaded ten personas of their own before.
    _load(url, raw, _tenant_copy(raw, "acme-pharma", 10), "personas.xlsx", tenant="acme-pharma")
    home, knowledge = tmp_path / "dagster_home", tmp_path / "knowledge"
    home.mkdir()
    knowledge.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE)
    env = {**os.environ, "DATABASE_URL": loader_url(url), "DATABASE_OWNER_URL": url, "DAGSTER_HOME": str(home),
           "VITAL_RAW_DIR": str(raw), "VITAL_KNOWLEDGE_DIR": str(knowledge), "VITAL_PORTAL_DIR": str(tmp_path / "portal"),
           "VITAL_PORTAL_SECRET": "browser-test", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    dagster_port, portal_port = _free_port(), _free_port()
    env["DAGSTER_WEBSERVER_URL"] = f"http://127.0.0.1:{dagster_port}"
    webserver = subprocess.Popen(["dagster-webserver", "-w", str(config.PROJECT_ROOT / "workspace.yaml"), "-h", "127.0.0.1",
                                  "-p", str(dagster_port)], env=env, cwd=config.PROJECT_ROOT,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    portal = subprocess.Popen([sys.executable, "-m", "vital_pipelines.cli", "serve", "--port", str(portal_port)],
                              env=env, cwd=config.PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(f"http://127.0.0.1:{portal_port}/signin", portal)
        _wait_for(f"{env['DAGSTER_WEBSERVER_URL']}/server_info", webserver)
        yield {"url": url, "raw": raw, "env": env, "portal": f"http://127.0.0.1:{portal_port}"}
    finally:
        for process in (portal, webserver):
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _key(env: dict, tenant: str, name: str) -> str:
    created = subprocess.run([sys.executable, "-m", "vital_pipelines.cli", "keys", "create", "--tenant", tenant,
                              "--name", name], env=env, capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


def _workbook(raw: Path, target: Path, rows: dict[int, str], changes: dict[str, object] | None = None) -> Path:
    """Acme's personas: row number -> persona key, then cell changes."""
    shutil.copy(raw / "personas.xlsx", target)
    book = openpyxl.load_workbook(target)
    sheet = book["personas"]
    sheet.delete_rows(len(rows) + 2, sheet.max_row)
    tenant = next(c.column_letter for c in sheet[1] if c.value == "tenant")
    for row, key in rows.items():
        sheet[f"A{row}"] = key
        sheet[f"{tenant}{row}"] = "acme-pharma"
    book.save(target)
    return edit_cells(target, "personas", changes or {})


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"portal-{name}.png"), full_page=True)


def test_a_steward_fixes_a_workbook_and_loads_it_from_the_browser(world, tmp_path):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    portal, raw = world["portal"], world["raw"]
    key = _key(world["env"], "acme-pharma", "Dana (steward)")
    other_key = _key(world["env"], "pharma-solutions", "Lee (steward)")
    assert requests.get(f"{portal}/", timeout=10).status_code == 401
    assert requests.get(f"{portal}/quarantine", timeout=10).status_code == 401

    # Keep personas 2-9 (one with a new title), drop 10 and 11, add two.
    kept = {row: f"acme-pharma-persona-{row}" for row in range(2, 10)}
    fixed_rows = {**kept, 10: "acme-pharma-persona-new-1", 11: "acme-pharma-persona-new-2"}
    broken = _workbook(raw, tmp_path / "acme personas.xlsx", fixed_rows, {"G1": "seniorty_level"})
    fixed = _workbook(raw, tmp_path / "acme personas (fixed).xlsx", fixed_rows, {"C3": "Head of Oncology Marketing"})

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900}, accept_downloads=True)
        page.goto(f"{portal}/")
        _shot(page, "1-sign-in")
        page.fill("#key", key)
        page.click("button:has-text('Sign in')")
        page.wait_for_load_state()
        assert "Check a workbook" in page.inner_text("body"), page.inner_text("body")
        _shot(page, "2-home")

        page.select_option("#workbook", "personas.xlsx")
        page.set_input_files("#file", str(broken))
        page.click("button:has-text('Check')")
        page.wait_for_selector("#verdict")
        assert "refused as a whole" in page.inner_text("#verdict")
        findings = page.inner_text("#findings")
        assert "G1" in findings and "did you mean" in findings and "seniority_level" in findings
        _shot(page, "3-refused-header")
        with page.expect_download() as download:
            page.click("#annotated")
        annotated = tmp_path / "annotated.xlsx"
        download.value.save_as(annotated)
        sheet = openpyxl.load_workbook(annotated)["personas"]
        assert "seniority_level" in sheet["G1"].comment.text and sheet["A1"].comment is None

        page.goto(f"{portal}/")
        page.select_option("#workbook", "personas.xlsx")
        page.set_input_files("#file", str(fixed))
        page.click("button:has-text('Check')")
        page.wait_for_selector("#verdict")
        assert "No failures" in page.inner_text("#verdict")
        _shot(page, "4-fixed-report")
        page.click("#preview")
        page.wait_for_selector("#summary")
        summary = " ".join(page.inner_text("#summary").split())
        assert "personas 2 1 2 7" in summary, summary
        assert "Head of Oncology Marketing" in page.inner_text("body")
        deletions = page.inner_text("#deletions-personas")
        assert "acme-pharma-persona-10" in deletions and "acme-pharma-persona-11" in deletions
        _shot(page, "5-preview")
        page.click("#approve")
        page.wait_for_selector("#status")
        page.wait_for_selector("text=green: loaded", timeout=240_000)
        _shot(page, "6-green")
        run_link = page.get_attribute("#dagster-run", "href")
        assert re.search(r"/runs/[0-9a-f-]{36}$", run_link)

        other = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
        other.goto(f"{portal}/signin")
        other.fill("#key", other_key)
        other.click("button:has-text('Sign in')")
        other.wait_for_load_state()
        assert "acme personas" not in other.inner_text("body") and "None yet." in other.inner_text("body")
        report_url = page.url.rsplit("/run", 1)[0]
        other.goto(report_url)
        assert "No such upload for your tenant" in other.inner_text("body")
        _shot(other, "7-other-tenant")
        browser.close()

    with connect(world["url"]) as conn:
        live = dict(conn.execute(
            "select p.persona_key, p.title from personas p join tenants t on t.id = p.tenant_id "
            "where t.slug = 'acme-pharma' and p.deleted_at is null").fetchall())
    assert set(live) == set(fixed_rows.values())
    assert live["acme-pharma-persona-3"] == "Head of Oncology Marketing"
    assert (raw / "tenants" / "acme-pharma" / "personas.xlsx").read_bytes() == fixed.read_bytes()
    for name in ("1-sign-in", "3-refused-header", "5-preview", "6-green", "7-other-tenant"):
        assert (ARTIFACTS / f"portal-{name}.png").stat().st_size > 10_000
