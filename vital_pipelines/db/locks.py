"""Named transaction-level advisory locks: how loads, knowledge syncs and migrations keep out of each other's way.
A lock is released when its transaction ends, whatever the outcome."""

from __future__ import annotations

import psycopg


def lock_for_transaction(conn: psycopg.Connection, name: str) -> None:
    """Wait for, then hold until the end of the current transaction, the advisory lock called `name`."""
    conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (name,))


def share_for_transaction(conn: psycopg.Connection, name: str) -> None:
    """Wait for, then hold until the end of the current transaction, the advisory lock `name` in shared mode: any
    number of readers hold it together, and `lock_for_transaction` waits for all of them."""
    conn.execute("select pg_advisory_xact_lock_shared(hashtext(%s))", (name,))


def workbook_lock(workbook: str) -> str:
    """The lock every writer of a registry workbook's tables holds: its load, and the agent vectors for agents."""
    return f"vital_pipelines:load:{workbook}"


def knowledge_document_lock(slug: str) -> str:
    return f"vital_pipelines:knowledge:{slug}"


VECTOR_DIMENSION_LOCK = "vital_pipelines:knowledge:dimension"
