"""Typed resources: the pipeline's PostgreSQL database."""


from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg
from pydantic import Field

from vital_pipelines import config
from vital_pipelines.db import connect, redact_url


class PostgresResource(dg.ConfigurableResource):
    """The target database. `database_url` comes from DATABASE_URL, else the local default."""

    database_url: str = Field(description="postgresql://user:password@host:port/database")
    lock_timeout_seconds: float = Field(
        default=300.0, description="Longest wait for another load's locks before the attempt fails (and is retried).")
    retry_backoff_seconds: float = Field(
        default=2.0, description="First wait before retrying a transient database failure; doubles on each retry.")

    @contextmanager
    def get_connection(self) -> Iterator[psycopg.Connection]:
        """A connection that commits on success and rolls back on error; closed on exit."""
        conn = connect(self.database_url)
        conn.execute("select set_config('lock_timeout', %s, false)", (f"{int(self.lock_timeout_seconds * 1000)}ms",))
        conn.commit()
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    @property
    def display_url(self) -> str:
        return redact_url(self.database_url)


def postgres_from_environment() -> PostgresResource:
    return PostgresResource(database_url=config.database_url())


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"postgres": postgres_from_environment()})
