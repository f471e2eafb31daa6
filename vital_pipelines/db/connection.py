"""Opening connections, and turning the ways that fails into one sentence a person can act on."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

import psycopg
from psycopg import conninfo

REQUIRED_EXTENSIONS = ("ltree", "vector")
# A dead or frozen peer is noticed by the kernel's keepalive probes instead of the server default of two hours.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}


class DatabaseUnavailable(RuntimeError):
    """The database cannot be used; the message says what is wrong and how to fix it. `transient` is true when
    the server is down or slow (worth retrying), false for a wrong URL, user, password or database."""

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient


_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s]*@")
_KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact_url(text: str) -> str:
    """`text` (a URL, a conninfo string or a message quoting either) with every password hidden, for messages
    and logs. Any scheme counts: a mistyped `mysql://user:secret@host` is a secret too."""
    return _KEYWORD_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))


class NoAnswer(psycopg.OperationalError):
    """The server sent nothing for longer than the connection's `response_timeout`: the network or the server is
    frozen. The connection is closed (the server ends the session on its own idle timeout)."""


PROBE_AFTER_SECONDS = 20.0
PROBE_CONNECT_SECONDS = 10
PROBE_SETTLE_SECONDS = 5  # an answer sent this recently may still be on its way


class _Watchdog:
    """Asks the server, on a second connection, whether it is still working on a statement whose answer is long in
    coming: a statement that runs is left alone; when the server cannot be reached, or says the session is idle or
    gone, the answer will never come (a frozen network path) and the waiting socket is shut down, which wakes the
    wait at once. Keepalives cannot tell this apart: a frozen proxy's kernel still answers them.

    One thread per connection, started with its first wait, watches every wait of that connection: a wait only
    notes when it began (`waiting`) and clears it, so a statement costs no more than before."""

    def __init__(self, url: str, after: float):
        self.url, self.after = url, after
        self.reason: str | None = None
        self._waiting: tuple[float, int, int] | None = None  # (since, backend pid, socket)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def begin(self, pid: int, socket_fd: int) -> None:
        with self._lock:
            self.reason = None
            self._waiting = (time.monotonic(), pid, socket_fd)
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()

    def end(self) -> None:
        with self._lock:
            self._waiting = None

    def close(self) -> None:
        self._closed.set()

    def _watch(self) -> None:
        while not self._closed.wait(min(self.after / 4, 5.0)):
            with self._lock:
                waiting = self._waiting
            if waiting is None or time.monotonic() - waiting[0] < self.after:
                continue
            reason = self._probe(waiting[1])
            with self._lock:
                if self._waiting != waiting:
                    continue  # the answer came while the server was asked
                if reason is None:
                    self._waiting = (time.monotonic(), waiting[1], waiting[2])  # still running: ask again later
                    continue
                self.reason = reason
                self._waiting = None
            import socket

            try:
                with socket.socket(fileno=os.dup(waiting[2])) as frozen:
                    frozen.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _probe(self, pid: int) -> str | None:
        try:
            with connect(self.url, autocommit=True, connect_timeout=PROBE_CONNECT_SECONDS,
                         response_timeout=PROBE_CONNECT_SECONDS) as probe:
                row = probe.execute("select state, extract(epoch from clock_timestamp() - state_change) "
                                    "from pg_stat_activity where pid = %s", (pid,)).fetchone()
        except (psycopg.Error, DatabaseUnavailable):
            return "a second connection could not reach the server either"
        if row is None:
            return "the server has no such session any more"
        state, since = row
        if state != "active" and (since is None or since > PROBE_SETTLE_SECONDS):
            return f"the server finished the statement {since or 0:.0f} s ago (session {state}) but its answer never arrived"
        return None


class LimitedConnection(psycopg.Connection):
    """A connection whose settings (`limits`: lock_timeout and the like) are applied with `set_config(…, true)` at
    the start of every transaction it begins, never to the session, so that nothing leaks to other clients behind a
    transaction-mode pooler (PgBouncer, Supavisor). With `response_timeout`, waiting longer than that for any answer
    closes the connection and raises `NoAnswer`: keepalives cannot tell a frozen proxy from a slow server."""

    limits: Mapping[str, str] = {}
    response_timeout: float | None = None
    watchdog: _Watchdog | None = None  # set by `connect` with `probe_after`

    def wait(self, gen, interval: float = 0.1, timeout: float | None = None):
        watchdog = self.watchdog
        if watchdog is not None:
            watchdog.begin(self.pgconn.backend_pid, self.pgconn.socket)
        try:
            return super().wait(gen, interval=interval, timeout=timeout or self.response_timeout)
        except psycopg.errors._WaitTimeout:
            self.pgconn.finish()
            raise NoAnswer(f"no answer from the database for {self.response_timeout:.0f} s; the connection was "
                           "closed (a frozen network or server)") from None
        except psycopg.OperationalError:
            if watchdog is None or watchdog.reason is None:
                raise
            self.pgconn.finish()
            raise NoAnswer(f"no answer from the database for {watchdog.after:.0f} s and {watchdog.reason}; the "
                           "connection was closed (a frozen network path)") from None
        finally:
            if watchdog is not None:
                watchdog.end()

    def close(self) -> None:
        if self.watchdog is not None:
            self.watchdog.close()
        super().close()

    def _apply_limits(self) -> None:
        if self.limits:
            with self.cursor() as cursor:
                cursor.execute("select " + ", ".join(["set_config(%s, %s, true)"] * len(self.limits)),
                               [part for item in self.limits.items() for part in item])

    def _starting_transaction(self) -> bool:
        return not self.autocommit and self.info.transaction_status == psycopg.pq.TransactionStatus.IDLE

    @contextmanager
    def transaction(self, *args, **kwargs) -> Iterator[psycopg.Transaction]:
        starting = self._starting_transaction()
        with super().transaction(*args, **kwargs) as tx:
            if starting:
                self._apply_limits()
            yield tx

    def execute(self, query, params=None, **kwargs):
        if self._starting_transaction():
            self._apply_limits()
        return super().execute(query, params, **kwargs)


def _libpq_url(url: str) -> str:
    # SQLAlchemy spells the driver into the scheme; libpq does not accept it.
    return re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", url)


def _explain(url: str, error: Exception) -> str:
    text = str(error)
    try:
        params = conninfo.conninfo_to_dict(_libpq_url(url))
    except psycopg.ProgrammingError:
        params = {}
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    dbname = params.get("dbname") or "(default)"
    user = params.get("user") or "(default)"
    where = f"{host}:{port}"
    if "Connection refused" in text or "No such file or directory" in text:
        return (
            f"PostgreSQL is not accepting connections at {where} ({redact_url(url)}): start the server "
            f"(`pg_ctlcluster 15 main start`, or run scripts/setup) or point DATABASE_URL at a running one."
        )
    if "does not exist" in text and "database" in text:
        return (
            f"The database {dbname!r} does not exist on {where}: run scripts/setup to create it, "
            f"or fix the database name in DATABASE_URL."
        )
    if "password authentication failed" in text or ("role" in text and "does not exist" in text):
        return (
            f"PostgreSQL at {where} refused user {user!r}: check the user name and password in DATABASE_URL "
            f"(scripts/setup creates user 'vital' with password 'vital' locally)."
        )
    if "could not translate host name" in text or "Name or service not known" in text:
        return f"The host {host!r} in DATABASE_URL cannot be resolved: check DATABASE_URL ({redact_url(url)})."
    if "timeout" in text.lower():
        return f"Connecting to PostgreSQL at {where} timed out: check that the server is up and reachable."
    first_line = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return f"Cannot connect to PostgreSQL at {where} ({redact_url(url)}): {redact_url(first_line)}"


def connect(url: str, *, autocommit: bool = False, connect_timeout: int = 10,
            limits: Mapping[str, str] | None = None, response_timeout: float | None = None,
            probe_after: float | None = None, **kwargs) -> LimitedConnection:
    """Open a connection (with TCP keepalives), raising `DatabaseUnavailable` with a plain-words reason on failure.
    `limits` are settings applied to each of its transactions (see `LimitedConnection`). With `probe_after`, a
    statement unanswered that long makes a watchdog ask the server whether it is still working on it (`_Watchdog`)."""
    libpq_url = _libpq_url(url)
    if not re.match(r"^postgres(ql)?://", libpq_url) and "://" in libpq_url:
        raise DatabaseUnavailable(
            f"The database URL {redact_url(url)} is not a PostgreSQL URL: expected "
            f"postgresql://user:password@host:5432/database.")
    try:
        conninfo.conninfo_to_dict(libpq_url)
    except psycopg.ProgrammingError as error:
        raise DatabaseUnavailable(
            f"The database URL {redact_url(url)} is not a valid PostgreSQL URL: expected "
            f"postgresql://user:password@host:5432/database ({redact_url(str(error))})."
        ) from None
    try:
        conn = LimitedConnection.connect(libpq_url, autocommit=autocommit, connect_timeout=connect_timeout,
                                         **{**KEEPALIVES, **kwargs})
    except psycopg.OperationalError as error:
        text = str(error)
        transient = any(marker in text for marker in ("Connection refused", "timeout", "timed out",
                                                       "starting up", "shutting down", "too many clients"))
        raise DatabaseUnavailable(_explain(url, error), transient=transient) from None
    conn.limits = dict(limits or {})
    conn.response_timeout = response_timeout
    if probe_after is not None and response_timeout and probe_after < response_timeout:
        conn.watchdog = _Watchdog(libpq_url, probe_after)
    return conn


def require_extensions(conn: psycopg.Connection, names: Iterable[str] = REQUIRED_EXTENSIONS) -> None:
    """Fail with one sentence when an extension the schema needs is neither installed nor installable."""
    wanted = list(names)
    rows = conn.execute(
        "select name, installed_version is not null from pg_available_extensions where name = any(%s)",
        (wanted,),
    ).fetchall()
    available = {name for name, _installed in rows}
    missing = [name for name in wanted if name not in available]
    if missing:
        hint = (
            "run scripts/setup (it builds pgvector from Debian's source package)"
            if "vector" in missing
            else "install postgresql-contrib"
        )
        raise DatabaseUnavailable(
            f"The PostgreSQL server lacks the extension(s) {', '.join(missing)} that the schema needs: {hint}, "
            f"or on Supabase enable them under Database › Extensions."
        )


def use_vector_types(conn: psycopg.Connection) -> None:
    """Let this connection send and receive pgvector values; registered once per connection (pgvector's
    registration runs four catalog queries each time)."""
    if conn.adapters.types.get("vector") is None:
        from pgvector.psycopg import register_vector

        register_vector(conn)
