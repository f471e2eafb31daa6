"""Operations: the file sensors, the nightly schedule, retries of transient database failures (and not of contract
failures), two concurrent loads of one workbook, backfills through the documented CLI commands, and Dagster's
instance storage in PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import yaml

from tests.waiting import wait_until
from tests.workbooks import edit_cells
from vital_pipelines import config
from vital_pipelines.db import connect
from vital_pipelines.db.locks import lock_for_transaction, workbook_lock
from vital_pipelines.defs.common.resources import PostgresResource
from vital_pipelines.defs.common.schedules import knowledge_after_refresh, nightly_refresh
from vital_pipelines.defs.knowledge.partitions import knowledge_documents
from vital_pipelines.defs.knowledge.resources import KnowledgeSource
from vital_pipelines.defs.knowledge.sensors import knowledge_documents_changed
from vital_pipelines.defs.registry import assets as registry_assets
from vital_pipelines.defs.registry.resources import RegistrySource
from vital_pipelines.defs.registry.sensors import raw_workbooks_changed
from vital_pipelines.definitions import defs
from vital_pipelines.loading.registry import load_workbook
from vital_pipelines.spreadsheets.workbooks import validate_registry_workbook
from vital_pipelines.db.scratch import loader_url

REPOSITORY = defs().get_repository_def()


@pytest.fixture
def url(fresh_url) -> str:
    return fresh_url


def _selections(result) -> list[list[str]]:
    return [sorted(k.to_user_string() for k in request.asset_selection) for request in result.run_requests]


def _raw_sensor(instance: dg.DagsterInstance, raw: Path):
    """One tick of the raw sensor over `raw`, given a cursor."""
    source = RegistrySource(raw_dir=str(raw))

    def tick(cursor):
        context = dg.build_sensor_context(instance=instance, cursor=cursor, repository_def=REPOSITORY,
                                          resources={"registry_source": source})
        return raw_workbooks_changed(context)

    return tick


def test_raw_sensor_runs_only_the_changed_workbook_and_its_downstream(raw):
    instance = dg.DagsterInstance.ephemeral()
    tick = _raw_sensor(instance, raw)

    first = tick(None)
    assert _selections(first) == [["agent_profile_embeddings", "agents", "capabilities", "industries",
                                   "jobs_to_be_done", "org_departments", "org_functions", "org_responsibilities",
                                   "org_roles", "personas", "prompts", "skills", "solution_industry_matrix",
                                   "solutions", "templates", "tools"]]
    cursor = first.cursor
    assert not tick(cursor).run_requests, "requested, not launched yet: nothing to add"

    os.utime(raw / "agents.xlsx", (time.time() + 60, time.time() + 60))
    assert not tick(cursor).run_requests, "a newer modification time alone is not a change"

    edit_cells(raw / "personas.xlsx", "personas", {"D2": "Edited by a steward"})
    changed = tick(cursor)
    # the personas, the jobs that name them and the capabilities that name those jobs
    assert _selections(changed) == [["capabilities", "jobs_to_be_done", "personas"]]
    assert changed.run_requests[0].tags["vital/trigger"] == "raw/personas.xlsx"

    edit_cells(raw / "org_structure.xlsx", "roles", {"C2": "Renamed role"})
    org = tick(changed.cursor)
    assert _selections(org) == [["agent_profile_embeddings", "agents", "capabilities", "jobs_to_be_done",
                                 "org_departments", "org_functions", "org_responsibilities", "org_roles", "personas",
                                 "prompts", "solution_industry_matrix", "solutions"]]


def test_raw_sensor_advances_only_past_a_successful_run_and_retries_a_failed_one(raw):
    from vital_pipelines.defs.registry.sensors import NEEDS_STEWARD_TAG
    from vital_pipelines.loading.sources import content_tag
    from vital_pipelines.files import file_sha256

    instance = dg.DagsterInstance.ephemeral()
    tick = _raw_sensor(instance, raw)

    def run(tags: dict, succeed: bool) -> None:
        @dg.asset(name=f"probe_{len(instance.get_runs())}")
        def probe():
            if not succeed:
                raise RuntimeError("the database went away")

        dg.materialize([probe], instance=instance, tags=tags, raise_on_error=False)

    cursor = tick(None).cursor
    edit_cells(raw / "personas.xlsx", "personas", {"D2": "Edited by a steward"})
    first = tick(cursor)
    sha = file_sha256(raw / "personas.xlsx")
    [request] = first.run_requests
    assert request.tags[content_tag("personas.xlsx")] == sha and request.run_key == f"personas.xlsx:{sha}:1"
    run(request.tags, succeed=False)
    second = tick(first.cursor)
    assert [r.run_key for r in second.run_requests] == [f"personas.xlsx:{sha}:2"], "a failed run is tried again"
    run({**request.tags, NEEDS_STEWARD_TAG: "true"}, succeed=False)
    assert not tick(second.cursor).run_requests, "a sheet only the steward can fix is not run again"
    run(request.tags, succeed=True)
    done = tick(second.cursor)
    assert not done.run_requests and json.loads(done.cursor)["loaded"]["personas.xlsx"] == sha


def test_knowledge_sensor_keeps_partitions_and_launches_changed_documents(tmp_path):
    corpus = tmp_path / "knowledge"
    corpus.mkdir()
    for name in ("a.md", "b.md"):
        (corpus / name).write_text(f"# {name}\n\nText of {name}.", encoding="utf-8")
    instance = dg.DagsterInstance.ephemeral()

    def tick(cursor):
        context = dg.build_sensor_context(instance=instance, cursor=cursor, repository_def=REPOSITORY,
                                          resources={"knowledge_source": KnowledgeSource(knowledge_dir=str(corpus))})
        result = knowledge_documents_changed(context)
        if isinstance(result, dg.SensorResult):
            for request in result.dynamic_partitions_requests:
                if isinstance(request, dg.AddDynamicPartitionsRequest):
                    instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
                else:
                    for key in request.partition_keys:
                        instance.delete_dynamic_partition(request.partitions_def_name, key)
        return result

    first = tick(None)
    assert instance.get_dynamic_partitions(knowledge_documents.name) == ["a-md", "b-md"]
    (request,) = first.run_requests
    assert (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]) \
        == ("a-md", "b-md")
    assert isinstance(tick(first.cursor), dg.SkipReason)

    (corpus / "b.md").write_text("# b.md\n\nEdited.", encoding="utf-8")
    edited = tick(first.cursor)
    assert [(r.partition_key, _selections(edited)[0]) for r in edited.run_requests] == [("b-md", ["knowledge_chunks"])]

    (corpus / "a.md").unlink()
    removed = tick(edited.cursor)
    assert instance.get_dynamic_partitions(knowledge_documents.name) == ["b-md"]
    assert _selections(removed) == [["knowledge_sources"]]


def test_nightly_schedule_refreshes_everything_then_every_document(tmp_path):
    (tmp_path / "dagster_home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "dagster_home"))
    instance.add_dynamic_partitions(knowledge_documents.name, ["a-md", "b-md", "c-pdf"])
    context = dg.build_schedule_context(instance=instance, repository_def=REPOSITORY,
                                        scheduled_execution_time=datetime(2026, 11, 28, 2, tzinfo=timezone.utc))
    registry = nightly_refresh(context)
    # The schedule targets a named job (the UI's "Launch all" on a tick launches exactly it).
    assert nightly_refresh.job_name == "refresh_everything" and registry.run_key == "nightly:2026-11-28:registry"
    job = REPOSITORY.get_job("refresh_everything")
    selected = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert {"personas", "knowledge_sources"} <= selected and "knowledge_chunks" not in selected
    # Its success starts one run over every document.
    run = instance.create_run_for_job(job_def=job, run_id="0" * 8 + "-0000-0000-0000-" + "0" * 12, tags={"vital/trigger": "nightly"})
    success = dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_SUCCESS.value, job_name=job.name)
    sensor_context = dg.build_run_status_sensor_context(sensor_name="knowledge_after_refresh", dagster_instance=instance,
                                                        dagster_run=run, dagster_event=success)
    knowledge = knowledge_after_refresh(sensor_context)
    assert knowledge_after_refresh.targets[0].job_name == "embed_knowledge"
    assert (knowledge.tags["dagster/asset_partition_range_start"],
            knowledge.tags["dagster/asset_partition_range_end"]) == ("a-md", "c-pdf")
    assert knowledge.run_key == f"after:{run.run_id}"


def _selections_of(request) -> list[str]:
    return sorted(k.to_user_string() for k in request.asset_selection)


def _registry_resources(url: str, raw: Path, tmp_path: Path, **postgres) -> dict:
    return {"postgres": PostgresResource(database_url=loader_url(url), **postgres),
            "registry_source": RegistrySource(raw_dir=str(raw), reports_dir=str(tmp_path / "reports"),
                                              isolated_reader=False)}


def _retries(result) -> int:
    return sum(e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY for e in result.all_events)


def test_a_lock_timeout_is_retried_with_backoff_until_the_load_succeeds(url, raw, tmp_path):
    resources = _registry_resources(url, raw, tmp_path, lock_timeout_seconds=0.3, retry_backoff_seconds=0.5)
    assert dg.materialize([registry_assets.WORKBOOK_ASSET["org_structure.xlsx"]], resources=resources).success
    blocker = connect(url)
    blocker.execute("lock table personas in access exclusive mode")
    release = threading.Timer(1.2, blocker.rollback)
    release.start()
    try:
        result = dg.materialize([registry_assets.WORKBOOK_ASSET["personas.xlsx"]], resources=resources, raise_on_error=False)
    finally:
        release.join()
        blocker.close()
    assert result.success
    assert _retries(result) >= 1
    with connect(url) as conn:
        assert conn.execute("select count(*) from personas").fetchone()[0] == 335


def test_a_contract_failure_is_never_retried(url, raw, tmp_path):
    edit_cells(raw / "personas.xlsx", "personas", {"O17": "secret"})
    resources = _registry_resources(url, raw, tmp_path, retry_backoff_seconds=0.05)
    assert dg.materialize([registry_assets.WORKBOOK_ASSET["org_structure.xlsx"]], resources=resources).success
    result = dg.materialize([registry_assets.WORKBOOK_ASSET["personas.xlsx"]], resources=resources, raise_on_error=False,
                            run_config={"ops": {"personas": {"config": {"policy": "strict"}}}})
    assert not result.success and _retries(result) == 0
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert "personas.xlsx › personas › O17" in failure.description


def test_two_loads_of_one_workbook_at_once_serialise_to_the_state_of_one(url):
    raw = config.RAW_DIR
    with connect(url) as conn:
        load_workbook(conn, "org_structure.xlsx", validate_registry_workbook(raw / "org_structure.xlsx", raw_dir=raw,
                                                                             isolated=False),
                      source_path=raw / "org_structure.xlsx")
    sheets = validate_registry_workbook(raw / "personas.xlsx", raw_dir=raw, isolated=False)
    holder = connect(url)
    lock_for_transaction(holder, workbook_lock("personas.xlsx"))
    results, errors = [], []

    def load():
        try:
            with connect(url) as conn:
                results.append(load_workbook(conn, "personas.xlsx", sheets, source_path=raw / "personas.xlsx"))
        except Exception as error:  # the assertion below reports it
            errors.append(error)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    with connect(url) as observer:
        for _ in range(100):
            waiting = observer.execute("select count(*) from pg_locks where locktype = 'advisory' and not granted").fetchone()[0]
            if waiting == 2:
                break
            time.sleep(0.05)
    assert waiting == 2, "both loads wait for the lock held by a load already running"
    holder.rollback()
    holder.close()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    inserted = sorted(r.tables["personas"].inserted for r in results)
    unchanged = sorted(r.tables["personas"].unchanged for r in results)
    assert inserted == [0, 335] and unchanged == [0, 335], "the second load found the first one's rows, untouched"
    with connect(url) as conn:
        assert conn.execute("select count(*), count(distinct persona_key) from personas").fetchone() == (335, 335)
        assert conn.execute("select count(*) from pipeline_loads where target = 'personas'").fetchone()[0] == 2


def _cli_env(url: str, home: Path, **extra: str) -> dict:
    home.mkdir(exist_ok=True)
    shutil.copy(config.PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DATABASE_URL": loader_url(url), "DATABASE_OWNER_URL": url, "DAGSTER_HOME": str(home), "HF_HUB_OFFLINE": "1", **extra}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def _dagster(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["dagster", *args, "-m", "vital_pipelines.definitions"], env=env, cwd=config.PROJECT_ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_documented_backfill_commands_reload_chosen_sheets_and_re_embed_the_corpus(url, tmp_path):
    corpus = tmp_path / "knowledge"
    corpus.mkdir()
    for name in ("fda-pre-submission-meetings.md", "orphan-drug-designation.md"):
        shutil.copy(config.KNOWLEDGE_DIR / name, corpus / name)
    env = _cli_env(url, tmp_path / "dagster_home", VITAL_KNOWLEDGE_DIR=str(corpus))

    sheets = _dagster("asset", "materialize", "--select",
                      "database_schema,org_functions,org_departments,org_roles,org_responsibilities,knowledge_sources",
                      env=env)
    assert sheets.returncode == 0, sheets.stderr[-3000:]
    # The document registry and its chunks in one command over a partition range (both single-run).
    backfill = _dagster("asset", "materialize", "--select", "knowledge_sources,knowledge_chunks", "--partition-range",
                        "fda-pre-submission-meetings-md...orphan-drug-designation-md", env=env)
    assert backfill.returncode == 0, backfill.stderr[-3000:]
    again = _dagster("asset", "materialize", "--select", "personas,jobs_to_be_done", env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    with connect(url) as conn:
        assert conn.execute("select count(*) from personas").fetchone()[0] == 335
        assert conn.execute("select count(*) from jobs_to_be_done").fetchone()[0] == 338
        assert conn.execute("select count(distinct source_id) from knowledge_chunks").fetchone()[0] == 2
        loads = conn.execute("select target, inserted, updated from pipeline_loads order by started_at").fetchall()
    assert [(target, inserted > 0, updated) for target, inserted, updated in loads[1:]] == [
        ("personas", True, 0), ("jtbds", True, 0)]
    # The URLs reached the resources through environment variables: no run's config, tags or events hold a password.
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        runs = instance.get_runs()
        assert len(runs) == 3
        for run in runs:
            stored = repr(run.run_config) + repr(run.tags) + "".join(
                repr(entry) for entry in instance.all_logs(run.run_id))
            leak = re.search(r"password\s*=\s*(?!\*\*\*)|:[^:@/\s]+@localhost", stored)
            assert leak is None, stored[max(leak.start() - 300, 0):leak.end() + 100]


def _kill_a_run_holding_the_registry_slot(url: str, env: dict, home: Path, while_running=None) -> dg.DagsterInstance:
    """Start `dagster asset materialize --select personas` while the personas load is kept waiting on its advisory
    lock, let it claim the `registry` pool slot (calling `while_running(instance)` then), and kill it with SIGKILL."""
    holder = connect(url)
    lock_for_transaction(holder, workbook_lock("personas.xlsx"))
    worker = subprocess.Popen(["dagster", "asset", "materialize", "--select", "personas", "-m", "vital_pipelines.definitions"],
                              env=env, cwd=config.PROJECT_ROOT, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        claimed = wait_until(lambda: instance.event_log_storage.get_concurrency_info("registry").claimed_slots,
                             seconds=60, step=0.25)
        assert claimed, "the load holds the pool slot"
        if while_running:
            while_running(instance)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        holder.rollback()
        holder.close()
    return instance


@pytest.mark.slow
def test_a_killed_run_gives_its_pool_slot_back(url, raw, tmp_path):
    from vital_pipelines.defs.common.housekeeping import release_abandoned_runs

    home = tmp_path / "dagster_home"

    def live_runs_are_left_alone(instance):
        assert release_abandoned_runs(instance) == [], "a live run is left alone"

    instance = _kill_a_run_holding_the_registry_slot(url, _cli_env(url, home, VITAL_RAW_DIR=str(raw)), home,
                                                     live_runs_are_left_alone)
    (released,) = release_abandoned_runs(instance)
    assert instance.get_run_by_id(released).status == dg.DagsterRunStatus.FAILURE
    assert not instance.event_log_storage.get_concurrency_info("registry").claimed_slots
    assert release_abandoned_runs(instance) == []


@pytest.mark.slow
def test_after_a_killed_run_a_bare_dagster_materialize_completes(url, raw, tmp_path):
    home = tmp_path / "dagster_home"
    env = _cli_env(url, home, VITAL_RAW_DIR=str(raw))
    _kill_a_run_holding_the_registry_slot(url, env, home)
    again = subprocess.run(["dagster", "asset", "materialize", "--select",
                            "org_functions,org_departments,org_roles,org_responsibilities,personas",
                            "-m", "vital_pipelines.definitions"],
                           env=env, cwd=config.PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "released abandoned run" in again.stderr
    with connect(url) as conn:
        assert conn.execute("select count(*) from personas").fetchone()[0] == 335


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_a_step_dies_with_its_killed_cli_and_the_wrapper_frees_the_slot(url, raw, tmp_path):
    from vital_pipelines.defs.common.housekeeping import release_abandoned_runs

    home = tmp_path / "dagster_home"
    env = _cli_env(url, home, VITAL_RAW_DIR=str(raw))
    holder = connect(url)
    lock_for_transaction(holder, workbook_lock("org_structure.xlsx"))  # the personas load waits inside its step
    cli = subprocess.Popen(["dagster", "asset", "materialize", "--select", "personas", "-m", "vital_pipelines.definitions"],
                           env=env, cwd=config.PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with connect(url, autocommit=True) as observer:
            waiting = wait_until(lambda: observer.execute("select count(*) from pg_locks where locktype = 'advisory' "
                                                          "and not granted").fetchone()[0], seconds=120, step=0.25)
            assert waiting, "the step is waiting inside its load"
            steps = _children(cli.pid)
            assert steps, "the step runs in a child process"
            cli.send_signal(signal.SIGKILL)
            cli.wait()
            alive = wait_until(lambda: [pid for pid in steps if Path(f"/proc/{pid}").exists()
                                        and "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]],
                               lambda pids: not pids, step=0.1)
            assert not alive, "the step process outlived the run that started it"
            sessions = wait_until(lambda: observer.execute(
                "select count(*) from pg_stat_activity where usename = 'vital_loader' and datname = current_database()"
            ).fetchone()[0], lambda n: n == 0, seconds=15, step=0.1)
            assert sessions == 0, "the server ended the dead step's session (client_connection_check_interval)"
    finally:
        if cli.poll() is None:
            cli.kill()
        holder.rollback()
        holder.close()
    instance = dg.DagsterInstance.from_config(str(home))
    assert len(release_abandoned_runs(instance)) == 1
    assert not instance.event_log_storage.get_concurrency_info("registry").claimed_slots
    with connect(url) as conn:
        assert conn.execute("select count(*) from personas").fetchone()[0] == 0
    again = subprocess.run([str(config.PROJECT_ROOT / "scripts" / "materialize"), "--select",
                            "org_functions,org_departments,org_roles,org_responsibilities,personas"],
                           env=env, cwd=config.PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    with connect(url) as conn:
        assert conn.execute("select count(*) from personas").fetchone()[0] == 335


def test_dagster_instance_storage_in_its_own_postgres_database(make_database, tmp_path):
    params = psycopg.conninfo.conninfo_to_dict(make_database())
    storage_url = (f"postgresql+psycopg2://{params.get('user', 'vital')}:{params.get('password', '')}@"
                   f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/{params['dbname']}")
    home = tmp_path / "dagster_pg_home"
    home.mkdir()
    shutil.copy(config.PROJECT_ROOT / "dagster.postgres.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_PG_URL"] = storage_url
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            result = dg.materialize([dg.asset(name="probe")(lambda: 1)], instance=instance)
            assert result.success
            assert instance.get_run_by_id(result.run_id) is not None
    finally:
        del os.environ["DAGSTER_PG_URL"]
    with psycopg.connect(storage_url.replace("+psycopg2", "")) as conn:
        assert conn.execute("select count(*) from runs where run_id = %s", (result.run_id,)).fetchone()[0] == 1
        assert conn.execute("select count(*) from event_logs where run_id = %s", (result.run_id,)).fetchone()[0] > 0


def test_instance_configuration_bounds_the_queue_and_the_pools():
    settings = {}
    for name in ("dagster.yaml", "dagster.postgres.yaml"):
        settings[name] = yaml.safe_load((config.PROJECT_ROOT / name).read_text())
    for text in settings.values():
        assert text["concurrency"]["runs"]["max_concurrent_runs"] >= 1
        assert text["concurrency"]["pools"]["default_limit"] == 1
        assert text["run_monitoring"]["enabled"] and text["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
        assert text["run_retries"]["enabled"]
    pools = {node.name: node.definition.pool for node in defs().resolve_implicit_global_asset_job_def().nodes}
    assert pools["personas"] == pools["agents"] == pools["org_structure"] == pools["agent_profile_embeddings"] == "registry"
    assert pools["knowledge_chunks"] == pools["knowledge_sources"] == "knowledge"


def test_run_retries_retry_crashes_only(tmp_path):
    shutil.copy(config.PROJECT_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
    assert instance.run_retries_retry_on_asset_or_op_failure is False
    with open(config.PROJECT_ROOT / "dagster.postgres.yaml") as postgres_config:
        assert yaml.safe_load(postgres_config)["run_retries"] == yaml.safe_load(
            (config.PROJECT_ROOT / "dagster.yaml").read_text())["run_retries"]


def test_raw_sensor_leaves_a_just_approved_file_to_the_portals_run(raw):
    """The portal writes the approval record, then the file, then launches the run: a sensor tick in between waits
    (the run is on its way) instead of launching a second run of the same content; past the grace it launches."""
    import hashlib

    from tests.test_tenant_sources import _tenant_copy
    from vital_pipelines.loading.tenant_sources import APPROVAL_GRACE_SECONDS, approval_record

    instance = dg.DagsterInstance.ephemeral()
    tick = _raw_sensor(instance, raw)
    cursor = tick(None).cursor
    source = _tenant_copy(raw, "acme-pharma", 5)
    record = approval_record(source)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"sha256": hashlib.sha256(source.read_bytes()).hexdigest(), "deletions": 0,
                                  "upload_id": "20261207T000000-justapproved1"}))
    waiting = tick(cursor)
    assert not waiting.run_requests, "the portal's run is on its way"
    # a record that does not name these bytes (the file was changed since) is no reason to wait
    edit_cells(source, "personas", {"C2": "Changed after the approval"})
    assert _selections(tick(cursor)) and "personas" in _selections(tick(cursor))[0]
    # the approved bytes again, but the approval is older than the grace: the portal's launch did not happen
    record.write_text(json.dumps({"sha256": hashlib.sha256(source.read_bytes()).hexdigest(), "deletions": 0,
                                  "upload_id": "20261207T000000-justapproved1"}))
    assert not tick(cursor).run_requests
    old = time.time() - APPROVAL_GRACE_SECONDS - 1
    os.utime(record, (old, old))
    assert "personas" in _selections(tick(cursor))[0]
