"""The main job from a terminal (`python -m vital_pipelines.run`, what scripts/run calls): one process, a summary
per asset, and a second run that does no work."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from vital_pipelines import config
from vital_pipelines.db import connect
from vital_pipelines.db.scratch import loader_url


def _run(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vital_pipelines.run"], env=env, cwd=config.PROJECT_ROOT,
                          capture_output=True, text=True, timeout=600)


def test_the_main_job_loads_everything_then_a_second_run_does_nothing(fresh_url, tmp_path):
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    for name in sorted(os.listdir(config.KNOWLEDGE_DIR))[:2]:
        shutil.copy(config.KNOWLEDGE_DIR / name, knowledge / name)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(config.PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DATABASE_URL": loader_url(fresh_url), "DATABASE_OWNER_URL": fresh_url,
           "DAGSTER_HOME": str(home), "VITAL_KNOWLEDGE_DIR": str(knowledge)}

    first = _run(env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    lines = {line.split()[0]: line for line in first.stdout.splitlines() if line.startswith("  ")}
    assert "335 inserted" in lines["personas"] and "254 inserted" in lines["agents"]
    assert "254 profile(s) embedded" in lines["agent_profile_embeddings"]
    assert "(2 partitions, one run)" in lines["knowledge_chunks"]
    with connect(fresh_url) as conn:  # the line adds up the partitions' own counts
        chunks = conn.execute("select count(*) from knowledge_chunks").fetchone()[0]
    assert f"  {chunks} chunk(s) embedded, 0 kept" in lines["knowledge_chunks"] and chunks > 2, lines["knowledge_chunks"]
    assert "RUN_SUCCESS" not in first.stdout + first.stderr  # the summary, not Dagster's debug stream

    second = _run(env)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    lines = {line.split()[0]: line for line in second.stdout.splitlines() if line.startswith("  ")}
    for asset in ("org_functions", "org_roles", "personas", "agents", "jobs_to_be_done", "solution_industry_matrix"):
        assert "0 inserted, 0 updated" in lines[asset] and "0 soft-deleted" in lines[asset], lines[asset]
    assert "0 profile(s) embedded, 254 unchanged" in lines["agent_profile_embeddings"]
    assert lines["knowledge_chunks"].split("  ")[-1].startswith("0 chunk(s) embedded")
    assert "embedding model weights loaded: no" in second.stdout
    assert "not read again" in lines["personas"] and "not read again" in lines["agents"]

    # A database that drifted from the sheet is noticed although the sheet did not change: the row is put back.
    with connect(fresh_url) as conn:
        key, name = conn.execute("select persona_key, name from personas order by persona_key limit 1").fetchone()
        conn.execute("update personas set name = 'Edited by hand' where persona_key = %s", (key,))
    third = _run(env)
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
    lines = {line.split()[0]: line for line in third.stdout.splitlines() if line.startswith("  ")}
    assert "0 inserted, 1 updated, 334 unchanged" in lines["personas"], lines["personas"]
    assert "not read again" in lines["agents"] and "not read again" not in lines["jobs_to_be_done"]
    with connect(fresh_url) as conn:
        assert conn.execute("select name from personas where persona_key = %s", (key,)).fetchone()[0] == name
        assert conn.execute("select count(*) from personas where deleted_at is null").fetchone()[0] == 335
