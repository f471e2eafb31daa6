"""Launching and following the run that loads one workbook, through the Dagster webserver's GraphQL API."""

from __future__ import annotations

from dataclasses import dataclass

import requests

LOCATION = "vital_pipelines"
JOB = "reload_changed_registries"
FINISHED = {"SUCCESS": "green", "FAILURE": "red", "CANCELED": "red"}

_LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on UnauthorizedError { message }
  }
}
"""

_STATUS = """
query Status($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { status } ... on RunNotFoundError { message } }
}
"""


_DAEMON = """
query Daemon {
  instance { daemonHealth { daemonStatus(daemonType: "QUEUED_RUN_COORDINATOR") { required healthy } } }
}
"""


class RunProblem(RuntimeError):
    """The run could not be launched or followed; the message says why."""


@dataclass(frozen=True)
class RunState:
    run_id: str
    status: str

    @property
    def verdict(self) -> str | None:
        """green, red, or None while it runs."""
        return FINISHED.get(self.status)


# A page that follows a run waits this long for Dagster, then says it did not answer; a launch waits longer.
FOLLOW_TIMEOUT_SECONDS = 5
LAUNCH_TIMEOUT_SECONDS = 30


def _post(base_url: str, query: str, variables: dict, timeout: float = FOLLOW_TIMEOUT_SECONDS) -> dict:
    try:
        response = requests.post(f"{base_url.rstrip('/')}/graphql", json={"query": query, "variables": variables},
                                 timeout=timeout)
        response.raise_for_status()
        body = response.json()
    except (requests.RequestException, ValueError) as error:
        raise RunProblem(f"the Dagster webserver at {base_url} did not answer ({type(error).__name__})") from None
    if body.get("errors"):
        raise RunProblem("; ".join(e.get("message", "") for e in body["errors"]))
    return body["data"]


def launch_workbook_run(base_url: str, workbook: str, *, tags: dict[str, str]) -> str:
    """Launch the run that loads `workbook` (its registry assets); returns the run id."""
    from vital_pipelines.loading.sources import WORKBOOK_ASSETS

    selector = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__", "jobName": JOB,
                "assetSelection": [{"path": [name]} for name in WORKBOOK_ASSETS[workbook]]}
    params = {"selector": selector, "runConfigData": {},
              "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]}}
    result = _post(base_url, _LAUNCH, {"params": params}, timeout=LAUNCH_TIMEOUT_SECONDS)["launchRun"]
    if result["__typename"] != "LaunchRunSuccess":
        detail = result.get("message") or "; ".join(e["message"] for e in result.get("errors", []))
        raise RunProblem(f"Dagster refused the run ({result['__typename']}): {detail}")
    return result["run"]["runId"]


def run_state(base_url: str, run_id: str) -> RunState:
    result = _post(base_url, _STATUS, {"runId": run_id})["runOrError"]
    if result["__typename"] != "Run":
        raise RunProblem(result.get("message") or f"no run {run_id}")
    return RunState(run_id, result["status"])


def queue_has_no_daemon(base_url: str) -> bool:
    """Whether queued runs wait for a daemon that is not running: the instance queues runs (the daemon's run
    coordinator is required) and no healthy daemon has sent its heartbeat."""
    status = _post(base_url, _DAEMON, {})["instance"]["daemonHealth"]["daemonStatus"]
    return bool(status["required"]) and not status["healthy"]
