"""Applying the SQL phase files in `schema/` in order, once each, tracked by file name and checksum.

A file that was applied and has since changed is refused unless a rebuild is asked for: a rebuild runs
`00_WIPE_DATABASE.sql` first and then every phase file again. The wipe file never runs otherwise.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from vital_pipelines.db.locks import lock_for_transaction

WIPE_FILE = "00_WIPE_DATABASE.sql"
_PHASE_FILE = re.compile(r"^\d{2}_[A-Za-z0-9_]+\.sql$")
_LOCK_KEY = "vital_pipelines:schema"

_CREATE_LEDGER = """
create table if not exists public.schema_migrations (
    filename   text primary key,
    checksum   text not null,
    applied_at timestamptz not null default now(),
    applied_by text not null default current_user
)
"""


class ChangedMigrationError(RuntimeError):
    """A phase file changed after it was applied; applying it again needs an explicit rebuild."""

    def __init__(self, changed: list[str]):
        self.changed = changed
        super().__init__(
            f"Schema file(s) {', '.join(changed)} changed after they were applied to this database. "
            "Applied files are never re-run silently: revert the change, or rebuild the schema "
            "(`vital-pipelines schema --rebuild`, which runs 00_WIPE_DATABASE.sql and drops all pipeline data)."
        )


@dataclass(frozen=True)
class MigrationResult:
    applied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    wiped: bool = False


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def phase_files(schema_dir: Path) -> list[Path]:
    """The phase files in the order they apply, the wipe file excluded."""
    files = sorted(p for p in schema_dir.iterdir() if _PHASE_FILE.match(p.name))
    return [p for p in files if p.name != WIPE_FILE]


def _run_file(conn: psycopg.Connection, path: Path) -> None:
    try:
        conn.execute(path.read_text(encoding="utf-8"))
    except psycopg.Error as error:
        raise RuntimeError(f"{path.name} failed: {error}".strip()) from error


def apply_schema(conn: psycopg.Connection, schema_dir: Path, *, rebuild: bool = False) -> MigrationResult:
    """Apply every phase file that is new, in one transaction; see the module docstring for changed files."""
    files = phase_files(schema_dir)
    with conn.transaction():
        lock_for_transaction(conn, _LOCK_KEY)
        conn.execute(_CREATE_LEDGER)
        ledger = dict(conn.execute("select filename, checksum from public.schema_migrations").fetchall())
        sums = {p.name: checksum(p) for p in files}
        changed = [name for name, digest in sums.items() if name in ledger and ledger[name] != digest]
        if changed and not rebuild:
            raise ChangedMigrationError(changed)
        if rebuild:
            _run_file(conn, schema_dir / WIPE_FILE)
            conn.execute("delete from public.schema_migrations")
            ledger = {}
        applied, unchanged = [], []
        for path in files:
            if ledger.get(path.name) == sums[path.name]:
                unchanged.append(path.name)
                continue
            _run_file(conn, path)
            conn.execute(
                "insert into public.schema_migrations (filename, checksum) values (%s, %s)",
                (path.name, sums[path.name]),
            )
            applied.append(path.name)
    return MigrationResult(applied=applied, unchanged=unchanged, wiped=rebuild)
