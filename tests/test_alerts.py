"""Alerts reach a webhook the test runs on localhost: exactly one notification for a run whose contract check
failed, one for a failed run, none for a clean run; the token travels as a header and never in the payload."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import pytest

from tests.workbooks import edit_cells
from vital_pipelines.db.scratch import loader_url
from vital_pipelines.defs.common.alerts import AlertWebhook, alert_on_failed_checks, alert_on_failed_run
from vital_pipelines.defs.common.resources import PostgresResource
from vital_pipelines.defs.registry import assets as registry_assets
from vital_pipelines.defs.registry.resources import RegistrySource
from vital_pipelines.defs.schema.assets import database_schema


@pytest.fixture
def receiver():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the standard library's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"auth": self.headers.get("Authorization"), "body": json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


def _run(url: str, raw: Path, tmp_path: Path, instance: dg.DagsterInstance, selection):
    resources = {"postgres": PostgresResource(database_url=loader_url(url)),
                 "schema_owner": PostgresResource(database_url=url, role="owner"),
                 "registry_source": RegistrySource(raw_dir=str(raw), reports_dir=str(tmp_path / "reports"))}
    return dg.materialize(selection, resources=resources, instance=instance, raise_on_error=False)


def _context(instance: dg.DagsterInstance, result, status: dg.DagsterEventType, hook: str):
    run = instance.get_run_by_id(result.run_id)
    [record] = instance.get_records_for_run(result.run_id, of_type=status).records
    return dg.build_run_status_sensor_context(
        sensor_name="alerts", dagster_instance=instance, dagster_run=run,
        dagster_event=record.event_log_entry.dagster_event,
        resources={"alert_webhook": AlertWebhook(url=hook, token="s3cret-token")})


def test_one_notification_for_one_failed_check_and_none_for_a_clean_run(fresh_url, raw, tmp_path, receiver,
                                                                       monkeypatch):
    monkeypatch.setenv("VITAL_PORTAL_URL", "https://portal.example.com/")
    hook, received = receiver
    instance = dg.DagsterInstance.ephemeral()
    everything = [database_schema, registry_assets.WORKBOOK_ASSET["org_structure.xlsx"], registry_assets.WORKBOOK_ASSET["personas.xlsx"]]
    clean = _run(fresh_url, raw, tmp_path, instance, everything)
    assert clean.success
    skipped = alert_on_failed_checks(_context(instance, clean, dg.DagsterEventType.RUN_SUCCESS, hook))
    assert isinstance(skipped, dg.SkipReason) and received == []

    edit_cells(raw / "personas.xlsx", "personas", {"O17": "secret"})
    quarantined = _run(fresh_url, raw, tmp_path, instance, everything)
    assert quarantined.success
    alert_on_failed_checks(_context(instance, quarantined, dg.DagsterEventType.RUN_SUCCESS, hook))
    assert len(received) == 1
    [notification] = received
    assert notification["auth"] == "Bearer s3cret-token"
    body = notification["body"]
    assert body["status"] == "SUCCESS" and [(c["asset"], c["check"]) for c in body["failed_checks"]] == [
        ("personas", "personas_contract")]
    assert "personas › personas_contract" in body["text"] and "s3cret" not in json.dumps(body)
    # the check names the file and its cells; the alert says where a steward sees what waits
    assert "personas.xlsx" in body["text"] and body["portal"] == "https://portal.example.com/quarantine"
    assert "What waits, and the reports: https://portal.example.com/quarantine" in body["text"]


def test_one_notification_for_a_failed_run(fresh_url, raw, tmp_path, receiver):
    hook, received = receiver
    instance = dg.DagsterInstance.ephemeral()
    assert _run(fresh_url, raw, tmp_path, instance, [database_schema, registry_assets.WORKBOOK_ASSET["org_structure.xlsx"]]).success
    edit_cells(raw / "personas.xlsx", "personas", {"G1": "seniorty_level"})
    failed = _run(fresh_url, raw, tmp_path, instance, [registry_assets.WORKBOOK_ASSET["personas.xlsx"]])
    assert not failed.success
    context = _context(instance, failed, dg.DagsterEventType.RUN_FAILURE, hook).for_run_failure()
    alert_on_failed_run(context)
    assert len(received) == 1
    body = received[0]["body"]
    assert body["status"] == "FAILURE" and body["failed_checks"][0]["check"] == "personas_contract"
    assert "was refused" in body["failed_checks"][0]["description"]


def test_an_unreachable_webhook_is_reported_without_its_address_or_token(fresh_url, raw, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    edit_cells(raw / "personas.xlsx", "personas", {"O17": "secret"})
    run = _run(fresh_url, raw, tmp_path, instance,
               [database_schema, registry_assets.WORKBOOK_ASSET["org_structure.xlsx"], registry_assets.WORKBOOK_ASSET["personas.xlsx"]])
    outcome = alert_on_failed_checks(_context(instance, run, dg.DagsterEventType.RUN_SUCCESS,
                                              "http://127.0.0.1:9/hook?key=s3cret"))
    assert isinstance(outcome, dg.SkipReason) and "could not be reached" in outcome.skip_message
    assert "s3cret" not in outcome.skip_message
