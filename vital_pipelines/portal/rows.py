"""The rows a steward's pages show, as the steward names them: the tenant's quarantined rows (by key and name, linked
to the live row's history), and the rows a load changed (by their natural keys, not their ids)."""

from __future__ import annotations

import psycopg
from psycopg import sql

from vital_pipelines.entities import ENTITIES
from vital_pipelines.loading.registry import SHEET_TABLES
from vital_pipelines.spreadsheets.contracts import CONTRACTS

PAGE_SIZE = 50

# The registry tables whose rows carry their own id and tenant: the ones a steward can open a history page for.
HISTORY_PAGES = ("org_departments", "org_roles", "org_responsibilities", "personas", "agents", "jobs_to_be_done")


def quarantined(conn, tenant: str, page_number: int, *, target: str | None = None,
                limit: int = PAGE_SIZE) -> tuple[int, list[dict]]:
    """The tenant's open rejected rows, newest first: every row of a tenant's own file (whatever tenant a row names:
    the file, and what it holds, is the file owner's), and the rows of the platform's files that name the tenant (a
    row without a tenant is the platform's). `target`: only the rows of that source."""
    where = ("resolved_at is null and case when target like 'tenants/%%' then split_part(target, '/', 2) "
             "else coalesce(nullif(lower(payload->>'tenant'), ''), 'vital-platform') end = %(tenant)s"
             + (" and target = %(target)s" if target else ""))
    params = {"tenant": tenant, "target": target}
    total = conn.execute(f"select count(*) from quarantined_rows where {where}", params).fetchone()[0]
    rows = conn.execute(
        f"select source_file, sheet, excel_row, failures, last_seen_at, payload from quarantined_rows where {where} "
        "order by last_seen_at desc, source_file, sheet, excel_row limit %(limit)s offset %(offset)s",
        {**params, "limit": limit, "offset": (max(1, page_number) - 1) * limit}).fetchall()
    found = [{"file": f, "sheet": s, "row": r, "failures": failures, "seen": seen, **_named_row(s, payload)}
             for f, s, r, failures, seen, payload in rows]
    links = _live_rows(conn, tenant, {(row["sheet"], row["key_value"]) for row in found if row.get("key_value")})
    for row in found:  # the live row a waiting row would change: a link to its history
        row["history"] = links.get((row["sheet"], row.get("key_value")))
    conn.rollback()
    return total, found


def natural_keys(conn, rows: list[tuple[str, str | None]]) -> dict[tuple[str, str], str]:
    """Changed rows as a steward names them (`sarah-chen-brand-manager`), not by their ids: one query per table."""
    wanted: dict[str, list[str]] = {}
    for table, row_id in rows:
        if row_id:
            wanted.setdefault(table, []).append(row_id)
    names = {}
    for table, ids in wanted.items():
        entity = next((e for e in ENTITIES if e.table == table and not e.links_only), None)
        if entity is None:
            continue
        key = sql.SQL(" || ' / ' || ").join(sql.SQL("{}::text").format(sql.Identifier(k))
                                                   for k in entity.key)
        try:
            with conn.transaction():
                found = conn.execute(sql.SQL("select id::text, {} from {} where id = any(%s::uuid[])").format(
                    key, sql.Identifier(table)), (ids,)).fetchall()
        except psycopg.errors.UndefinedColumn:  # a key the table spells otherwise: the id is said instead
            continue
        names.update({(table, row_id): name for row_id, name in found if name})
    return names


def _live_rows(conn, tenant: str, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(sheet, key) → the history page of the tenant's live row with that key: one query per sheet."""
    keys_by_sheet: dict[str, list[str]] = {}
    for sheet, key in wanted:
        keys_by_sheet.setdefault(sheet, []).append(key)
    links = {}
    for sheet, keys in keys_by_sheet.items():
        contract, table = CONTRACTS.get(sheet), SHEET_TABLES.get(sheet)
        if contract is None or table not in HISTORY_PAGES or len(contract.key) != 1:
            continue
        found = conn.execute(sql.SQL("select r.{key}, r.id::text from {table} r join tenants t on t.id = r.tenant_id "
                                     "where t.slug = %s and r.{key} = any(%s)").format(
            key=sql.Identifier(contract.key[0]), table=sql.Identifier(table)), (tenant, keys)).fetchall()
        links.update({(sheet, key): f"/history/{table}/{row_id}" for key, row_id in found})
    return links


def _named_row(sheet: str, payload: dict | None) -> dict:
    """The quarantined row as a steward knows it: its key and its name (or title), from the values it was read with."""
    contract = CONTRACTS.get(sheet)
    payload = payload or {}
    if contract is None:
        return {"key": None, "label": None}
    label = contract.entity.label if contract.entity else "name"
    return {"key": " / ".join(str(payload.get(k) or "(empty)") for k in contract.key),
            "key_value": payload.get(contract.key[0]) if len(contract.key) == 1 else None,
            "label": payload.get(label) if label not in contract.key else None}
