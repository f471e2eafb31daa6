"""Alerts: a failed run, or a run whose contract checks failed, is posted to a webhook.

Configured by environment variables, read through `dg.EnvVar` so that neither the address nor the token appears in
run configuration or the launchpad: `VITAL_ALERT_WEBHOOK_URL` (required to send anything) and
`VITAL_ALERT_WEBHOOK_TOKEN` (optional, sent as a bearer token). `DAGSTER_WEBSERVER_URL`, when set, adds a link to
the run. One notification per run: a failed run lists its failed checks; a successful run with failed checks lists
those.
"""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field

from vital_pipelines.notify import NotificationError, Webhook


class AlertWebhook(dg.ConfigurableResource):
    url: str | None = Field(default=None, description="Where alerts are posted (from VITAL_ALERT_WEBHOOK_URL).")
    token: str | None = Field(default=None, description="Bearer token for the webhook (VITAL_ALERT_WEBHOOK_TOKEN).")

    def webhook(self) -> Webhook | None:
        return Webhook(self.url, self.token) if self.url else None


def alert_webhook_from_environment() -> AlertWebhook:
    return AlertWebhook(
        url=dg.EnvVar("VITAL_ALERT_WEBHOOK_URL") if os.environ.get("VITAL_ALERT_WEBHOOK_URL") else None,
        token=dg.EnvVar("VITAL_ALERT_WEBHOOK_TOKEN") if os.environ.get("VITAL_ALERT_WEBHOOK_TOKEN") else None)


def failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[dict]:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    found = []
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        if not evaluation.passed:
            found.append({"asset": evaluation.asset_key.to_user_string(), "check": evaluation.check_name,
                          "description": evaluation.description or ""})
    return found


def _payload(run: dg.DagsterRun, status: str, checks: list[dict]) -> dict:
    base = os.environ.get("DAGSTER_WEBSERVER_URL")
    link = f"{base.rstrip('/')}/runs/{run.run_id}" if base else None
    headline = (f"Run {run.run_id[:8]} of {run.job_name} failed" if status == "FAILURE"
                else f"{len(checks)} contract check(s) failed in run {run.run_id[:8]} of {run.job_name}")
    lines = [headline] + [f"• {c['asset']} › {c['check']}: {c['description'][:300]}" for c in checks]
    trigger = run.tags.get("vital/trigger")  # which file, and for a portal approval which tenant and steward
    if trigger:
        lines.append(f"Started by: {trigger}")
    if link:
        lines.append(link)
    portal = os.environ.get("VITAL_PORTAL_URL")
    # where a steward sees what waits (their tenant's rows only) and fixes it
    portal_link = f"{portal.rstrip('/')}/quarantine" if portal else None
    if portal_link:
        lines.append(f"What waits, and the reports: {portal_link}")
    return {"text": "\n".join(lines), "run_id": run.run_id, "job": run.job_name, "status": status,
            "failed_checks": checks, "link": link, "trigger": trigger, "portal": portal_link}


def _send(context, alert_webhook: AlertWebhook, payload: dict):
    webhook = alert_webhook.webhook()
    if webhook is None:
        return dg.SkipReason("no alert webhook configured (VITAL_ALERT_WEBHOOK_URL)")
    try:
        webhook.send(payload)
    except NotificationError as error:
        context.log.warning("alert for run %s not delivered: %s", payload["run_id"], error)
        return dg.SkipReason(f"alert not delivered: {error}")
    return None


@dg.run_failure_sensor(default_status=dg.DefaultSensorStatus.RUNNING, monitor_all_code_locations=False,
                       description="Posts a failed run (with its failed checks) to the alert webhook.")
def alert_on_failed_run(context: dg.RunFailureSensorContext, alert_webhook: AlertWebhook):
    run = context.dagster_run
    return _send(context, alert_webhook, _payload(run, "FAILURE", failed_checks(context.instance, run.run_id)))


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, default_status=dg.DefaultSensorStatus.RUNNING,
                      description="Posts a successful run whose contract checks failed (rows quarantined) to the "
                                  "alert webhook.")
def alert_on_failed_checks(context: dg.RunStatusSensorContext, alert_webhook: AlertWebhook):
    run = context.dagster_run
    checks = failed_checks(context.instance, run.run_id)
    if not checks:
        return dg.SkipReason(f"run {run.run_id[:8]}: every check passed")
    return _send(context, alert_webhook, _payload(run, "SUCCESS", checks))


@dg.definitions
def alerts() -> dg.Definitions:
    return dg.Definitions(sensors=[alert_on_failed_run, alert_on_failed_checks],
                          resources={"alert_webhook": alert_webhook_from_environment()})
