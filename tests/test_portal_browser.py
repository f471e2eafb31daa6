"""The steward's loop in Debian's Chromium, against real processes: `vital-pipelines serve`, a Dagster webserver
that runs what the portal launches, and PostgreSQL. Create a key; a request without it is refused; sign in; upload
a workbook whose header is misspelt and read the refusal at its cell; download the annotated copy; upload the fixed
workbook; preview inserts, updates and deletions; approve; follow the run to green; the database holds the fixed
rows; another tenant's key sees none of it. Screenshots of each page go to test-artifacts/portal-*.png."""

from __future__ import annotations

import os
import re
import shutil
import signal
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
from vital_pipelines.spreadsheets.report import RULE_WORDS

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


def _start_world(root: Path, make_schema_database, instance: str, daemon: bool = False):
    url = make_schema_database()
    raw = root / "raw"
    shutil.copytree(config.RAW_DIR, raw, ignore=shutil.ignore_patterns("templates"))
    _load(url, raw, raw / "org_structure.xlsx", "org_structure.xlsx")
    # Acme's stewards loaded ten personas of their own before.
    _load(url, raw, _tenant_copy(raw, "acme-pharma", 10), "personas.xlsx", tenant="acme-pharma")
    home, knowledge = root / "dagster_home", root / "knowledge"
    home.mkdir()
    knowledge.mkdir()
    (home / "dagster.yaml").write_text(instance)
    env = {**os.environ, "DATABASE_URL": loader_url(url), "DATABASE_OWNER_URL": url, "DAGSTER_HOME": str(home),
           "VITAL_RAW_DIR": str(raw), "VITAL_KNOWLEDGE_DIR": str(knowledge), "VITAL_PORTAL_DIR": str(root / "portal"),
           "VITAL_PORTAL_SECRET": "browser-test", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    dagster_port, portal_port = _free_port(), _free_port()
    env["DAGSTER_WEBSERVER_URL"] = f"http://127.0.0.1:{dagster_port}"
    processes = {
        "webserver": subprocess.Popen(["dagster-webserver", "-w", str(config.PROJECT_ROOT / "workspace.yaml"), "-h",
                                       "127.0.0.1", "-p", str(dagster_port)], env=env, cwd=config.PROJECT_ROOT,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True),
        "portal": subprocess.Popen([sys.executable, "-m", "vital_pipelines.cli", "serve", "--port", str(portal_port)],
                                   env=env, cwd=config.PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   start_new_session=True),
    }
    _wait_for(f"http://127.0.0.1:{portal_port}/signin", processes["portal"])
    _wait_for(f"{env['DAGSTER_WEBSERVER_URL']}/server_info", processes["webserver"])
    return {"url": url, "raw": raw, "env": env, "portal": f"http://127.0.0.1:{portal_port}", "processes": processes}


def _stop(processes: dict) -> None:
    """Each process with its children (the code servers Dagster starts hold connections of their own)."""
    for process in processes.values():
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def world(make_schema_database, tmp_path_factory):
    started = _start_world(tmp_path_factory.mktemp("portal_world"), make_schema_database, INSTANCE)
    try:
        yield started
    finally:
        _stop(started["processes"])


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
        assert "Check a file" in page.inner_text("body"), page.inner_text("body")
        _shot(page, "2-home")
        _check_page(page, "home", 1440)

        page.set_input_files("#file", str(broken))
        page.click("button:has-text('Check')")
        page.wait_for_selector("#verdict")
        assert "refused as a whole" in page.inner_text("#verdict")
        findings = page.inner_text("#findings")
        assert "G1" in findings and "did you mean" in findings and "seniority_level" in findings
        _shot(page, "3-refused-header")
        _check_page(page, "report-refused", 1440)
        with page.expect_download() as download:
            page.click("#annotated")
        annotated = tmp_path / "annotated.xlsx"
        download.value.save_as(annotated)
        sheet = openpyxl.load_workbook(annotated)["personas"]
        assert "seniority_level" in sheet["G1"].comment.text and sheet["A1"].comment is None

        page.goto(f"{portal}/")
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
        _check_page(page, "preview", 1440)
        page.click("#approve")
        page.wait_for_selector("#status")
        page.wait_for_selector("text=green: loaded", timeout=240_000)
        _shot(page, "6-green")
        _check_page(page, "run-green", 1440)
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


# Every control has a name a screen reader says: its label, aria-label, or its own text.
UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, button, textarea')].filter(e => {
  if (e.getAttribute('aria-label') || (e.id && document.querySelector(`label[for="${e.id}"]`)) || e.closest('label'))
    return false;
  return !(e.tagName === 'BUTTON' && e.innerText.trim());
}).map(e => e.outerHTML.slice(0, 120))"""


def _tab_to(page, selector: str, presses: int = 400) -> None:
    """Move the focus with the Tab key alone until it is on `selector`: the control is reachable by keyboard."""
    target = page.locator(selector).first.element_handle()
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("(target) => document.activeElement === target", target):
            return
    pytest.fail(f"{selector} was not reached with the Tab key")


def _check_page(page, name: str, width: int) -> None:
    """Labels on every control, no rule identifier or raw timestamp in the title, and at 1440 and 1024 px no sideways
    scroll (a screenshot of each); the walk goes on at `width`."""
    assert page.evaluate(UNLABELLED) == [], name
    title = page.title()
    assert not re.search(r"\d{8}T\d{6}", title) and not set(re.findall(r"[a-z_]+", title)) & set(RULE_WORDS), title
    for each in sorted({1440, 1024, width}):
        page.set_viewport_size({"width": each, "height": 900})
        page.screenshot(path=str(ARTIFACTS / f"portal-workbench-{name}-{each}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= each + 1, f"{name} scrolls sideways at {each} px"
    page.set_viewport_size({"width": width, "height": 900})


def _pharma_solutions_file(raw: Path, target: Path) -> Path:
    """Twelve personas of pharma-solutions with five kinds of mistakes."""
    shutil.copy(raw / "personas.xlsx", target)
    book = openpyxl.load_workbook(target)
    sheet = book["personas"]
    sheet.delete_rows(14, sheet.max_row)
    letter = {c.value: c.column_letter for c in sheet[1]}
    for row in range(2, 14):
        sheet[f"A{row}"] = f"pharma-solutions-persona-{row}"
        sheet[f"{letter['tenant']}{row}"] = "pharma-solutions"
    sheet["B5"] = None  # 1. a required name left empty
    sheet["A7"] = "Not A Key!"  # 2. a key in no key's format
    for row in (8, 9, 10):
        sheet[f"{letter['seniority_level']}{row}"] = "Seinor"  # 3. one misspelt level in three cells
    sheet[f"{letter['visibility']}6"] = "tennant"  # 4. a typo the report can correct
    sheet[f"{letter['tenant']}11"] = "acme-pharma"  # 5. a row naming another tenant
    book.save(target)
    return target


def test_a_steward_fixes_cells_in_the_page_and_the_run_page_says_what_waits(world, tmp_path):
    """At 1024 px, with the keyboard: five kinds of mistakes; two cells fixed in the page, one suggestion taken, one
    column fixed at once; preview, approve: "loaded 11, 1 waiting"; the last cell fixed: green, quarantine empty."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    portal, raw = world["portal"], world["raw"]
    key = _key(world["env"], "pharma-solutions", "Kim (steward)")
    upload = _pharma_solutions_file(raw, tmp_path / "ps personas.xlsx")
    width = 1024
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": width, "height": 800})
        page.goto(f"{portal}/")
        _check_page(page, "sign-in", width)
        _tab_to(page, "#key")
        page.keyboard.type(key)
        page.keyboard.press("Enter")
        page.wait_for_selector("#upload")
        _check_page(page, "home", width)
        page.set_input_files("#file", str(upload))
        _tab_to(page, "#upload button[type=submit]")
        page.keyboard.press("Enter")
        page.wait_for_selector("#verdict")
        _check_page(page, "report-v1", width)
        verdict = page.inner_text("#verdict")
        assert "failure(s) in 4 row(s)" in verdict, verdict
        findings = page.inner_text("#findings")
        for words in ("empty but required", "not in the expected format", "not an allowed value",
                      "belongs to another tenant"):
            assert words in findings, words
        assert "tenant_of_source" not in findings and "allowed_values" not in findings

        # Two cells typed in the page, with the keyboard.
        _tab_to(page, "input[name='cell:personas!B5']")
        page.keyboard.type("Market Access Lead")
        _tab_to(page, "input[name='cell:personas!A7']")
        page.keyboard.press("Control+A")
        page.keyboard.type("pharma-solutions-persona-7")
        page.keyboard.press("Enter")  # submits the fixes (the form's first button is Re-check)
        page.wait_for_selector("text=version 2")
        _check_page(page, "report-v2", width)
        assert "B5" not in page.inner_text("#findings") and "Not A Key!" not in page.inner_text("#findings")

        # One suggestion taken with one key press.
        apply = "button.apply[value='personas!O6']"
        assert "tenant" in page.inner_text(apply)
        _tab_to(page, apply)
        page.keyboard.press("Enter")
        page.wait_for_selector("text=version 3")

        # One misspelt level, three cells, replaced at once with the suggested value.
        bulk = page.locator("form.bulk-fix", has=page.locator("input[name=value][value='Seinor']"))
        assert bulk.locator("input[name=new]").input_value() == "senior"
        _tab_to(page, "form.bulk-fix button")
        page.keyboard.press("Enter")
        page.wait_for_selector("text=version 4")
        _check_page(page, "report-v4", width)
        remaining = page.inner_text("#findings")
        assert "Seinor" not in remaining and "belongs to another tenant" in remaining
        assert "1 failure(s) in 1 row(s)" in page.inner_text("#verdict")

        _tab_to(page, "#preview")
        page.keyboard.press("Enter")
        page.wait_for_selector("#summary")
        _check_page(page, "preview", width)
        assert "1 row(s) would wait in quarantine" in page.inner_text("#would-wait")
        _tab_to(page, "#approve")
        page.keyboard.press("Enter")
        page.wait_for_selector("#status")
        page.wait_for_selector("#status.warning", timeout=240_000)
        status = page.inner_text("#status")
        assert "Loaded 11, 1 waiting in quarantine" in status, status
        assert "green" not in status
        waiting = page.inner_text("#waiting")
        assert "pharma-solutions-persona-11" in waiting and "belongs to another tenant" in waiting, waiting
        _check_page(page, "run-waiting", width)
        approved_report = page.get_attribute("text=The report", "href")
        page.goto(f"{portal}/")
        assert "Loaded 11, 1 waiting in quarantine" in page.inner_text("#uploads"), "the list says what the run page says"
        page.goto(f"{portal}/quarantine")
        _check_page(page, "quarantine", width)
        assert "pharma-solutions-persona-11" in page.inner_text("#quarantine")
        assert "1 row(s) of pharma-solutions wait" in page.inner_text("body")

        # The last fix, made in the approved version's report: green, and nothing waits.
        page.goto(f"{portal}{approved_report}")
        page.wait_for_selector("#verdict")
        page.click("button.apply[value='personas!Q11']")  # the report offers the file's own tenant
        page.wait_for_selector("text=version 5")
        assert "No failures" in page.inner_text("#verdict")
        page.click("#preview")
        page.wait_for_selector("#summary")
        page.click("#approve")
        page.wait_for_selector("#status.ok", timeout=240_000)
        assert "green: loaded 12" in page.inner_text("#status")
        page.goto(f"{portal}/quarantine")
        assert "0 row(s) of pharma-solutions wait" in page.inner_text("body")
        _check_page(page, "quarantine-empty", width)
        # The rest of the house, at the same width: the loads, one load, a row's history, an error.
        page.goto(f"{portal}/loads")
        _check_page(page, "loads", width)
        page.click("#loads tr:nth-child(2) a")
        page.wait_for_selector("#changes")
        _check_page(page, "load", width)
        page.click("#changes a")
        page.wait_for_selector("#history")
        _check_page(page, "history", width)
        page.goto(f"{portal}/uploads/20260101T000000-nosuchuploadxx/preview")
        _check_page(page, "error", width)
        assert "No such upload for your tenant" in page.inner_text("#message")
        assert page.locator("header a[href='/quarantine']").count() == 1, "the error page keeps the navigation"
        assert "Back to the report" not in page.inner_text("body"), "no way back to an upload that is not there"
        browser.close()

    with connect(world["url"]) as conn:
        live = dict(conn.execute(
            "select p.persona_key, p.name from personas p join tenants t on t.id = p.tenant_id "
            "where t.slug = 'pharma-solutions' and p.deleted_at is null").fetchall())
    assert len(live) == 12 and live["pharma-solutions-persona-5"] == "Market Access Lead"
    assert "pharma-solutions-persona-7" in live


def test_a_steward_maps_a_csv_export_in_the_page(world, tmp_path):
    from playwright.sync_api import sync_playwright

    portal = world["portal"]
    key = _key(world["env"], "acme-pharma", "Ana (steward)")
    export = tmp_path / "notion export.csv"
    export.write_text("Persona ID,Who,Job,Seniority,Notes\n" + "".join(
        f"acme-pharma-notion-{n},Notion persona {n},Medical lead {n},Senior,note {n}\n" for n in range(1, 6)),
        encoding="utf-8")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{portal}/")
        page.fill("#key", key)
        page.click("button:has-text('Sign in')")
        page.wait_for_selector("#map-upload")
        page.set_input_files("#export", str(export))
        page.click("#map-upload button")
        page.wait_for_selector("#entity-choice")
        _check_page(page, "map-entity", 1440)
        if page.locator("#refusal").count():  # the file's name says nothing: the steward says which registry
            page.select_option("#entity", "personas")
            page.click("#entity-choice button")
        page.wait_for_selector("#columns")
        _check_page(page, "map", 1440)
        assert page.locator("#entity").input_value() == "personas"
        assert page.locator("#column-persona_key").input_value() == "Persona ID"
        assert page.locator("#column-seniority_level").input_value() == "Seniority"
        page.select_option("#column-name", "Who")
        page.select_option("#column-title", "Job")
        page.click("#save-mapping")
        page.wait_for_selector("#verdict")
        _check_page(page, "mapped-report", 1440)
        assert "No failures" in page.inner_text("#verdict"), page.inner_text("body")
        assert "personas 5" in page.inner_text("body")
        with page.expect_download() as download:
            page.click("#mapping-file")
        mapping = tmp_path / "mapping.yaml"
        download.value.save_as(mapping)
        text = mapping.read_text()
        assert "name: Who" in text and "title: Job" in text and "Notes" in text
        browser.close()


QUEUED_INSTANCE = """
telemetry:
  enabled: false
run_queue:
  dequeue_interval_seconds: 1
"""


def test_a_run_queued_with_no_daemon_is_said_in_words_and_starts_with_the_daemon(make_schema_database, tmp_path):
    """The operator started the webserver only: the run page says within seconds that no daemon runs the queue;
    once `dagster-daemon run` starts, the same page goes green."""
    started = _start_world(tmp_path, make_schema_database, QUEUED_INSTANCE)
    daemon = None
    try:
        portal, env = started["portal"], started["env"]
        key = _key(env, "acme-pharma", "Dana (steward)")
        headers = {"Authorization": f"Bearer {key}"}
        fixed = _workbook(started["raw"], tmp_path / "personas.xlsx",
                          {row: f"acme-pharma-persona-{row}" for row in range(2, 12)}, {"C3": "Head of Access"})
        with fixed.open("rb") as stream:
            upload = requests.post(f"{portal}/api/uploads", headers=headers, files={"file": (fixed.name, stream)},
                                   timeout=60).json()["upload_id"]
        approved = requests.post(f"{portal}/uploads/{upload}/approve", headers=headers, timeout=60)
        assert approved.status_code == 200
        said = time.time()
        while "no Dagster daemon" not in (text := requests.get(f"{portal}/uploads/{upload}/run", headers=headers,
                                                               timeout=30).text):
            assert time.time() - said < 20, text
            time.sleep(0.5)
        assert "dagster-daemon run" in text and "green" not in text
        from vital_pipelines.cli import _runs_readiness

        assert "no daemon runs the queue" in _runs_readiness(env["DAGSTER_WEBSERVER_URL"]), "said at `serve` too"
        daemon = subprocess.Popen(["dagster-daemon", "run", "-w", str(config.PROJECT_ROOT / "workspace.yaml")],
                                  env=env, cwd=config.PROJECT_ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 180
        while "green: loaded" not in (text := requests.get(f"{portal}/uploads/{upload}/run", headers=headers,
                                                           timeout=30).text):
            assert time.time() < deadline, text
            time.sleep(1)
        assert _runs_readiness(env["DAGSTER_WEBSERVER_URL"]).startswith("Approved runs are launched")
    finally:
        if daemon is not None:
            started["processes"]["daemon"] = daemon
        _stop(started["processes"])
