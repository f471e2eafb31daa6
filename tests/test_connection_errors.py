"""Database problems surface as one sentence that says what is wrong and how to fix it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from psycopg import conninfo

from vital_pipelines.db import DatabaseUnavailable, connect
from vital_pipelines.db.connection import require_extensions


def _variant(url: str, **changes) -> str:
    params = conninfo.conninfo_to_dict(url)
    params.update(changes)
    return "postgresql://{user}@{host}:{port}/{dbname}".format(
        user=params.get("user", "vital"), host=params.get("host", "localhost"),
        port=params.get("port", 5432), dbname=params.get("dbname", "vital"))


def test_stopped_server_is_explained(server_url):
    with pytest.raises(DatabaseUnavailable, match=r"not accepting connections at localhost:1.*pg_ctlcluster"):
        connect(_variant(server_url, host="localhost", port="1"))


def test_missing_database_is_explained(server_url):
    with pytest.raises(DatabaseUnavailable, match=r"database 'no_such_db_vital' does not exist.*scripts/setup"):
        connect(_variant(server_url, dbname="no_such_db_vital"))


def test_unknown_user_is_explained(server_url):
    with pytest.raises(DatabaseUnavailable, match=r"refused user 'nobody_vital'.*DATABASE_URL"):
        connect(_variant(server_url, user="nobody_vital"))


def test_malformed_url_is_explained():
    with pytest.raises(DatabaseUnavailable, match=r"not a valid PostgreSQL URL"):
        connect("not a url at all")


def test_missing_extension_is_explained(schema_url):
    with connect(schema_url) as conn:
        require_extensions(conn)
        with pytest.raises(DatabaseUnavailable, match=r"lacks the extension\(s\) no_such_extension"):
            require_extensions(conn, ["vector", "no_such_extension"])


def test_cli_prints_one_sentence_not_a_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "vital_pipelines.cli", "schema"],
        env={"DATABASE_OWNER_URL": "postgresql://vital@localhost:1/vital", "PATH": ""},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "not accepting connections" in lines[0]
