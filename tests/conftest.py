"""Fixtures: a throw-away PostgreSQL database per test session (and fresh ones on demand), never mocks."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo

from vital_pipelines import config
from vital_pipelines.db import connect
from vital_pipelines.db.scratch import create_database, drop_database


@pytest.fixture(scope="session")
def server_url() -> str:
    """The server the tests create databases on, as the schema's owner: TEST_DATABASE_URL, else the pipeline's own
    server."""
    return os.environ.get("TEST_DATABASE_URL") or config.owner_database_url()


@pytest.fixture(scope="session")
def make_database(server_url: str) -> Iterator[Callable[[], str]]:
    """Create empty databases (extensions only) that are dropped when the session ends."""
    created: list[str] = []

    def make() -> str:
        created.append(create_database(server_url, f"vital_test_{os.getpid()}"))
        return created[-1]

    yield make
    for url in created:
        drop_database(url)


@pytest.fixture(scope="session")
def make_schema_database(server_url: str) -> Iterator[Callable[[], str]]:
    """Create databases that hold the whole schema, dropped when the session ends: the schema is applied once, into
    a template database, and each new database is a copy of it (a file copy on the server, not 27 files of DDL)."""
    template = create_database(server_url, f"vital_test_schema_{os.getpid()}", schema_dir=config.SCHEMA_DIR)
    template_name = conninfo.conninfo_to_dict(template)["dbname"]
    created: list[str] = []

    def make() -> str:
        created.append(create_database(server_url, f"vital_test_{os.getpid()}", template=template_name))
        return created[-1]

    yield make
    for url in [*created, template]:
        drop_database(url)


@pytest.fixture(scope="session")
def schema_url(make_schema_database) -> str:
    """A session database with the whole schema."""
    return make_schema_database()


@pytest.fixture
def fresh_url(make_schema_database) -> str:
    """A database of its own with the whole schema, for a test whose loads commit."""
    return make_schema_database()


@pytest.fixture
def raw(tmp_path) -> Path:
    """A copy of raw/ (templates left out) that a test may edit."""
    import shutil

    target = tmp_path / "raw"
    shutil.copytree(config.RAW_DIR, target, ignore=shutil.ignore_patterns("templates"))
    return target


@pytest.fixture
def db(schema_url: str) -> Iterator[psycopg.Connection]:
    """A connection to the session database whose changes are rolled back after the test."""
    conn = connect(schema_url)
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()


@pytest.fixture(scope="session")
def seed_spec() -> str:
    """The schema spec the project is built from (shared/ beside the checkout)."""
    seeds = sorted((config.PROJECT_ROOT.parent / "shared" / "seeds").glob("000_*.txt"))
    if not seeds:
        pytest.fail("the schema spec ../shared/seeds/000_*.txt is missing beside the checkout")
    return Path(seeds[0]).read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def embedder():
    """The default embedding model, loaded once for the whole session (through the resource's process cache)."""
    from vital_pipelines.defs.knowledge.resources import EmbeddingModel

    return EmbeddingModel().embedder
