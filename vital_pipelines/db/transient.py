"""Which database errors are worth retrying: the server went away, a lock or serialization conflict, too many
connections. Anything else (bad data, a missing table, a wrong password) fails the same way every time."""

from __future__ import annotations

import psycopg
from psycopg import errors

from vital_pipelines.db.connection import DatabaseUnavailable

_TRANSIENT_SQLSTATES = {
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "55P03",  # lock_not_available (lock_timeout)
    "53300",  # too_many_connections
    "57P01", "57P02", "57P03",  # admin_shutdown, crash_shutdown, cannot_connect_now
}


def is_transient(error: BaseException) -> bool:
    """True when the same operation may well succeed if tried again shortly."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, DatabaseUnavailable):
            return error.transient
        if isinstance(error, psycopg.Error):
            state = getattr(error, "sqlstate", None)
            if state in _TRANSIENT_SQLSTATES or (state or "").startswith("08"):
                return True
            # A connection lost mid-query has no SQLSTATE: the client raises OperationalError itself.
            if state is None and isinstance(error, psycopg.OperationalError):
                return True
            if isinstance(error, (errors.SerializationFailure, errors.DeadlockDetected, errors.LockNotAvailable)):
                return True
        error = error.__cause__ or error.__context__
    return False
