"""PostgreSQL access: connections with plain-words errors, and the schema migrations runner."""

from vital_pipelines.db.connection import DatabaseUnavailable, connect, redact_url
from vital_pipelines.db.migrations import (
    ChangedMigrationError,
    MigrationResult,
    apply_schema,
    phase_files,
)

__all__ = [
    "ChangedMigrationError",
    "DatabaseUnavailable",
    "MigrationResult",
    "apply_schema",
    "connect",
    "phase_files",
    "redact_url",
]
