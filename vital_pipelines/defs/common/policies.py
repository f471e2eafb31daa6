"""Project-wide run policy: which failures are retried (transient database errors, with exponential backoff) and
which are not (contract failures, configuration errors, refused files)."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from vital_pipelines.db import DatabaseUnavailable
from vital_pipelines.db.privileges import PrivilegedRoleError
from vital_pipelines.db.transient import is_transient
from vital_pipelines.defs.common.resources import PostgresResource

MAX_TRANSIENT_RETRIES = 4


@contextmanager
def database_errors(context: dg.AssetExecutionContext, postgres: PostgresResource) -> Iterator[None]:
    """Transient database failures become a retry after 2, 4, 8, 16 s (`postgres.retry_backoff_seconds`, doubling;
    then a plain failure); an unusable database, or a role with more power than a load needs, fails the step at once."""
    try:
        yield
    except Exception as error:
        if is_transient(error) and context.retry_number < MAX_TRANSIENT_RETRIES:
            wait = postgres.retry_backoff_seconds * 2 ** context.retry_number
            context.log.warning("transient database failure (%s); retrying in %.0f s", _first_line(error), wait)
            raise dg.RetryRequested(max_retries=MAX_TRANSIENT_RETRIES, seconds_to_wait=wait) from error
        if isinstance(error, (DatabaseUnavailable, PrivilegedRoleError)):
            raise dg.Failure(description=str(error), allow_retries=False) from None
        if is_transient(error):
            raise dg.Failure(description=f"Gave up after {MAX_TRANSIENT_RETRIES} retries of a transient database "
                                         f"failure: {_first_line(error)}", allow_retries=False) from error
        raise


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
