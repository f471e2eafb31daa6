"""Benchmark: a steward's approval in the portal until the run page says what loaded, beside the bare load.

    .venv/bin/python bench/approve_to_green.py [--repeat 3]

What an operator runs per the README: the Dagster webserver and the daemon (the project's dagster.yaml: a run
queue with its daemon), and `vital-pipelines serve`, on a throw-away database with the registries loaded and a copy
of raw/. A tenant's steward (an API key) checks a personas file, previews it and approves it; the clock runs from
the approval to the run page's verdict (green, or "loaded N, M waiting"). The first approval (the webserver's and
the run worker's first imports) is reported apart, after the raw sensor's first run (every registry) finished; then `--repeat` approvals of a file with one more cell changed,
medians printed as JSON, with the preview's time and the bare library load of the same file in this process
(`load_source`), the floor under which no orchestration can go.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402
import requests  # noqa: E402

from bench.steward_loop import _wait_for_quiet  # noqa: E402
from samples.generate import PERSONA_COUNT, _header, _rows, _write, persona_records  # noqa: E402
from vital_pipelines.spreadsheets.contracts import PERSONAS  # noqa: E402
from vital_pipelines import config  # noqa: E402
from vital_pipelines.db import connect  # noqa: E402
from vital_pipelines.db.scratch import loader_url, scratch_database  # noqa: E402
from vital_pipelines.loading.sources import Source, load_source  # noqa: E402
from vital_pipelines.portal.keys import create_key  # noqa: E402


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, seconds: float = 180) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer")


def _personas(target: Path, rows: int, title: str) -> Path:
    """`rows` of the sample personas (`samples.generate`, grown as far as needed) as acme-pharma's own, the first
    retitled: each approval changes one cell."""
    records = persona_records(math.ceil(rows / PERSONA_COUNT))[:rows]
    for n, record in enumerate(records):
        record.update(persona_key=f"acme-pharma-persona-{n + 2}", tenant="acme-pharma")
    records[0]["title"] = title
    _write(target, {PERSONAS.sheet: (_header(PERSONAS), _rows(PERSONAS, records))})
    return target


def _approve(portal: str, headers: dict, path: Path, seconds: float = 300) -> tuple[float, float, str]:
    """(preview seconds, approve → verdict seconds, the verdict's words)."""
    with path.open("rb") as stream:
        upload = requests.post(f"{portal}/api/uploads", headers=headers, files={"file": (path.name, stream)},
                               timeout=120).json()["upload_id"]
    started = time.time()
    requests.get(f"{portal}/uploads/{upload}/preview", headers=headers, timeout=120).raise_for_status()
    previewed = time.time()
    requests.post(f"{portal}/uploads/{upload}/approve", headers=headers, timeout=120, allow_redirects=False)
    approved = time.time()
    deadline = approved + seconds
    while time.time() < deadline:
        page = requests.get(f"{portal}/uploads/{upload}/run", headers=headers, timeout=60).text
        status = re.search(r'<p id="status" class="([a-z]+)"[^>]*>(.*?)</p>', page, re.S)
        if status and status.group(1) in ("ok", "warning", "failure"):
            return previewed - started, time.time() - approved, " ".join(status.group(2).split())
        time.sleep(0.25)
    raise SystemExit("the run page gave no verdict")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", type=int, default=40)
    args = parser.parse_args()
    processes = []
    launched = []
    with tempfile.TemporaryDirectory() as folder, \
            scratch_database(config.owner_database_url(), "vital_bench", schema_dir=config.SCHEMA_DIR) as url:
        folder = Path(folder)
        raw, home = folder / "raw", folder / "home"
        shutil.copytree(config.RAW_DIR, raw, ignore=shutil.ignore_patterns("templates"))
        home.mkdir()
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
        with connect(loader_url(url)) as conn:
            load_source(conn, Source(raw / "org_structure.xlsx", "org_structure.xlsx"), raw_dir=raw, isolated=False)
        with connect(url) as conn:
            key, _ = create_key(conn, "acme-pharma", "bench")
        dagster_port, portal_port = _port(), _port()
        env = {**os.environ, "DATABASE_URL": loader_url(url), "DATABASE_OWNER_URL": url, "DAGSTER_HOME": str(home),
               "VITAL_RAW_DIR": str(raw), "VITAL_KNOWLEDGE_DIR": str(folder / "no_documents"),
               "VITAL_PORTAL_DIR": str(folder / "portal"), "VITAL_PORTAL_SECRET": "bench",
               "DAGSTER_WEBSERVER_URL": f"http://127.0.0.1:{dagster_port}",
               "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
        commands = [["dagster-webserver", "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(dagster_port)],
                    ["dagster-daemon", "run", "-w", str(ROOT / "workspace.yaml")],
                    [sys.executable, "-m", "vital_pipelines.cli", "serve", "--port", str(portal_port)]]
        try:
            for command in commands:
                processes.append(subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL, start_new_session=True))
            portal = f"http://127.0.0.1:{portal_port}"
            _wait(f"{portal}/signin")
            _wait(f"{env['DAGSTER_WEBSERVER_URL']}/server_info")
            headers = {"Authorization": f"Bearer {key}"}
            # the raw sensor's first tick loads every registry: not a steward's approval
            _wait_for_quiet(dg.DagsterInstance.from_config(str(home)))
            first = _approve(portal, headers, _personas(folder / "personas.xlsx", args.rows, "First title"))
            previews, loops, verdicts = [], [], []
            for n in range(args.repeat):
                preview, loop, verdict = _approve(portal, headers, _personas(
                    folder / "personas.xlsx", args.rows, f"Title fixed by a steward ({n})"))
                previews.append(preview)
                loops.append(loop)
                verdicts.append(verdict)
            instance = dg.DagsterInstance.from_config(str(home))
            launched = [(r.tags.get("vital/trigger", "")[:40], r.status.value) for r in instance.get_runs()]
            source = raw / "tenants" / "acme-pharma" / "personas.xlsx"
            _personas(folder / "bare.xlsx", args.rows, "Bare load")
            shutil.copy(folder / "bare.xlsx", source)
            bare = []
            for n in range(args.repeat):
                started = time.time()
                with connect(loader_url(url)) as conn:
                    load_source(conn, Source(source, "personas.xlsx", tenant="acme-pharma"), raw_dir=raw,
                                reload=True)
                bare.append(time.time() - started)
        finally:
            for process in processes:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(timeout=60)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
    print(json.dumps({
        "rows": args.rows, "repeat": args.repeat,
        "first_approve_to_verdict_s": round(first[1], 1),
        "approve_to_verdict_s": round(statistics.median(loops), 1),
        "all_approve_to_verdict_s": [round(x, 1) for x in loops],
        "preview_s": round(statistics.median(previews), 2),
        "bare_load_source_s": round(statistics.median(bare), 2),
        "verdicts": verdicts,
        "runs": launched,
    }, indent=2))


if __name__ == "__main__":
    main()
