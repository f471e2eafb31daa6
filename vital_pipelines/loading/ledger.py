"""What every load leaves behind: a row in pipeline_loads, an audit_log entry, and the quarantine of rejected
spreadsheet rows (resolved when a later load accepts them or the steward removes them)."""

from __future__ import annotations

import json
from collections.abc import Iterable

import psycopg
from psycopg.types.json import Jsonb

from vital_pipelines.loading.upsert import Counts


def record_load(conn: psycopg.Connection, *, load_id: str, target: str, source_file: str, source_sha256: str,
                run_id: str | None, policy: str, counts: Counts, rejected: int, details: dict) -> None:
    conn.execute(
        "insert into pipeline_loads (id, target, source_file, source_sha256, run_id, policy, status, inserted, updated, "
        "unchanged, deleted, rejected, details, finished_at) "
        "values (%s, %s, %s, %s, %s, %s, 'succeeded', %s, %s, %s, %s, %s, %s, clock_timestamp())",
        (load_id, target, source_file, source_sha256, run_id, policy, counts.inserted, counts.updated, counts.unchanged,
         counts.deleted, rejected, Jsonb(details)),
    )
    conn.execute(
        "insert into audit_log (source, action, entity_type, entity_id, details) values ('pipeline', 'load', %s, %s, %s)",
        (target, source_file, Jsonb({"load_id": load_id, "run_id": run_id, "source_sha256": source_sha256, "policy": policy,
                                     "inserted": counts.inserted, "updated": counts.updated,
                                     "unchanged": counts.unchanged, "deleted": counts.deleted,
                                     "rejected": rejected, **details})),
    )


def quarantine(conn: psycopg.Connection, *, target: str, entries: Iterable[dict], run_id: str | None) -> int:
    """Upsert rejected rows: entries carry row_key, source_file, sheet, excel_row, payload, failures."""
    rows = [(target, e["row_key"], e["source_file"], e["sheet"], e["excel_row"], Jsonb(e["payload"]),
             Jsonb(e["failures"]), run_id) for e in entries]
    if not rows:
        return 0
    with conn.cursor() as cursor:
        cursor.executemany(
            "insert into quarantined_rows (target, row_key, source_file, sheet, excel_row, payload, failures, last_run_id) "
            "values (%s, %s, %s, %s, %s, %s, %s, %s) "
            "on conflict (target, row_key) do update set source_file = excluded.source_file, sheet = excluded.sheet, "
            "excel_row = excluded.excel_row, payload = excluded.payload, failures = excluded.failures, "
            "last_seen_at = now(), last_run_id = excluded.last_run_id, resolved_at = null",
            rows,
        )
    return len(rows)


def resolve_quarantine(conn: psycopg.Connection, *, target: str, still_rejected: Iterable[str]) -> int:
    """Every open quarantine entry of `target` that this load did not reject again is resolved."""
    return conn.execute(
        "update quarantined_rows set resolved_at = now() "
        "where target = %s and resolved_at is null and not (row_key = any(%s))",
        (target, list(still_rejected)),
    ).rowcount


def payload_json(record: dict) -> dict:
    return json.loads(json.dumps(record, default=str))


def load_outcome(conn: psycopg.Connection, *, target: str, sha256: str) -> dict[str, int] | None:
    """What the newest successful load of these bytes into `target` did, for a page that must not say green while
    rows wait: rows loaded, loaded with warnings, and the rows of `target` that wait in quarantine now. None when no
    load of these bytes succeeded yet."""
    row = conn.execute("select details -> 'sheets' from pipeline_loads where target = %s and source_sha256 = %s "
                       "and status = 'succeeded' order by finished_at desc limit 1", (target, sha256)).fetchone()
    if row is None:
        return None
    accounts = (row[0] or {}).values()
    waiting = conn.execute("select count(*) from quarantined_rows where target = %s and resolved_at is null",
                           (target,)).fetchone()[0]
    return {"loaded": sum(a.get("loaded", 0) for a in accounts),
            "warned": sum(a.get("loaded_with_warnings", 0) for a in accounts), "waiting": waiting}
