"""Throw-away databases for tests and benchmarks: cloned from the `vital_template` database that scripts/setup
creates (extensions already in place), optionally with the schema applied, and dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import psycopg.sql
from psycopg import conninfo

from vital_pipelines.db.connection import connect
from vital_pipelines.db.migrations import apply_schema

TEMPLATE_DATABASE = "vital_template"
LOADER_ROLE = "vital_loader"
SEARCH_ROLE = "vital_search"


def loader_url(url: str) -> str:
    """The same database as the loader role (its password from VITAL_LOADER_PASSWORD, else scripts/setup's)."""
    params = conninfo.conninfo_to_dict(url)
    params.update(user=LOADER_ROLE, password=os.environ.get("VITAL_LOADER_PASSWORD") or LOADER_ROLE)
    return conninfo.make_conninfo(**params)


def search_url(url: str) -> str:
    """The same database as the search role (its password from VITAL_SEARCH_PASSWORD, else scripts/setup's)."""
    params = conninfo.conninfo_to_dict(url)
    params.update(user=SEARCH_ROLE, password=os.environ.get("VITAL_SEARCH_PASSWORD") or SEARCH_ROLE)
    return conninfo.make_conninfo(**params)


def _with_dbname(url: str, dbname: str) -> str:
    return conninfo.make_conninfo(**{**conninfo.conninfo_to_dict(url), "dbname": dbname})


def create_database(server_url: str, prefix: str, *, schema_dir: Path | None = None,
                    template: str = TEMPLATE_DATABASE) -> str:
    """A new database on `server_url`'s server named `<prefix>_<random>`, a copy of `template` (a database nobody is
    connected to); its URL. With `schema_dir`, the schema's phase files are applied to it."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_with_dbname(server_url, "postgres"), autocommit=True) as admin:
        admin.execute(psycopg.sql.SQL("create database {} template {}").format(
            psycopg.sql.Identifier(name), psycopg.sql.Identifier(template)))
    url = _with_dbname(server_url, name)
    if schema_dir is not None:
        with connect(url) as conn:
            apply_schema(conn, schema_dir)
    return url


def drop_database(url: str) -> None:
    name = conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(_with_dbname(url, "postgres"), autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')


@contextmanager
def scratch_database(server_url: str, prefix: str, *, schema_dir: Path | None = None) -> Iterator[str]:
    """`create_database`, dropped again when the block ends."""
    url = create_database(server_url, prefix, schema_dir=schema_dir)
    try:
        yield url
    finally:
        drop_database(url)
