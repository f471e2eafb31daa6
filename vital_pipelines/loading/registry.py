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
from vital_pipelines.loading.tenant_sources import rows_of_other_tenants
from vital_pipelines.loading.upsert import (
    PLATFORM_TENANT_SLUG, Counts, Provenance, Stamp, deterministic_id, deterministic_id_strings, provenance_stamp,
    record_provenance, soft_delete_missing, stage, sync_links, tenant_ids_by_slug, tune_for_bulk_load, upsert,
)
from vital_pipelines.spreadsheets.reader import ROW
from vital_pipelines.spreadsheets import normalise
from vital_pipelines.spreadsheets.validation import KEEP, Failure, ReferenceIndex, ValidatedSheet, singular
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


def _with_ids(result: ValidatedSheet, entity: str, key: str, tenants: dict[str, str]) -> tuple[pl.DataFrame, list[Failure], pl.DataFrame]:
    """Valid rows with tenant_id and a deterministic id; rows naming an unknown tenant become failures."""
    frame = result.valid.filter(~pl.col(ROW).is_in(list(result.withheld))) if result.withheld else result.valid
    if "tenant" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias("tenant"))
    frame = frame.with_columns(pl.col("tenant").fill_null(PLATFORM_TENANT_SLUG))
    unknown = frame.filter(~pl.col("tenant").is_in(list(tenants)))
    failures = [Failure(result.file, result.contract.sheet, row, "tenant", result.letters.get("tenant"), slug, "reference",
                        f"`tenant` must be the slug of an existing tenant; `{slug}` is not one")
                for row, slug in zip(unknown[ROW], unknown["tenant"])]
    frame = frame.filter(pl.col("tenant").is_in(list(tenants)))
    frame = frame.with_columns(
        pl.col("tenant").replace_strict(tenants, return_dtype=pl.Utf8).alias("tenant_id"),
        pl.Series("id", deterministic_id_strings(entity, frame["tenant"].to_list(), frame[key].to_list()),
                  dtype=pl.Utf8),
    )
    return frame, failures, unknown


def _lookup(table: str, code_column: str, code: str, tenant: str = "s.tenant_id") -> sql.Composable:
    """Scalar expression: the live row of `table` with that code in the row's tenant, else in the platform's.
    Two unique-index probes (the second only when the first finds nothing) beat one ordered scan."""
    probe = "(select x.id from {table} x where x.tenant_id = {tenant} and x.{code_column} = {code} and x.deleted_at is null)"
    return sql.SQL("coalesce(" + probe + ", " + probe.replace("{tenant}", "%(platform)s::uuid") + ")").format(
        table=sql.Identifier(table), code_column=sql.Identifier(code_column), code=sql.SQL(code), tenant=sql.SQL(tenant))


def _live_ids(conn, table: str, code_column: str, tenant_ids: list[str] | None) -> pl.DataFrame:
    """(tenant_id, code, id) of the live rows of `table` in the given tenants (all tenants when None); for
    org_functions, which has no tenant, tenant_id is null."""
    ident = sql.Identifier
    if table == "org_functions":
        query = sql.SQL("select null::text, {c}, id::text from {t}").format(c=ident(code_column), t=ident(table))
        params: tuple = ()
    else:
        query = sql.SQL("select tenant_id::text, {c}, id::text from {t} where deleted_at is null and tenant_id = any(%s)") \
            .format(c=ident(code_column), t=ident(table))
        params = (tenant_ids,)
    return pl.DataFrame(conn.execute(query, params).fetchall(), orient="row",
                        schema={"tenant_id": pl.Utf8, "code": pl.Utf8, "id": pl.Utf8})


def _resolve(frame: pl.DataFrame, ids: pl.DataFrame, code_column: str, out: str, platform: str) -> pl.DataFrame:
    """Add `out`: the id of the row whose code is `code_column`, in the row's own tenant, else in the platform's —
    the same rule as `_lookup`, as two hash joins instead of two index probes per row."""
    own = ids.select(pl.col("tenant_id"), pl.col("code").alias(code_column), pl.col("id").alias("_own"))
    shared = ids.filter(pl.col("tenant_id").is_null() | (pl.col("tenant_id") == platform)) \
        .select(pl.col("code").alias(code_column), pl.col("id").alias("_shared")).unique(code_column, keep="first")
    joined = frame.join(own, on=["tenant_id", code_column], how="left") if own["tenant_id"].null_count() < own.height \
        else frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias("_own"))
    return joined.join(shared, on=code_column, how="left") \
        .with_columns(pl.coalesce("_own", "_shared").alias(out)).drop("_own", "_shared")


def _kept(result: ValidatedSheet, columns: list[str], sources: dict[str, str] | None = None) -> frozenset[str]:
    """The table columns whose sheet column (`sources`: table column → sheet column where the names differ) the
    sheet lacks: a load leaves their stored values alone."""
    sources = sources or {}
    contract_columns = set(result.contract.model.to_schema().columns)
    return frozenset(c for c in columns if sources.get(c, c) in contract_columns and sources.get(c, c) not in result.present)


def _unresolved(frame: pl.DataFrame, result: ValidatedSheet, code: str, resolved: str, target: str,
                required: bool) -> tuple[pl.DataFrame, list[Failure]]:
    """Rows whose `code` names nothing in the database (the row's tenant or the platform). A required reference
    rejects the row; an optional one is a warning, and the row keeps its stored link (`resolved` stays null here and
    the load leaves that column as it is for the row)."""
    if code not in result.present:
        return frame.clear(), []
    missing = frame.filter(pl.col(code).is_not_null() & pl.col(resolved).is_null())
    what = target.removeprefix("org_").removesuffix("s")
    outcome = ("the row is not loaded" if required else "the row is loaded and keeps the link it had")
    failures = [Failure(result.file, result.contract.sheet, row, code, result.letters.get(code), value,
                        "reference" if required else "reference_warning",
                        f"`{code}` `{value}` names no {what} in the database (for tenant {tenant} or the platform); "
                        f"{outcome}. Load the workbook that defines it first, or correct the code")
                for row, value, tenant in zip(missing[ROW], missing[code], missing["tenant"])]
    return missing, failures


def _tenant_ids(frame: pl.DataFrame, platform: str) -> list[str]:
    return sorted(set(frame["tenant_id"].to_list()) | {platform})


def _stamp_and_soft_delete(conn, counts: Counts, *, table: str, key: list[str], sheet: str, frame: pl.DataFrame,
                           platform: str, max_share: float, rejected_keys: dict[str, list[tuple]],
                           load: Provenance, stamp: Stamp) -> Counts:
    """Stamp the rows this sheet now owns, then soft-delete the rows it owned and no longer has, sparing rows that
    were rejected this time (they may be loaded from an earlier run). The soft-deleted keys are listed."""
    record_provenance(conn, table, stamp)
    protected = _protected_stage(conn, f"protected_{sheet}", rejected_keys.get(sheet, []), key)
    counts.deleted_keys = soft_delete_missing(conn, table, key, f"stage_{sheet}", _tenant_ids(frame, platform),
                                              protected, max_share, f"{load.file} › {sheet}", load.file,
                                              frame.select(key).n_unique())
    counts.deleted = len(counts.deleted_keys)
    return counts


def _row_keep(result: ValidatedSheet, columns: list[str], sources: dict[str, str] | None = None) -> dict[str, str]:
    """{table column: sheet column} for the columns a row may keep (see validation.KEEP)."""
    sources = sources or {}
    contract_columns = set(result.contract.model.to_schema().columns)
    return {c: sources.get(c, c) for c in columns if sources.get(c, c) in contract_columns}


def _upsert_registry(conn, *, table: str, natural_key: str, sheet: str, columns: list[str], select: sql.Composable,
                     frame: pl.DataFrame, staged: int, platform: str, max_share: float,
                     rejected_keys: dict[str, list[tuple]], load: Provenance,
                     keep: frozenset[str] = frozenset(), row_keep: dict[str, str] | None = None) -> Counts:
    """Upsert a tenant-owned registry table from `stage_<sheet>`, then stamp and soft-delete."""
    key = ["tenant_id", natural_key]
    stamp = provenance_stamp(conn, table, key, frame, ROW, Provenance(load.file, sheet, load.sha256, load.load_id))
    counts = upsert(conn, table, key, columns, select, soft_delete=True, staged=staged, params={"platform": platform},
                    keep=keep, row_keep=row_keep, stamp=stamp)
    return _stamp_and_soft_delete(conn, counts, table=table, key=key, sheet=sheet, frame=frame, platform=platform,
                                  max_share=max_share, rejected_keys=rejected_keys, load=load, stamp=stamp)


def _protected_stage(conn, name: str, keys: list[tuple], key_columns: list[str]) -> str | None:
    if not keys:
        return None
    frame = pl.DataFrame(keys, schema={c: pl.Utf8 for c in key_columns}, orient="row")
    stage(conn, name, frame, {c: "uuid" if c == "tenant_id" else "text" for c in key_columns})
    return name


def load_org_structure(conn, sheets: dict[str, ValidatedSheet], tenants: dict[str, str], *, max_share: float,
                       rejected_keys: dict[str, list[tuple]], load: Provenance):
    """The org structure's sheets that `sheets` holds (all five from the workbook; one from a mapped export), in
    foreign-key order; junctions are synced for the departments and roles this load staged."""
    platform = tenants[PLATFORM_TENANT_SLUG]
    counts: dict[str, Counts] = {}
    extra_failures: list[Failure] = []

    if "functions" in sheets:
        result = sheets["functions"]
        functions = result.valid.filter(~pl.col(ROW).is_in(list(result.withheld))).with_columns(
            pl.Series("id", [str(deterministic_id("org_functions", c))
                             for c in result.valid.filter(~pl.col(ROW).is_in(list(result.withheld)))["code"]],
                      dtype=pl.Utf8))
        n = stage(conn, "stage_functions", functions,
                  {"id": "uuid", "code": "text", "name": "text", "description": "text", "color": "text",
                   "display_order": "int", "metadata": "jsonb", KEEP: "text[]"})
        function_columns = ["id", "code", "name", "description", "color", "display_order", "metadata"]
        counts["org_functions"] = upsert(
            conn, "org_functions", ["code"], function_columns,
            sql.SQL("select id, code, name, description, color, display_order, coalesce(metadata, '{}'), _keep "
                    "from stage_functions order by code"),
            soft_delete=False, staged=n, params={"platform": platform},
            keep=_kept(result, function_columns), row_keep=_row_keep(result, function_columns))

    sources = {"function_id": "function_code", "department_id": "department_code", "reports_to_role_id": "reports_to_code"}
    plan = [
        ("departments", "org_departments", {"id": "uuid", "tenant_id": "uuid", "code": "text", "name": "text",
                                            "function_code": "text", "description": "text", "metadata": "jsonb"},
         ["id", "tenant_id", "code", "name", "function_id", "description", "metadata"],
         "select s.id, s.tenant_id, s.code, s.name, (select f.id from org_functions f where f.code = s.function_code), "
         "s.description, coalesce(s.metadata, '{{}}'), s._keep from stage_departments s order by s.tenant_id, s.code"),
        ("roles", "org_roles", {"id": "uuid", "tenant_id": "uuid", "code": "text", "name": "text", "department_code": "text",
                                "seniority_level": "text", "reports_to_code": "text", "description": "text",
                                "metadata": "jsonb"},
         ["id", "tenant_id", "code", "name", "department_id", "seniority_level", "reports_to_role_id", "description",
          "metadata"],
         "select s.id, s.tenant_id, s.code, s.name, {dept}, s.seniority_level, {manager}, s.description, "
         "coalesce(s.metadata, '{{}}'), s._keep from stage_roles s order by s.tenant_id, s.code"),
        ("responsibilities", "org_responsibilities", {"id": "uuid", "tenant_id": "uuid", "code": "text", "name": "text",
                                                      "category": "text", "description": "text", "metadata": "jsonb"},
         ["id", "tenant_id", "code", "name", "category", "description", "metadata"],
         "select s.id, s.tenant_id, s.code, s.name, s.category, s.description, coalesce(s.metadata, '{{}}'), s._keep "
         "from stage_responsibilities s order by s.tenant_id, s.code"),
    ]
    for sheet, table, types, columns, select_text in plan:
        if sheet not in sheets:
            continue
        frame, failures, _unknown = _with_ids(sheets[sheet], table, "code", tenants)
        extra_failures += failures
        stage_name = f"stage_{sheet}"
        n = stage(conn, stage_name, frame, {**types, KEEP: "text[]"})
        select = sql.SQL(select_text).format(
            dept=_lookup("org_departments", "code", "s.department_code"),
            manager=_lookup("org_roles", "code", "s.reports_to_code"))
        counts[table] = _upsert_registry(
            conn, table=table, natural_key="code", sheet=sheet, columns=columns, select=select, frame=frame, staged=n,
            platform=platform, max_share=max_share, rejected_keys=rejected_keys, load=load,
            keep=_kept(sheets[sheet], columns, sources), row_keep=_row_keep(sheets[sheet], columns, sources))
    # Managers inserted in this same load were not visible to the upsert's lookup.
    if "roles" in sheets and "reports_to_code" in sheets["roles"].present:
        conn.execute(sql.SQL(
            "update org_roles r set reports_to_role_id = {manager} from stage_roles s "
            "where r.tenant_id = s.tenant_id and r.code = s.code and not ('reports_to_code' = any(s._keep)) "
            "and r.reports_to_role_id is distinct from {manager}"
        ).format(manager=_lookup("org_roles", "code", "s.reports_to_code")), {"platform": platform})

    # The junctions that follow from the rows just loaded: (sheet, junction, owner column, other column, its rows).
    derived = (
        ("departments", "function_departments", "department_id", "function_id",
         "select d.function_id, d.id as department_id, d.tenant_id from org_departments d "
         "join stage_departments s on s.tenant_id = d.tenant_id and s.code = d.code"),
        ("roles", "department_roles", "role_id", "department_id",
         "select r.department_id, r.id as role_id, r.tenant_id from org_roles r "
         "join stage_roles s on s.tenant_id = r.tenant_id and s.code = r.code where r.department_id is not null"),
        ("roles", "function_roles", "role_id", "function_id",
         "select d.function_id, r.id as role_id, r.tenant_id from org_roles r "
         "join stage_roles s on s.tenant_id = r.tenant_id and s.code = r.code "
         "join org_departments d on d.id = r.department_id"),
    )
    for sheet, junction, owner, other, rows in derived:
        if sheet in sheets:
            conn.execute(sql.SQL("create temp table {link} on commit drop as ").format(
                link=sql.Identifier(f"link_{junction}")) + sql.SQL(rows))
            counts[junction] = sync_links(conn, junction, owner, other, f"link_{junction}")

    if "role_responsibilities" in sheets:
        links = sheets["role_responsibilities"].valid
        stage(conn, "stage_role_responsibilities", links,
              {"role_code": "text", "responsibility_code": "text", "priority": "int"})
        conn.execute(sql.SQL(
            "create temp table link_role_responsibilities on commit drop as "
            "select r.id as role_id, {resp} as responsibility_id, r.tenant_id, s.priority::smallint as priority "
            "from stage_role_responsibilities s join org_roles r on r.code = s.role_code and r.deleted_at is null "
            "and r.tenant_id in (select id from tenants)"
        ).format(resp=_lookup("org_responsibilities", "code", "s.responsibility_code", tenant="r.tenant_id")),
            {"platform": platform})
        counts["role_responsibilities"] = sync_links(conn, "role_responsibilities", "role_id", "responsibility_id",
                                                     "link_role_responsibilities", ["priority"])
    return counts, extra_failures, []


_PERSONA_TYPES = {"id": "uuid", "tenant_id": "uuid", "persona_key": "text", "name": "text", "title": "text",
                  "function_id": "uuid", "department_id": "uuid", "role_id": "uuid", "seniority_level": "text",
                  "years_experience": "int", "description": "text", "goals": "text[]", "pain_points": "text[]",
                  "motivations": "text[]", "tools_used": "text[]", "decision_authority": "text", "visibility": "text",
                  "metadata": "jsonb", KEEP: "text[]"}


def load_personas(conn, sheets, tenants, *, max_share, rejected_keys, load):
    platform = tenants[PLATFORM_TENANT_SLUG]
    frame, failures, _ = _with_ids(sheets["personas"], "personas", "persona_key", tenants)
    tenant_ids = _tenant_ids(frame, platform)
    rejected = []
    for table, code, out in (("org_functions", "function_code", "function_id"),
                             ("org_departments", "department_code", "department_id"), ("org_roles", "role_code", "role_id")):
        frame = _resolve(frame, _live_ids(conn, table, "code", tenant_ids), code, out, platform)
        missing, unresolved = _unresolved(frame, sheets["personas"], code, out, table, required=True)
        failures += unresolved
        rejected.append(missing)
    dropped = pl.concat([m.select(ROW) for m in rejected])[ROW].unique().to_list()
    rejected_keys = {**rejected_keys, "personas": rejected_keys.get("personas", []) + [
        (t, k) for t, k in frame.filter(pl.col(ROW).is_in(dropped)).select("tenant_id", "persona_key").iter_rows()]}
    frame = frame.filter(~pl.col(ROW).is_in(dropped))
    n = stage(conn, "stage_personas", frame, _PERSONA_TYPES)
    select = sql.SQL(
        "select s.id, s.tenant_id, s.persona_key, s.name, s.title, s.function_id, s.department_id, s.role_id, "
        "s.seniority_level, s.years_experience::smallint, s.description, "
        "coalesce(s.goals, '{}'), coalesce(s.pain_points, '{}'), coalesce(s.motivations, '{}'), "
        "coalesce(s.tools_used, '{}'), s.decision_authority::decision_type, s.visibility::visibility_level, "
        "coalesce(s.metadata, '{}'), s._keep from stage_personas s order by s.tenant_id, s.persona_key")
    columns = ["id", "tenant_id", "persona_key", "name", "title", "function_id", "department_id", "role_id",
               "seniority_level", "years_experience", "description", "goals", "pain_points", "motivations",
               "tools_used", "decision_authority", "visibility", "metadata"]
    sources = {"function_id": "function_code", "department_id": "department_code", "role_id": "role_code"}
    counts = _upsert_registry(conn, table="personas", natural_key="persona_key", sheet="personas",
                              columns=columns, select=select, frame=frame, staged=n, platform=platform, max_share=max_share,
                              rejected_keys=rejected_keys, load=load, keep=_kept(sheets["personas"], columns, sources),
                              row_keep=_row_keep(sheets["personas"], columns, sources))
    return {"personas": counts}, failures, []


_AGENT_TYPES = {"id": "uuid", "tenant_id": "uuid", "slug": "text", "name": "text", "tagline": "text",
                "description": "text", "agent_type": "text", "status": "text", "validation_status": "text",
                "domain_expertise": "text", "data_classification": "text", "visibility": "text", "tier": "int",
                "model": "text", "temperature": "numeric", "max_tokens": "int", "capabilities": "text[]",
                "specializations": "text[]", "therapeutic_areas": "text[]", "color": "text", "system_prompt": "text",
                "avatar_url": "text", "metadata": "jsonb", KEEP: "text[]"}


def _existing_links(conn, table: str, owner: str, other: str, owners: list[str]) -> pl.DataFrame:
    ident = sql.Identifier
    rows = conn.execute(sql.SQL("select {o}::text, {x}::text, tenant_id::text from {t} where {o} = any(%s::uuid[])")
                        .format(o=ident(owner), x=ident(other), t=ident(table)), (owners,)).fetchall()
    return pl.DataFrame(rows, orient="row", schema={owner: pl.Utf8, other: pl.Utf8, "tenant_id": pl.Utf8})


def load_agents(conn, sheets, tenants, *, max_share, rejected_keys, load):
    platform = tenants[PLATFORM_TENANT_SLUG]
    frame, failures, _ = _with_ids(sheets["agents"], "agents", "slug", tenants)
    tenant_ids = _tenant_ids(frame, platform)
    warnings: list[Failure] = []
    n = stage(conn, "stage_agents", frame, _AGENT_TYPES)
    columns = ["id", "tenant_id", "slug", "name", "tagline", "description", "agent_type", "status", "validation_status",
               "domain_expertise", "data_classification", "visibility", "tier", "model", "temperature", "max_tokens",
               "capabilities", "specializations", "therapeutic_areas", "color", "system_prompt", "avatar_url", "metadata"]
    select = sql.SQL(
        "select s.id, s.tenant_id, s.slug, s.name, s.tagline, s.description, s.agent_type::agent_type, "
        "s.status::agent_status, s.validation_status::validation_status, s.domain_expertise::domain_expertise, "
        "s.data_classification::data_classification, s.visibility::visibility_level, s.tier::smallint, s.model, "
        "s.temperature, s.max_tokens, coalesce(s.capabilities, '{}'), coalesce(s.specializations, '{}'), "
        "coalesce(s.therapeutic_areas, '{}'), s.color, s.system_prompt, s.avatar_url, coalesce(s.metadata, '{}'), "
        "s._keep from stage_agents s order by s.tenant_id, s.slug")
    counts = {"agents": _upsert_registry(conn, table="agents", natural_key="slug", sheet="agents",
                                         columns=columns, select=select, frame=frame, staged=n, platform=platform,
                                         max_share=max_share, rejected_keys=rejected_keys, load=load,
                                         keep=_kept(sheets["agents"], columns),
                                         row_keep=_row_keep(sheets["agents"], columns))}
    agents_now = _live_ids(conn, "agents", "slug", tenant_ids).rename({"code": "slug", "id": "agent_id"})
    owners = frame.select(ROW, "tenant", "tenant_id", "slug", "function_code", "department_code", "role_code") \
        .join(agents_now, on=["tenant_id", "slug"], how="inner")
    for link, table, code, other in (("agent_functions", "org_functions", "function_code", "function_id"),
                                     ("agent_departments", "org_departments", "department_code", "department_id"),
                                     ("agent_roles", "org_roles", "role_code", "role_id")):
        if code not in sheets["agents"].present:
            continue  # a sheet without the column leaves the links as they are
        resolved = _resolve(owners, _live_ids(conn, table, "code", tenant_ids), code, other, platform)
        partial, unresolved = _unresolved(resolved, sheets["agents"], code, other, table, required=False)
        warnings += unresolved
        links = pl.concat([resolved.filter(pl.col(other).is_not_null()).select("agent_id", other, "tenant_id"),
                           _existing_links(conn, link, "agent_id", other, partial["agent_id"].to_list())])
        stage(conn, f"link_{link}", links, {"agent_id": "uuid", other: "uuid", "tenant_id": "uuid"})
        counts[link] = sync_links(conn, link, "agent_id", other, f"link_{link}")
    return counts, failures, warnings


_JTBD_TYPES = {"id": "uuid", "tenant_id": "uuid", "code": "text", "title": "text", "job_statement": "text",
               "description": "text", "functional_area": "text", "job_category": "text", "frequency": "text",
               "complexity": "text", "decision_type": "text", "status": "text", "importance": "int",
               "satisfaction": "int", "success_criteria": "text[]", "metadata": "jsonb", KEEP: "text[]"}


def load_jtbds(conn, sheets, tenants, *, max_share, rejected_keys, load):
    platform = tenants[PLATFORM_TENANT_SLUG]
    frame, failures, _ = _with_ids(sheets["jtbds"], "jobs_to_be_done", "code", tenants)
    n = stage(conn, "stage_jtbds", frame, _JTBD_TYPES)
    columns = ["id", "tenant_id", "code", "title", "job_statement", "description", "functional_area", "job_category",
               "frequency", "complexity", "decision_type", "status", "importance", "satisfaction", "success_criteria",
               "metadata"]
    select = sql.SQL(
        "select s.id, s.tenant_id, s.code, s.title, s.job_statement, s.description, "
        "s.functional_area::functional_area_type, s.job_category::job_category_type, s.frequency::frequency_type, "
        "s.complexity::complexity_type, s.decision_type::decision_type, s.status::jtbd_status, "
        "s.importance::smallint, s.satisfaction::smallint, coalesce(s.success_criteria, '{}'), "
        "coalesce(s.metadata, '{}'), s._keep from stage_jtbds s order by s.tenant_id, s.code")
    counts = {"jobs_to_be_done": _upsert_registry(
        conn, table="jobs_to_be_done", natural_key="code", sheet="jtbds", columns=columns,
        select=select, frame=frame, staged=n, platform=platform, max_share=max_share, rejected_keys=rejected_keys,
        load=load, keep=_kept(sheets["jtbds"], columns), row_keep=_row_keep(sheets["jtbds"], columns))}
    if "personas" not in sheets["jtbds"].present:
        return counts, failures, []
    tenant_ids = _tenant_ids(frame, platform)
    served = frame.select(ROW, "tenant", "tenant_id", "code", pl.col("personas").fill_null([])).explode("personas") \
        .drop_nulls("personas").with_columns(pl.int_range(pl.len()).over("tenant_id", "code").alias("position")) \
        .rename({"personas": "persona_key"})
    jtbds_now = _live_ids(conn, "jobs_to_be_done", "code", tenant_ids).rename({"id": "jtbd_id"})
    resolved = _resolve(served.join(jtbds_now, on=["tenant_id", "code"], how="inner"),
                        _live_ids(conn, "personas", "persona_key", tenant_ids), "persona_key", "persona_id", platform)
    partial, unresolved = _unresolved(resolved.rename({"persona_key": "personas"}), sheets["jtbds"], "personas",
                                      "persona_id", "personas", required=False)
    # A JTBD with a persona that is not in the database keeps every link it had, and gains the ones that resolve.
    kept = conn.execute("select jtbd_id::text, persona_id::text, tenant_id::text, is_primary from jtbd_personas "
                        "where jtbd_id = any(%s::uuid[])", (partial["jtbd_id"].unique().to_list(),)).fetchall()
    links = pl.concat([
        resolved.filter(pl.col("persona_id").is_not_null())
        .group_by("jtbd_id", "persona_id", "tenant_id").agg((pl.col("position") == 0).any().alias("is_primary")),
        pl.DataFrame(kept, orient="row", schema={"jtbd_id": pl.Utf8, "persona_id": pl.Utf8, "tenant_id": pl.Utf8,
                                                 "is_primary": pl.Boolean})]).unique(["jtbd_id", "persona_id"], keep="first")
    stage(conn, "link_jtbd_personas", links,
          {"jtbd_id": "uuid", "persona_id": "uuid", "tenant_id": "uuid", "is_primary": "boolean"})
    counts["jtbd_personas"] = sync_links(conn, "jtbd_personas", "jtbd_id", "persona_id", "link_jtbd_personas",
                                         ["is_primary"])
    return counts, failures, unresolved


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


LOADERS = {
    "solution_industry_matrix.xlsx": load_matrix,
    "org_structure.xlsx": load_org_structure,
    "personas.xlsx": load_personas,
    "agents.xlsx": load_agents,
    "jtbds.xlsx": load_jtbds,
}


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


def unique_conflicts(conn, result: ValidatedSheet, table: str, tenants: dict[str, str]) -> list[Failure]:
    """Valid rows that the database would refuse because another row (another key) already holds the same value
    in a unique column, e.g. a new function code with the name of a seeded function: one failure per cell."""
    key = result.contract.key[0]
    natural = {key} | ({"tenant_id"} if table != "org_functions" else set())
    found: list[Failure] = []
    for columns, live_only in _unique_sets(conn, table, natural):
        plain = [c for c in columns if c != "tenant_id"]
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
        tenant_match = sql.SQL(" and t.tenant_id = s.tenant_id") if "tenant_id" in columns else sql.SQL("")
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


def keys_of_other_sources(conn, result: ValidatedSheet, table: str, tenants: dict[str, str],
                          origin: str) -> list[Failure]:
    """Valid rows whose key another source loaded (its `loaded_from` names another file): both sources write the
    row and the later one wins on every run, so each such cell is reported for the steward to keep the row in one
    source. The row still loads (as it always did); nothing is withheld."""
    if len(result.contract.key) != 1 or result.valid.is_empty() or not conn.execute(
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
    tenant_match = sql.SQL(" and t.tenant_id = s.tenant_id")
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


# What a reference may name in the database: target (`sheet.key`) → (table, key column).
REFERENCE_TABLES = {"functions.code": ("org_functions", "code"), "departments.code": ("org_departments", "code"),
                    "roles.code": ("org_roles", "code"), "responsibilities.code": ("org_responsibilities", "code"),
                    "personas.persona_key": ("personas", "persona_key")}


def database_references(conn) -> ReferenceIndex:
    """The keys and names of the live rows that references may name, as this connection's role sees them: the
    other half (with the sibling files) of what validation checks references against."""
    keys: dict[str, set[str]] = {}
    names: dict[str, dict[str, set[str]]] = {}
    titles: dict[str, dict[str, str]] = {}
    for target, (table, key) in REFERENCE_TABLES.items():
        live = sql.SQL("") if table == "org_functions" else sql.SQL(" where deleted_at is null")
        rows = conn.execute(sql.SQL("select {k}::text, name::text from {t}").format(
            k=sql.Identifier(key), t=sql.Identifier(table)) + live).fetchall()
        keys[target] = {k for k, _ in rows}
        by_name = names.setdefault(target, {})
        for k, name in rows:
            if name:
                by_name.setdefault(normalise.blind_key(name), set()).add(k)
                titles.setdefault(target, {})[k] = name
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
SHEET_TABLES = {"functions": "org_functions", "departments": "org_departments", "roles": "org_roles",
                "responsibilities": "org_responsibilities", "personas": "personas", "agents": "agents",
                "jtbds": "jobs_to_be_done"}


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
        case = (result.contract.model.to_schema().columns[column].metadata or {}).get("case")
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
            if name in SHEET_TABLES:
                clashes = unique_conflicts(conn, result, SHEET_TABLES[name], tenants)
                if tenant is not None:
                    clashes += rows_of_other_tenants(result, tenant)
                result.withheld = {f.row for f in clashes}
                withheld += clashes
                shared += keys_of_other_sources(conn, result, SHEET_TABLES[name], tenants, origin)
        if policy == "strict" and (failures or withheld):
            raise ContractViolation(failures + withheld)
        load = Provenance(file=origin, sheet="", sha256=sha, load_id=str(uuid.uuid4()))
        # Every row this transaction changes is written to row_history under this load (schema/28).
        conn.execute("select set_config('vital.load_id', %s, true)", (load.load_id,))
        tables, extra, warnings = LOADERS[workbook](conn, sheets, tenants, max_share=max_delete_share,
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
