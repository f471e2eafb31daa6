"""The Dagster UI as a steward opens it: the webserver starts from the project's definitions, its GraphQL API lists
every asset, check, schedule and sensor, and a real headless Chromium renders the asset graph and a failed
contract check's metadata. Screenshots are kept in test-artifacts/."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import requests

from tests.workbooks import edit_cells
from vital_pipelines import config
from vital_pipelines.definitions import defs
from vital_pipelines.db.scratch import loader_url

ARTIFACTS = config.PROJECT_ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")]

INVENTORY = """
{ repositoriesOrError { ... on RepositoryConnection { nodes {
    schedules { name } sensors { name }
    assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name } } } }
} } } }
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def webserver(tmp_path_factory, make_schema_database):
    from vital_pipelines.db import connect

    root = tmp_path_factory.mktemp("ui")
    home, raw = root / "dagster_home", root / "raw"
    home.mkdir()
    shutil.copy(config.PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    shutil.copytree(config.RAW_DIR, raw, ignore=shutil.ignore_patterns("templates"))
    edit_cells(raw / "personas.xlsx", "personas", {"O17": "secret"})
    url = make_schema_database()
    env = {**os.environ, "DATABASE_URL": loader_url(url), "DATABASE_OWNER_URL": url, "DAGSTER_HOME": str(home), "VITAL_RAW_DIR": str(raw),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    loaded = subprocess.run(
        ["dagster", "asset", "materialize", "-m", "vital_pipelines.definitions", "--select",
         "org_functions,org_departments,org_roles,org_responsibilities,personas"],
        env=env, cwd=config.PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    # a rejected row makes the contract check red (the screenshot shows it), not the run: the valid rows load
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    port = _free_port()
    server = subprocess.Popen(["dagster-webserver", "-m", "vital_pipelines.definitions", "-h", "127.0.0.1", "-p", str(port)],
                              env=env, cwd=config.PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/server_info", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail(f"dagster-webserver exited: {server.stderr.read().decode()[-2000:]}")
                time.sleep(1)
        else:
            pytest.fail("dagster-webserver did not answer within 120 s")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_graphql_lists_every_asset_check_schedule_and_sensor(webserver):
    response = requests.post(f"{webserver}/graphql", json={"query": INVENTORY}, timeout=60)
    response.raise_for_status()
    (repository,) = response.json()["data"]["repositoriesOrError"]["nodes"]
    served_assets = {"/".join(node["assetKey"]["path"]) for node in repository["assetNodes"]}
    served_checks = {check["name"] for node in repository["assetNodes"]
                     for check in (node["assetChecksOrError"].get("checks") or [])}

    definitions = defs()
    assert served_assets == {key.to_user_string() for key in definitions.resolve_all_asset_keys()}
    assert served_checks == {key.name for key in definitions.get_repository_def().asset_graph.asset_check_keys}
    assert {"personas_contract", "agents_contract", "jtbds_contract", "documents_readable"} <= served_checks
    assert {s["name"] for s in repository["schedules"]} == {s.name for s in definitions.schedules} == {"nightly_refresh"}
    assert {s["name"] for s in repository["sensors"]} == {s.name for s in definitions.sensors} == {
        "raw_workbooks_changed", "knowledge_documents_changed", "knowledge_after_refresh", "alert_on_failed_run",
        "alert_on_failed_checks"}


def _dismiss_welcome_dialog(page) -> None:
    """A fresh browser profile gets Dagster's one-time community dialog; it covers the graph."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.get_by_role("button", name="Skip").click(timeout=8_000)
    except PlaywrightTimeout:
        pass


def test_screenshots_of_the_asset_graph_and_a_failed_contract_check(webserver):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1800, "height": 1300})

        page.goto(f"{webserver}/asset-groups", wait_until="networkidle", timeout=90_000)
        _dismiss_welcome_dialog(page)
        for _ in range(10):  # expand every group box; the expanded layout is kept for the reload, which fits it
            folded = page.locator('[aria-label="unfold_more"]')
            if not folded.count():
                break
            folded.first.click()
            page.wait_for_timeout(500)
        page.reload(wait_until="networkidle")
        page.get_by_text("jobs_to_be_done").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(ARTIFACTS / "asset-graph.png"))
        graph_text = page.inner_text("body")

        page.goto(f"{webserver}/assets/personas?view=checks", wait_until="networkidle", timeout=90_000)
        page.get_by_text("personas_contract").first.wait_for(timeout=60_000)
        page.get_by_text("O17").first.wait_for(timeout=60_000)
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / "personas-contract-check.png"), full_page=True)
        text = page.inner_text("body")
        browser.close()
    assert {"database_schema", "personas", "agents", "knowledge_chunks"} <= set(graph_text.split())
    assert "Failed" in text and "secret" in text and "personas.xlsx" in text
    for name in ("asset-graph.png", "personas-contract-check.png"):
        assert (ARTIFACTS / name).stat().st_size > 20_000
