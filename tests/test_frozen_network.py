"""A frozen network path fails a load in seconds, not after the statement timeout, while a statement that is merely
slow is left to finish: the client asks the server on a second connection whether it is still working."""

from __future__ import annotations

import threading
import time

from psycopg import conninfo

from tests.tcp_proxy import FreezableProxy
from tests.waiting import wait_until
from vital_pipelines.db import connect
from vital_pipelines.db.connection import NoAnswer
from vital_pipelines.db.scratch import loader_url
from vital_pipelines.db.transient import is_transient
from vital_pipelines.defs.common.resources import PostgresResource
from vital_pipelines.loading.registry import load_workbook
from vital_pipelines.spreadsheets.workbooks import validate_registry_workbook


def _proxied(url: str, proxy: FreezableProxy) -> str:
    return conninfo.make_conninfo(loader_url(url), host="127.0.0.1", port=str(proxy.port))


def test_a_frozen_network_fails_the_load_within_seconds_with_the_default_statement_timeout(fresh_url, raw):
    sheets = {}
    for workbook in ("org_structure.xlsx", "personas.xlsx"):
        sheets[workbook] = validate_registry_workbook(raw / workbook, raw_dir=raw, isolated=False)
    with connect(loader_url(fresh_url)) as conn:
        load_workbook(conn, "org_structure.xlsx", sheets["org_structure.xlsx"], source_path=raw / "org_structure.xlsx")
    server = conninfo.conninfo_to_dict(fresh_url)
    with FreezableProxy(int(server.get("port") or 5432)) as proxy:
        # The defaults (600 s statement timeout, 30 s margin) but the probe after 3 s instead of 20 s.
        resource = PostgresResource(database_url=_proxied(fresh_url, proxy), probe_after_seconds=3)
        blocker = connect(fresh_url)
        blocker.execute("lock table personas in access exclusive mode")
        outcome: dict = {}

        def load():
            try:
                with resource.get_connection() as conn:
                    load_workbook(conn, "personas.xlsx", sheets["personas.xlsx"], source_path=raw / "personas.xlsx")
            except Exception as error:  # asserted below
                outcome["error"] = error
            outcome["at"] = time.monotonic()

        loader = threading.Thread(target=load)
        loader.start()
        with connect(fresh_url, autocommit=True) as observer:
            wait_until(lambda: observer.execute(
                "select count(*) from pg_locks where not granted and relation = 'personas'::regclass").fetchone()[0])
            proxy.freeze()
            frozen_at = time.monotonic()
            loader.join(timeout=60)
            blocker.rollback()
            blocker.close()
            assert not loader.is_alive(), "the load hangs on a frozen network"
            error = outcome.get("error")
            assert isinstance(error, NoAnswer) and is_transient(error)
            assert "could not reach the server" in str(error)
            assert outcome["at"] - frozen_at < 3 + 10 + 5
            # Nothing half-written: the load is one transaction, which never committed (the server ends the
            # session on its idle-in-transaction timeout, and rolls it back).
            assert observer.execute("select count(*) from personas").fetchone()[0] == 0
            assert observer.execute("select count(*) from pipeline_loads where target = 'personas'").fetchone()[0] == 0


def test_a_slow_statement_is_left_to_finish(fresh_url):
    resource = PostgresResource(database_url=loader_url(fresh_url), probe_after_seconds=1)
    started = time.monotonic()
    with resource.get_connection() as conn:
        assert conn.execute("select pg_sleep(4), 42").fetchone()[1] == 42
    assert time.monotonic() - started >= 4
