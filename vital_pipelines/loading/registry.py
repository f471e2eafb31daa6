"""Loading the registry workbooks: org structure, personas, agents, JTBDs, and the solution × industry matrix.

Each `load_*` function takes validated sheets and writes them in the caller's transaction, in foreign-key order,
returning per-table counts. `load_workbook` wraps one workbook's load: advisory lock, tenant resolution,
strict/quarantine policy, the ledger and the quarantine.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import polars as pl
import psycopg
from psycopg import sql

from vital_pipelines.db.locks import lock_for_transaction, share_for_transaction, workbook_lock
from vital_pipelines.files import file_sha256
from vital_pipelines.loading import ledger
from vital_pipelines.loading.fingerprint import database_fingerprint, unchanged_load
from vital_pipelines.loading.tenant_sources import own_tenant, rows_of_other_tenants
from vital_pipelines.entities import BY_SHEET, ENTITIES, Entity, workbook_entities
from vital_pipelines.loading.entity_load import DERIVED_LINKS, load_entity
from vital_pipelines.loading.upsert import (
    PLATFORM_TENANT_SLUG, Counts, Provenance, deterministic_id, stage, sync_links, tenant_ids_by_slug,
    tune_for_bulk_load, upsert,
)
from vital_pipelines.spreadsheets.reader import ROW
from vital_pipelines.spreadsheets import normalise
from vital_pipelines.spreadsheets.validation import Failure, ReferenceIndex, ValidatedSheet, singular
from vital_pipelines.spreadsheets.workbooks import UPSTREAM

POLICIES = ("quarantine", "strict")
DEFAULT_MAX_DELETE_SHARE = 0.5


class ContractViolation(RuntimeError):
    """Policy `strict` and at least one rejected row: nothing was written."""

    def __init__(self, failures: list[Failure]):
        self.failures = failures
        shown = "; ".join(f"{f.location}: {f.message}" for f in failures[:5])
        more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
        super().__init__(f"{len(failures)} contract failure(s), nothing written (policy strict): {shown}{more}")


@dataclass
class LoadResult:
    workbook: str
    source_sha256: str
    tables: dict[str, Counts] = field(default_factory=dict)
    rejected: int = 0
    failures: list[Failure] = field(default_factory=list)
    warnings: list[Failure] = field(default_factory=list)
    accounts: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped_since: str | None = None  # the load whose result this repeats: the source was not read again

    @property
    def total(self) -> Counts:
        total = Counts()
        for counts in self.tables.values():
            total = total.add(counts)
        return total


def load_sheets(conn, workbook: str, sheets: dict[str, ValidatedSheet], tenants: dict[str, str], *, max_share: float,
                rejected_keys: dict[str, list[tuple]], load: Provenance):
    """The workbook's sheets that `sheets` holds (all of a workbook; one from a mapped export), entity by entity in
    load order (see entity_load), each followed by the junctions its rows imply."""
    counts: dict[str, Counts] = {}
    failures: list[Failure] = []
    warnings: list[Failure] = []
    for entity in workbook_entities()[workbook]:
        if entity.sheet not in sheets:
            continue
        tables, failed, warned = load_entity(conn, entity, sheets[entity.sheet], tenants, max_share=max_share,
                                             rejected_keys=rejected_keys, load=load)
        counts.update(tables)
        failures += failed
        warnings += warned
        for junction, owner, other, rows in DERIVED_LINKS.get(entity.sheet, ()):
            conn.execute(sql.SQL("create temp table {link} on commit drop as ").format(
                link=sql.Identifier(f"link_{junction}")) + sql.SQL(rows))
            counts[junction] = sync_links(conn, junction, owner, other, f"link_{junction}")
    return counts, failures, warnings


def load_matrix(conn, sheets, tenants, *, max_share, rejected_keys, load):
    platform = tenants[PLATFORM_TENANT_SLUG]
    frame = sheets["matrix"].valid
    frame = frame.with_columns(pl.Series("id", [str(deterministic_id("solution_industry_matrix", s, i))
                                                for s, i in zip(frame["solution_code"], frame["industry_code"])],
                                         dtype=pl.Utf8))
    n = stage(conn, "stage_matrix", frame, {"id": "uuid", "solution_code": "text", "industry_code": "text",
                                            "is_available": "boolean", "fit_score": "int"})
    select = sql.SQL(
        "select s.id, (select x.id from solutions x where x.code = s.solution_code and x.owner_tenant_id = %(platform)s::uuid), "
        "(select i.id from industries i where i.code = s.industry_code), s.is_available, s.fit_score "
        "from stage_matrix s order by s.solution_code, s.industry_code")
    counts = upsert(conn, "solution_industry_matrix", ["solution_id", "industry_id"],
                             ["id", "solution_id", "industry_id", "is_available", "fit_score"], select,
                             soft_delete=False, staged=n, params={"platform": platform})
    return {"solution_industry_matrix": counts}, [], []


def _loader(workbook: str):
    if workbook == "solution_industry_matrix.xlsx":
        return load_matrix
    return lambda conn, sheets, tenants, **options: load_sheets(conn, workbook, sheets, tenants, **options)


def _row_key(result: ValidatedSheet, record: dict) -> str:
    """One quarantine entry per sheet row: the natural key (when the row has one) and the Excel row, so that two
    rows with the same key are kept apart."""
    key = [str(record.get(k) or "") for k in result.contract.key]
    return f"{'|'.join(key) if all(key) else ''}@{record[ROW]}"


def _unique_sets(conn, table: str, natural: set[str]) -> list[tuple[tuple[str, ...], bool]]:
    """The table's unique constraints and indexes other than its id and natural key: (columns, live rows only)."""
    rows = conn.execute(
        "select array(select a.attname::text from unnest(i.indkey) k join pg_attribute a "
        "on a.attrelid = i.indrelid and a.attnum = k), i.indpred is not null from pg_index i "
        "where i.indrelid = %s::regclass and i.indisunique and not i.indisprimary and 0 <> all(i.indkey)",
        (table,)).fetchall()
    return [(tuple(columns), partial) for columns, partial in rows if set(columns) != natural]


def unique_conflicts(conn, result: ValidatedSheet, entity: Entity, tenants: dict[str, str]) -> list[Failure]:
    """Valid rows that the database would refuse because another row (another key) already holds the same value
    in a unique column, e.g. a new function code with the name of a seeded function: one failure per cell."""
    key = result.contract.key[0]
    table, owner = entity.table, entity.owner
    natural = {key} | ({owner} if owner else set())
    found: list[Failure] = []
    for columns, live_only in _unique_sets(conn, table, natural):
        plain = [c for c in columns if c != owner]
        if not plain or any(c not in result.present for c in plain):
            continue
        frame = result.valid.select(ROW, key, *plain, *(["tenant"] if "tenant" in result.valid.columns else []))
        frame = frame.with_columns(pl.col("tenant").fill_null(PLATFORM_TENANT_SLUG)
                                   .replace_strict(tenants, default=None, return_dtype=pl.Utf8).alias("tenant_id")
                                   if "tenant" in frame.columns else
                                   pl.lit(tenants[PLATFORM_TENANT_SLUG], dtype=pl.Utf8).alias("tenant_id"))
        frame = frame.drop_nulls([*plain])
        if frame.is_empty():
            continue
        name = f"unique_{table}_{'_'.join(plain)}"
        stage(conn, name, frame.select(ROW, key, *plain, "tenant_id"),
              {ROW: "int", key: "text", **{c: "text" for c in plain}, "tenant_id": "uuid"})
        same = sql.SQL(" and ").join(sql.SQL("t.{c}::text = s.{c}").format(c=sql.Identifier(c)) for c in plain)
        tenant_match = sql.SQL(" and t.{} = s.tenant_id").format(sql.Identifier(owner)) if owner in columns \
            else sql.SQL("")
        live = sql.SQL(" and t.deleted_at is null") if live_only else sql.SQL("")
        clashes = conn.execute(sql.SQL(
            "select s.{row}, s.{key}, t.{key}::text, {values} from {stage} s join {table} t on {same}{tenant}{live} "
            "and t.{key}::text <> s.{key} order by s.{row}"
        ).format(row=sql.Identifier(ROW), key=sql.Identifier(key), stage=sql.Identifier(name),
                 table=sql.Identifier(table), same=same, tenant=tenant_match, live=live,
                 values=sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in plain))).fetchall()
        what = singular(result.contract.sheet)
        for row, mine, theirs, *values in clashes:
            column = plain[0]
            shown = ", ".join(f"`{v}`" for v in values)
            found.append(Failure(
                result.file, result.contract.sheet, row, column, result.letters.get(column), values[0], "unique",
                f"`{'`, `'.join(plain)}` {shown} already belongs to the {what} `{theirs}` in the database, and no "
                f"two {result.contract.sheet} may share it; write `{theirs}` as the {key} to update that {what}, or "
                f"give `{mine}` another {column}"))
    return found


def keys_of_other_sources(conn, result: ValidatedSheet, entity: Entity, tenants: dict[str, str],
                          origin: str) -> list[Failure]:
    """Valid rows whose key another source loaded (its `loaded_from` names another file): both sources write the
    row and the later one wins on every run, so each such cell is reported for the steward to keep the row in one
    source. The row still loads (as it always did); nothing is withheld."""
    table = entity.table
    if entity.owner is None or len(result.contract.key) != 1 or result.valid.is_empty() or not conn.execute(
            "select 1 from pg_attribute where attrelid = %s::regclass and attname = 'loaded_from' "
            "and not attisdropped", (table,)).fetchone():
        return []  # a table without provenance (org_functions, seeded by the schema) has no other source to name
    key = result.contract.key[0]
    frame = result.valid.select(ROW, key, *(["tenant"] if "tenant" in result.valid.columns else []))
    frame = frame.with_columns(pl.col("tenant").fill_null(PLATFORM_TENANT_SLUG)
                               .replace_strict(tenants, default=None, return_dtype=pl.Utf8).alias("tenant_id")
                               if "tenant" in frame.columns else
                               pl.lit(tenants[PLATFORM_TENANT_SLUG], dtype=pl.Utf8).alias("tenant_id"))
    name = f"owners_{table}"
    stage(conn, name, frame.select(ROW, key, "tenant_id"), {ROW: "int", key: "text", "tenant_id": "uuid"})
    tenant_match = sql.SQL(" and t.{} = s.tenant_id").format(sql.Identifier(entity.owner))
    rows = conn.execute(sql.SQL(
        "select s.{row}, s.{key}, t.loaded_from ->> 'file', t.loaded_from ->> 'row' from {stage} s join {table} t "
        "on t.{key}::text = s.{key}{tenant} where t.loaded_from ->> 'file' is distinct from %s "
        "and t.loaded_from is not null order by s.{row}"
    ).format(row=sql.Identifier(ROW), key=sql.Identifier(key), stage=sql.Identifier(name),
             table=sql.Identifier(table), tenant=tenant_match), (origin,)).fetchall()
    what = singular(result.contract.sheet)
    return [Failure(result.file, result.contract.sheet, row, key, result.letters.get(key), value, "shared_key_warning",
                    f"`{key}` `{value}` is also loaded from {owner} (row {owner_row}): both sources write this {what} "
                    f"and the one loaded last wins on every run; keep the {what} in one of them")
            for row, value, owner, owner_row in rows]


class IntegrityProblem(RuntimeError):
    """The database refused a load for a reason the checks before it did not foresee; said for a steward."""


def _integrity_message(error: psycopg.errors.IntegrityError, workbook: str) -> str:
    diag = error.diag
    detail = (diag.message_detail or "").replace("Key (", "the value of (")
    return (f"{workbook}: the database refused the load ({diag.message_primary}; {detail} constraint "
            f"{diag.constraint_name or '?'} on {diag.table_name or '?'}). Nothing was written. Find the row holding "
            "that value in the source and correct it, then load again.")


# What a reference may name in the database: target (`sheet.key`) → its entity.
REFERENCE_TARGETS = {f"{e.sheet}.{e.key[0]}": e for e in ENTITIES if not e.links_only}


def database_references(conn) -> ReferenceIndex:
    """The keys and names of the live rows that references may name, as this connection's role sees them: the
    other half (with the sibling files) of what validation checks references against."""
    keys: dict[str, set[str]] = {}
    names: dict[str, dict[str, set[str]]] = {}
    titles: dict[str, dict[str, str]] = {}
    for target, entity in REFERENCE_TARGETS.items():
        live = sql.SQL(" where deleted_at is null") if entity.soft_delete else sql.SQL("")
        # the id the source system gave a row (kept in metadata by a mapping) names it as well as its name does
        source_id = sql.SQL("metadata ->> 'id'") if any(c.name == "metadata" for c in entity.columns) \
            else sql.SQL("null")
        rows = conn.execute(sql.SQL("select {k}::text, {n}::text, {i} from {t}").format(
            k=sql.Identifier(entity.key[0]), n=sql.Identifier(entity.label), i=source_id,
            t=sql.Identifier(entity.table)) + live).fetchall()
        keys[target] = {k for k, _n, _i in rows}
        by_name = names.setdefault(target, {})
        for k, name, given_id in rows:
            if name:
                by_name.setdefault(normalise.blind_key(name), set()).add(k)
                titles.setdefault(target, {})[k] = name
            if given_id:
                by_name.setdefault(normalise.blind_key(given_id), set()).add(k)
    parents: dict[str, dict[str, dict[str, str]]] = {"roles.code": {}, "departments.code": {}}
    for code, department in conn.execute(
            "select r.code::text, d.code::text from org_roles r join org_departments d on d.id = r.department_id "
            "where r.deleted_at is null and d.deleted_at is null"):
        parents["roles.code"][code] = {"department_code": department}
    for code, function in conn.execute(
            "select d.code::text, f.code::text from org_departments d join org_functions f on f.id = d.function_id "
            "where d.deleted_at is null"):
        parents["departments.code"][code] = {"function_code": function}
    return ReferenceIndex(keys, names, titles, parents)


class AccountingError(RuntimeError):
    """Some rows of a sheet were neither loaded nor quarantined: the load is refused rather than lose them."""


# The table that receives one row per sheet row: the sheets whose rows can be counted in the database.
SHEET_TABLES = {e.sheet: e.table for e in ENTITIES if not e.links_only}


def account(sheets: dict[str, ValidatedSheet], tables: dict[str, Counts], entries: list[dict],
            warnings: list[Failure]) -> dict[str, dict[str, int]]:
    """Per sheet: rows in = loaded + loaded with warnings + quarantined, checked against what the tables counted.
    Raises AccountingError when a row is unaccounted for."""
    accounts = {}
    for name, result in sheets.items():
        quarantined = {e["excel_row"] for e in entries if e["sheet"] == result.contract.sheet}
        data_rows = set(result.valid[ROW].to_list()) | set(result.rejected[ROW].to_list())
        warned = ({w.row for w in warnings if w.sheet == result.contract.sheet} & data_rows) - quarantined
        rows_in = result.total_rows
        loaded = rows_in - len(quarantined)
        table = SHEET_TABLES.get(name)
        if table in tables:
            written = tables[table].inserted + tables[table].updated + tables[table].unchanged
            if written != loaded:
                raise AccountingError(
                    f"{result.file} › {result.contract.sheet}: {rows_in} row(s) in the sheet, {len(quarantined)} "
                    f"quarantined, but {written} reached {table} instead of {loaded}; nothing was written")
        accounts[result.contract.sheet] = {"rows_in": rows_in, "loaded": loaded - len(warned),
                                           "loaded_with_warnings": len(warned), "quarantined": len(quarantined)}
    return accounts


def _quarantine_entries(sheets: dict[str, ValidatedSheet], failures: list[Failure],
                        tenant_rejects: dict[str, pl.DataFrame]) -> list[dict]:
    by_row: dict[tuple[str, int], list[dict]] = {}
    for failure in failures:
        by_row.setdefault((failure.sheet, failure.row), []).append(failure.as_dict())
    entries = []
    for sheet_name, result in sheets.items():
        for frame in (result.rejected, tenant_rejects.get(sheet_name)):
            if frame is None:
                continue
            for record in frame.iter_rows(named=True):
                entries.append({
                    "row_key": f"{sheet_name}:{_row_key(result, record)}", "source_file": result.file,
                    "sheet": result.contract.sheet, "excel_row": record[ROW],
                    "payload": ledger.payload_json({k: v for k, v in record.items() if k != ROW}),
                    "failures": by_row.get((result.contract.sheet, record[ROW]), []),
                })
    return entries


def _rejected_keys(sheets: dict[str, ValidatedSheet], tenants: dict[str, str]) -> dict[str, list[tuple]]:
    """Natural keys of rejected rows that may already be loaded: the soft delete must not touch them."""
    keys: dict[str, list[tuple]] = {}
    for name, result in sheets.items():
        key = result.contract.key
        if len(key) != 1 or key[0] not in result.rejected.columns:
            continue
        column = key[0]
        case = (result.contract.schema.columns[column].metadata or {}).get("case")
        tenant_col = result.rejected["tenant"] if "tenant" in result.rejected.columns else [None] * result.rejected.height
        held = result.valid.filter(pl.col(ROW).is_in(list(result.withheld)))
        values = result.rejected[column].to_list() + held[column].to_list()
        tenant_col = list(tenant_col) + (held["tenant"].to_list() if "tenant" in held.columns else [None] * held.height)
        for value, tenant in zip(values, tenant_col):
            if value is None:
                continue
            value = value.lower() if case == "lower" else value.upper() if case == "upper" else value
            tenant_id = tenants.get((tenant or PLATFORM_TENANT_SLUG).lower())
            if tenant_id:
                keys.setdefault(name, []).append((tenant_id, value))
    return keys


MAX_KEPT_WARNINGS = 5000  # warnings kept in the ledger, to be shown again when an unchanged source is skipped


def _failure(record: dict) -> Failure:
    cell = record.get("cell") or ""
    letter = cell.rstrip("0123456789") or None
    return Failure(record.get("file", ""), record.get("sheet", ""), record.get("row"), record.get("column"), letter,
                   record.get("value"), record.get("rule", ""), record.get("message", ""))


def skip_if_unchanged(conn: psycopg.Connection, workbook: str, *, source_name: str, sha256: str,
                      policy: str) -> LoadResult | None:
    """When loading `source_name` (bytes `sha256`) again would change nothing (see loading.fingerprint), what the
    last load did, as a result that reads nothing and writes nothing: every row counted unchanged, the rows still
    in quarantine as failures, the warnings it gave. Else None: the source must be read and loaded."""
    target = ledger_target(source_name)
    previous = unchanged_load(conn, workbook, target=target, source_file=source_name, sha256=sha256, policy=policy)
    if previous is None:
        return None
    details = previous["details"]
    tables = {t: Counts(unchanged=c.get("inserted", 0) + c.get("updated", 0) + c.get("unchanged", 0))
              for t, c in details.get("tables", {}).items()}
    still_rejected = conn.execute(
        "select failures from quarantined_rows where target = %s and resolved_at is null order by excel_row",
        (target,)).fetchall()
    failures = [_failure(f) for (entry,) in still_rejected for f in entry]
    rejected = len(still_rejected)
    return LoadResult(workbook=workbook, source_sha256=sha256, tables=tables, rejected=rejected, failures=failures,
                      warnings=[_failure(w) for w in details.get("warning_list", [])],
                      accounts=details.get("sheets", {}), skipped_since=previous["load_id"])


def ledger_target(origin: str) -> str:
    """The ledger's and the quarantine's name for a source: its path without the extension (`personas`,
    `db_export_personas`, `tenants/acme-pharma/personas`)."""
    return str(PurePosixPath(origin).with_suffix(""))


def load_workbook(conn: psycopg.Connection, workbook: str, sheets: dict[str, ValidatedSheet], *, source_path: Path,
                  policy: str = "quarantine", run_id: str | None = None,
                  max_delete_share: float = DEFAULT_MAX_DELETE_SHARE, source_sha256: str | None = None,
                  source_name: str | None = None, tenant: str | None = None) -> LoadResult:
    """Load one validated workbook in one transaction; see the module docstring. `source_sha256` is the hash of
    the bytes that were parsed (see `files.snapshot`); without it the file is hashed now. `source_name` is the file
    a mapped export or a tenant's source came from: its rows, quarantine and soft delete are its own (default: the
    registry workbook). `tenant`: the only tenant whose rows the source may hold; any other row is quarantined."""
    try:
        return _load_workbook(conn, workbook, sheets, source_path=source_path, policy=policy, run_id=run_id,
                              max_delete_share=max_delete_share, source_sha256=source_sha256, source_name=source_name,
                              tenant=tenant)
    except psycopg.errors.IntegrityError as error:
        raise IntegrityProblem(_integrity_message(error, source_name or workbook)) from None


def _dedupe(warnings: list[Failure]) -> list[Failure]:
    """One warning per cell and rule family: validation and the load may both notice an optional reference."""
    seen, out = set(), []
    for w in warnings:
        mark = (w.sheet, w.row, w.column, w.rule.removesuffix("_warning")) if w.row and w.column else id(w)
        if mark not in seen:
            seen.add(mark)
            out.append(w)
    return out


def _load_workbook(conn, workbook, sheets, *, source_path, policy, run_id, max_delete_share, source_sha256,
                   source_name, tenant=None) -> LoadResult:
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}; got {policy!r}")
    sha = source_sha256 or file_sha256(source_path)
    failures = [f for result in sheets.values() for f in result.failures]
    origin = source_name or workbook
    with conn.transaction():
        tune_for_bulk_load(conn)
        # The workbooks this one refers to are read in shared mode, in their fixed order, before this one is locked:
        # their loads cannot commit in the middle of this one (and the order keeps two loads from deadlocking).
        for upstream in UPSTREAM.get(workbook, ()):
            share_for_transaction(conn, workbook_lock(upstream))
        lock_for_transaction(conn, workbook_lock(workbook))
        tenants = tenant_ids_by_slug(conn)
        withheld: list[Failure] = []
        shared: list[Failure] = []
        for name, result in sheets.items():
            if tenant is not None and BY_SHEET.get(name) is not None and BY_SHEET[name].owner:
                own_tenant(result, tenant)  # a tenant's file: an empty tenant cell is the tenant's
            if name in SHEET_TABLES:
                clashes = unique_conflicts(conn, result, BY_SHEET[name], tenants)
                if tenant is not None:
                    clashes += rows_of_other_tenants(result, tenant)
                result.withheld = {f.row for f in clashes}
                withheld += clashes
                shared += keys_of_other_sources(conn, result, BY_SHEET[name], tenants, origin)
        if policy == "strict" and (failures or withheld):
            raise ContractViolation(failures + withheld)
        load = Provenance(file=origin, sheet="", sha256=sha, load_id=str(uuid.uuid4()))
        # Every row this transaction changes is written to row_history under this load (schema/28).
        conn.execute("select set_config('vital.load_id', %s, true)", (load.load_id,))
        tables, extra, warnings = _loader(workbook)(conn, sheets, tenants, max_share=max_delete_share,
                                                    rejected_keys=_rejected_keys(sheets, tenants), load=load)
        extra = withheld + extra
        warnings = _dedupe([w for result in sheets.values() for w in result.warnings] + shared + warnings)
        if policy == "strict" and extra:
            raise ContractViolation(extra)
        failures += extra
        tenant_rejects = {}
        for name, result in sheets.items():
            rows = {f.row for f in extra if f.sheet == result.contract.sheet}
            if rows:
                tenant_rejects[name] = result.valid.filter(pl.col(ROW).is_in(list(rows)))
        target = ledger_target(origin)
        entries = _quarantine_entries(sheets, failures, tenant_rejects)
        accounts = account(sheets, tables, entries, warnings)
        ledger.quarantine(conn, target=target, entries=entries, run_id=run_id)
        ledger.resolve_quarantine(conn, target=target, still_rejected=[e["row_key"] for e in entries])
        result = LoadResult(workbook=workbook, source_sha256=sha, tables=tables, rejected=len(entries), failures=failures,
                            warnings=warnings, accounts=accounts)
        ledger.record_load(conn, load_id=load.load_id, target=target, source_file=source_name or source_path.name,
                           source_sha256=sha, run_id=run_id,
                           policy=policy, counts=result.total, rejected=result.rejected,
                           details={"tables": {t: vars(c) for t, c in tables.items()}, "sheets": accounts,
                                    "warnings": len(warnings),
                                    "warning_list": [w.as_dict() for w in warnings[:MAX_KEPT_WARNINGS]],
                                    "fingerprint": database_fingerprint(conn, workbook)})
    return result
