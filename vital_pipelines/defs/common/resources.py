"""Typed resources: the pipeline's PostgreSQL database, as the loader role (`postgres`) and as the schema's owner
(`schema_owner`). Their URLs come from environment variables through `dg.EnvVar`, so no password reaches run
config, the launchpad or the event log."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import dagster as dg
import psycopg
from pydantic import Field

from vital_pipelines import config
from vital_pipelines.db import connect, redact_url
from vital_pipelines.db.privileges import require_loader_role


class PostgresResource(dg.ConfigurableResource):
    """The target database. `database_url` is bound to an environment variable (`dg.EnvVar`); `role` says what the
    connection is for: `loader` connections refuse a role with more power than a load needs."""

    database_url: str = Field(description="postgresql://user:password@host:port/database (from an environment variable)")
    role: Literal["loader", "owner"] = Field(default="loader", description="loader: registry and knowledge loads; "
                                             "owner: schema changes")
    lock_timeout_seconds: float = Field(
        default=300.0, description="Longest wait for another load's locks before the attempt fails (and is retried).")
    statement_timeout_seconds: float = Field(
        default=600.0, description="Longest run of one statement (lock waits included) before the server stops it.")
    idle_in_transaction_seconds: float = Field(
        default=60.0, description="The server ends a session that sits in an open transaction this long: a client "
                                  "that vanished mid-load (a dead peer, a frozen network) releases its locks.")
    response_margin_seconds: float = Field(
        default=30.0, description="The client gives up on a statement this long after the server should have ended "
                                  "it (a frozen network answers nothing, not even the timeout).")
    probe_after_seconds: float = Field(
        default=20.0, description="A statement unanswered this long makes the client ask the server, on a second "
                                  "connection, whether it is still running; if not, or if the server cannot be "
                                  "reached, the wait ends (a frozen network fails in about 30 s, not 630).")
    retry_backoff_seconds: float = Field(
        default=2.0, description="First wait before retrying a transient database failure; doubles on each retry.")

    @contextmanager
    def get_connection(self) -> Iterator[psycopg.Connection]:
        """A connection that commits on success and rolls back on error; closed on exit. Its settings are applied
        per transaction, never to the session (see `LimitedConnection`)."""
        limits = {
            "lock_timeout": f"{int(self.lock_timeout_seconds * 1000)}ms",
            "statement_timeout": f"{int(self.statement_timeout_seconds * 1000)}ms",
            "idle_in_transaction_session_timeout": f"{int(self.idle_in_transaction_seconds * 1000)}ms",
        }
        conn = connect(self.database_url, limits=limits,
                       response_timeout=self.statement_timeout_seconds + self.response_margin_seconds,
                       probe_after=self.probe_after_seconds)
        if conn.info.server_version >= 140000:
            # A statement waiting on a lock does not notice its client is gone; this makes the server look
            # (PostgreSQL 14 and later).
            conn.limits = {**limits, "client_connection_check_interval": "5s"}
        try:
            if self.role == "loader":
                require_loader_role(conn, self.database_url)
                conn.commit()
            with conn:
                yield conn
        finally:
            conn.close()

    @property
    def display_url(self) -> str:
        return redact_url(self.database_url)


def postgres_from_environment() -> PostgresResource:
    return PostgresResource(database_url=dg.EnvVar(config.LOADER_URL_VARIABLE))


def schema_owner_from_environment() -> PostgresResource:
    return PostgresResource(database_url=dg.EnvVar(config.OWNER_URL_VARIABLE), role="owner")


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"postgres": postgres_from_environment(),
                                     "schema_owner": schema_owner_from_environment()})
