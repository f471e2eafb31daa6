"""Loading one validated sheet into the table its entity declares, and keeping the entity's junctions in step.

Everything here is read from the entity's declaration (`vital_pipelines.entities`): the staged columns and their
types, the upsert's column list (bound by name), the references resolved to ids, the junctions synced. A reference
resolves in the row's own tenant, else in the platform's. One that resolves to nothing rejects the row when the
column is required, and otherwise is a warning: the row loads and keeps the value (or the links) it had.
"""

from __future__ import annotations

import dataclasses

import json

import polars as pl
from psycopg import sql

from vital_pipelines.entities import BY_SHEET, Column, Entity
from vital_pipelines.loading.upsert import (
    MERGED_COLUMNS, PLATFORM_TENANT_SLUG, Counts, Provenance, deterministic_id, deterministic_id_strings, provenance_stamp,
    record_provenance, soft_delete_missing, stage, sync_links, upsert,
)
from vital_pipelines.spreadsheets.reader import ROW
from vital_pipelines.spreadsheets.validation import KEEP, Failure, ValidatedSheet, singular

# A row's owning tenant, whatever its table calls the column (tenant_id, owner_tenant_id).
TENANT = "tenant_id"
# The metadata key holding a row's references that named nothing: {sheet column: the text as written}.
UNRESOLVED = "unresolved"


# The junctions that follow from the rows a sheet loaded: (junction, owner column, other column, its rows).
DERIVED_LINKS = {
    "departments": (("function_departments", "department_id", "function_id",
                     "select d.function_id, d.id as department_id, d.tenant_id from org_departments d "
                     "join stage_departments s on s.tenant_id = d.tenant_id and s.code = d.code"),),
    "roles": (("department_roles", "role_id", "department_id",
               "select r.department_id, r.id as role_id, r.tenant_id from org_roles r "
               "join stage_roles s on s.tenant_id = r.tenant_id and s.code = r.code where r.department_id is not null"),
              ("function_roles", "role_id", "function_id",
               "select d.function_id, r.id as role_id, r.tenant_id from org_roles r "
               "join stage_roles s on s.tenant_id = r.tenant_id and s.code = r.code "
               "join org_departments d on d.id = r.department_id")),
}


def with_ids(result: ValidatedSheet, entity: Entity, tenants: dict[str, str]) -> tuple[pl.DataFrame, list[Failure]]:
    """The rows to load (not withheld), each with its tenant's id and a deterministic id; rows naming an unknown
    tenant become failures."""
    frame = result.valid.filter(~pl.col(ROW).is_in(list(result.withheld))) if result.withheld else result.valid
    key = entity.key[0]
    if entity.owner is None:
        ids = [str(deterministic_id(entity.table, k)) for k in frame[key]]
        return frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias(TENANT), pl.Series("id", ids, dtype=pl.Utf8)), []
    if "tenant" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias("tenant"))
    frame = frame.with_columns(pl.col("tenant").fill_null(PLATFORM_TENANT_SLUG))
    unknown = frame.filter(~pl.col("tenant").is_in(list(tenants)))
    failures = [Failure(result.file, result.contract.sheet, row, "tenant", result.letters.get("tenant"), slug,
                        "reference", f"`tenant` must be the slug of an existing tenant; `{slug}` is not one")
                for row, slug in zip(unknown[ROW], unknown["tenant"])]
    frame = frame.filter(pl.col("tenant").is_in(list(tenants)))
    frame = frame.with_columns(
        pl.col("tenant").replace_strict(tenants, return_dtype=pl.Utf8).alias(TENANT),
        pl.Series("id", deterministic_id_strings(entity.table, frame["tenant"].to_list(), frame[key].to_list()),
                  dtype=pl.Utf8))
    return frame, failures


def live_ids(conn, entity: Entity, tenant_ids: list[str] | None) -> pl.DataFrame:
    """(tenant_id, code, id) of the entity's live rows in the given tenants (all when None); tenant_id is null for
    an entity no tenant owns."""
    ident = sql.Identifier
    key = entity.key[0]
    owner = sql.SQL("t.{}::text").format(ident(entity.owner)) if entity.owner else sql.SQL("null::text")
    where = [sql.SQL("t.deleted_at is null")] if entity.soft_delete else []
    params: tuple = ()
    if entity.owner and tenant_ids is not None:
        where.append(sql.SQL("t.{} = any(%s::uuid[])").format(ident(entity.owner)))
        params = (tenant_ids,)
    query = sql.SQL("select {owner}, t.{key}::text, t.id::text from {table} t").format(
        owner=owner, key=ident(key), table=ident(entity.table))
    if where:
        query += sql.SQL(" where ") + sql.SQL(" and ").join(where)
    return pl.DataFrame(conn.execute(query, params).fetchall(), orient="row",
                        schema={TENANT: pl.Utf8, "code": pl.Utf8, "id": pl.Utf8})


def resolve(frame: pl.DataFrame, ids: pl.DataFrame, code_column: str, out: str, platform: str) -> pl.DataFrame:
    """Add `out`: the id of the row whose code is in `code_column`, in the row's own tenant, else in the
    platform's (or in no tenant, for shared tables), as two hash joins."""
    own = ids.select(pl.col(TENANT), pl.col("code").alias(code_column), pl.col("id").alias("_own"))
    shared = ids.filter(pl.col(TENANT).is_null() | (pl.col(TENANT) == platform)) \
        .select(pl.col("code").alias(code_column), pl.col("id").alias("_shared")).unique(code_column, keep="first")
    joined = frame.join(own, on=[TENANT, code_column], how="left") if own[TENANT].null_count() < own.height \
        else frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias("_own"))
    return joined.join(shared, on=code_column, how="left") \
        .with_columns(pl.coalesce("_own", "_shared").alias(out)).drop("_own", "_shared")


def tenant_ids(frame: pl.DataFrame, platform: str) -> list[str]:
    return sorted({t for t in frame[TENANT].to_list() if t is not None} | {platform})


def unresolved(frame: pl.DataFrame, result: ValidatedSheet, column: Column, resolved: str,
               required: bool) -> tuple[pl.DataFrame, list[Failure]]:
    """Rows whose reference names nothing in the database; a failure (required) or a warning per cell."""
    if column.name not in result.present:
        return frame.clear(), []
    missing = frame.filter(pl.col(column.name).is_not_null() & pl.col(resolved).is_null())
    what = singular(column.target)
    outcome = "the row is not loaded" if required else "the row is loaded and keeps the link it had"
    tenant = missing["tenant"] if "tenant" in missing.columns else [PLATFORM_TENANT_SLUG] * missing.height
    return missing, [
        Failure(result.file, result.contract.sheet, row, column.name, result.letters.get(column.name), value,
                "reference" if required else "reference_warning",
                f"`{column.name}` `{value}` names no {what} in the database (for tenant {owner} or the platform); "
                f"{outcome}. Load the workbook that defines it first, or correct the code")
        for row, value, owner in zip(missing[ROW], missing[column.name], tenant)]


def _stage_value(column: Column) -> sql.Composable:
    """The staged column as the table's column: cast to its enum or narrower type; an empty list or JSON object
    where the table has NOT NULL defaults."""
    ident = sql.Identifier
    name = column.table_column if column.references else column.name
    value = sql.SQL("s.{}").format(ident(name))
    if column.sql_type:
        return sql.SQL("{}::{}").format(value, sql.SQL(column.sql_type))
    if column.kind == "list":
        return sql.SQL("coalesce({}, '{{}}')").format(value)
    if column.kind == "json":
        return sql.SQL("coalesce({}, '{{}}')").format(value)
    return value


def _kept(result: ValidatedSheet, entity: Entity) -> tuple[frozenset[str], dict[str, str]]:
    """(the table columns whose sheet column the sheet lacks: the load leaves them as they are, but for merged
    columns, whose stored keys a load keeps anyway; {table column: sheet column} for the columns a row may keep,
    see validation.KEEP)."""
    contract_columns = set(result.contract.schema.columns)
    stored = [c for c in entity.stored if c.name in contract_columns]
    absent = frozenset(c.table_column for c in stored
                       if c.name not in result.present and c.table_column not in MERGED_COLUMNS)
    return absent, {c.table_column: c.name for c in stored}


def _with_unresolved(frame: pl.DataFrame, entity: Entity, findings: list[Failure]) -> pl.DataFrame:
    """Each row's optional references that named nothing, kept in its metadata as `unresolved` ({column: text as
    written}), so the text is not lost and a later load, once the target exists, resolves it (and drops the note)."""
    if not any(c.name == "metadata" for c in entity.columns):
        return frame
    names = {c.name for c in entity.stored if c.references}
    cells: dict[int, dict[str, str]] = {}
    for finding in findings:
        if finding.rule == "reference_warning" and finding.column in names and finding.row is not None \
                and finding.value is not None:
            cells.setdefault(finding.row, {}).setdefault(finding.column, str(finding.value))  # as first written
    if "metadata" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias("metadata"))
    if not cells:
        return frame
    merged = []
    for row, text in zip(frame[ROW].to_list(), frame["metadata"].to_list()):
        if row in cells:
            kept = json.loads(text) if text else {}
            text = json.dumps({**kept, UNRESOLVED: cells[row]}, ensure_ascii=False)
        merged.append(text)
    return frame.with_columns(pl.Series("metadata", merged, dtype=pl.Utf8))


def _add_keep(frame: pl.DataFrame, rows: list[int], column: str) -> pl.DataFrame:
    """Mark `column` as kept (its stored value stays) on the given rows."""
    if not rows:
        return frame
    if KEEP not in frame.columns:
        frame = frame.with_columns(pl.lit([], dtype=pl.List(pl.Utf8)).alias(KEEP))
    return frame.with_columns(
        pl.when(pl.col(ROW).is_in(rows)).then(pl.col(KEEP).fill_null([]).list.concat(pl.lit([column])))
        .otherwise(pl.col(KEEP)).alias(KEEP))


def load_entity(conn, entity: Entity, result: ValidatedSheet, tenants: dict[str, str], *, max_share: float,
                rejected_keys: dict[str, list[tuple]], load: Provenance) -> tuple[dict[str, Counts], list[Failure],
                                                                                  list[Failure]]:
    """Upsert the sheet's rows into the entity's table (soft-deleting the rows this source loaded and no longer
    has), then sync its junctions. Returns (counts per table, failures, warnings)."""
    if entity.links_only:
        return load_link_sheet(conn, entity, result, tenants)
    platform = tenants[PLATFORM_TENANT_SLUG]
    frame, failures = with_ids(result, entity, tenants)
    scope = tenant_ids(frame, platform) if entity.owner else None
    warnings: list[Failure] = []
    dropped: set[int] = set()
    later: list[Column] = []
    for column in entity.references:
        if not column.table_column:
            continue
        if column.target == entity.sheet:
            later.append(column)  # a row may name a row of this same load: resolved once they are all written
            frame = _add_keep(frame, frame[ROW].to_list(), column.name) \
                if column.name in result.present else frame
            frame = frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias(column.table_column))
            continue
        frame = resolve(frame, live_ids(conn, BY_SHEET[column.target], scope), column.name, column.table_column,
                        platform)
        missing, found = unresolved(frame, result, column, column.table_column, column.required)
        if column.required:
            failures += found
            dropped |= set(missing[ROW].to_list())
        else:
            warnings += found
            frame = _add_keep(frame, missing[ROW].to_list(), column.name)
    frame = _with_unresolved(frame, entity, [*result.warnings, *warnings])
    key_columns = [*([entity.owner] if entity.owner else []), *entity.key]
    if dropped:
        gone = frame.filter(pl.col(ROW).is_in(list(dropped)))
        if entity.owner:
            rejected_keys = {**rejected_keys, entity.sheet: rejected_keys.get(entity.sheet, []) + [
                tuple(r) for r in gone.select(TENANT, *entity.key).iter_rows()]}
        frame = frame.filter(~pl.col(ROW).is_in(list(dropped)))
    if KEEP not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.List(pl.Utf8)).alias(KEEP))
    stage_name = f"stage_{entity.sheet}"
    stored = entity.stored
    # Staged under the table's names: the tenant column as the table calls it, a reference as its id column.
    types = {"id": "uuid", **({entity.owner: "uuid"} if entity.owner else {}),
             **{(c.table_column if c.references else c.name): c.stage_type for c in stored}, KEEP: "text[]"}
    staged = frame.rename({TENANT: entity.owner} if entity.owner and entity.owner != TENANT else {})
    staged = staged.with_columns([pl.lit(None).alias(c) for c in types if c not in staged.columns])
    n = stage(conn, stage_name, staged, types)
    columns = ["id", *([entity.owner] if entity.owner else []), *[c.table_column for c in stored]]
    values = [sql.SQL("s.id"), *([sql.SQL("s.{}").format(sql.Identifier(entity.owner))] if entity.owner else []),
              *[_stage_value(c) for c in stored], sql.SQL("s.{}").format(sql.Identifier(KEEP))]
    order = sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in key_columns)
    select = sql.SQL("select {values} from {stage} s order by {order}").format(
        values=sql.SQL(", ").join(values), stage=sql.Identifier(stage_name), order=order)
    absent, row_keep = _kept(result, entity)
    counts: dict[str, Counts] = {}
    if entity.owner:
        stamped = frame.select(pl.col(TENANT).alias(entity.owner), *entity.key, ROW)
        stamp = provenance_stamp(conn, entity.table, key_columns, stamped, ROW,
                                 Provenance(load.file, entity.sheet, load.sha256, load.load_id))
        table_counts = upsert(conn, entity.table, key_columns, columns, select, soft_delete=entity.soft_delete,
                              staged=n, params={"platform": platform}, keep=absent, row_keep=row_keep, stamp=stamp)
        record_provenance(conn, entity.table, stamp)
        if entity.soft_delete:
            protected = _protected_stage(conn, f"protected_{entity.sheet}", rejected_keys.get(entity.sheet, []),
                                         key_columns)
            doubtful = _doubtful_keys(result, entity)
            absent = soft_delete_missing(
                conn, entity.table, key_columns, f"stage_{entity.sheet}", scope, protected, max_share,
                f"{load.file} › {entity.sheet}", load.file, frame.select(TENANT, *entity.key).n_unique(),
                owner=entity.owner, hold_back=bool(doubtful))
            if doubtful:
                table_counts.held_back_keys = absent
                warnings += _held_back(doubtful, absent, entity)
            else:
                table_counts.deleted_keys = absent
            table_counts.deleted = len(table_counts.deleted_keys)
    else:
        table_counts = upsert(conn, entity.table, key_columns, columns, select, soft_delete=entity.soft_delete,
                              staged=n, params={"platform": platform}, keep=absent, row_keep=row_keep)
    counts[entity.table] = table_counts
    for column in later:
        warnings += _resolve_own_references(conn, entity, column, result, frame, scope, platform)
    for column in entity.links:
        if column.name in result.present:
            link_counts, link_warnings = _sync_link(conn, entity, column, result, frame, scope, platform)
            counts[column.link.table] = link_counts
            warnings += link_warnings
    return counts, failures, warnings


def _doubtful_keys(result: ValidatedSheet, entity: Entity) -> list[Failure]:
    """The failures that put a rejected row's key in doubt (empty, malformed, used twice): such a row may be one of
    the rows the file no longer names (a typo in its key), so no row is deleted for its absence until it is fixed."""
    return [f for f in result.failures if f.column in entity.key and f.row is not None]


def _held_back(doubtful: list[Failure], absent: list[str], entity: Entity) -> list[Failure]:
    """Beside each doubtful key, the deletions held back for it."""
    if not absent:
        return []
    shown = ", ".join(f"`{k}`" for k in absent[:10]) + (f" and {len(absent) - 10} more" if len(absent) > 10 else "")
    said: set[tuple] = set()
    warnings = []
    for failure in doubtful:
        if (failure.sheet, failure.row) in said:
            continue
        said.add((failure.sheet, failure.row))
        warnings.append(dataclasses.replace(
            failure, rule="deletion_held_back_warning",
            message=f"{len(absent)} {entity.table} row(s) this file no longer names are not deleted while this "
                    f"row's key fails, as it may be one of them: {shown}. Fix the key; the next load deletes "
                    f"those still absent."))
    return warnings


def _protected_stage(conn, name: str, keys: list[tuple], key_columns: list[str]) -> str | None:
    """The keys (tenant first) of rows rejected this time: the soft delete spares them."""
    if not keys:
        return None
    frame = pl.DataFrame(keys, schema={c: pl.Utf8 for c in key_columns}, orient="row")
    stage(conn, name, frame, {c: "uuid" if i == 0 else "text" for i, c in enumerate(key_columns)})
    return name


def _resolve_own_references(conn, entity: Entity, column: Column, result: ValidatedSheet, frame: pl.DataFrame,
                            scope: list[str] | None, platform: str) -> list[Failure]:
    """A reference to a row of the same entity (a role's manager), resolved once the load's rows are written."""
    if column.name not in result.present:
        return []
    now = live_ids(conn, entity, scope)
    named = resolve(frame.select(ROW, TENANT, *entity.key, column.name, *(["tenant"] if "tenant" in frame.columns
                                                                        else [])),
                    now, column.name, "_target", platform)
    _missing, warnings = unresolved(named, result, column, "_target", False)
    settled = named.filter(pl.col(column.name).is_null() | pl.col("_target").is_not_null())
    name = f"own_{entity.sheet}_{column.name}"
    stage(conn, name, settled.select(TENANT, *entity.key, "_target"),
          {TENANT: "uuid", **{k: "text" for k in entity.key}, "_target": "uuid"})
    ident = sql.Identifier
    match = sql.SQL(" and ").join(
        [*([sql.SQL("t.{} = s.{}").format(ident(entity.owner), ident(TENANT))] if entity.owner else []),
         *[sql.SQL("t.{k}::text = s.{k}").format(k=ident(k)) for k in entity.key]])
    conn.execute(sql.SQL("update {t} t set {c} = s._target from {s} s where {match} "
                         "and t.{c} is distinct from s._target").format(
        t=ident(entity.table), c=ident(column.table_column), s=ident(name), match=match))
    return warnings


# A junction column filled from an item's place in its cell: (polars type, SQL type, its value per (owner, other)).
POSITIONS = {"is_primary": (pl.Boolean, "boolean", (pl.col("_position") == 0).any()),
             "display_order": (pl.Int64, "int", pl.col("_position").min() + 1)}


def _existing_links(conn, table: str, owner: str, other: str, extra: list[str], owners: list[str]) -> pl.DataFrame:
    ident = sql.Identifier
    rows = conn.execute(sql.SQL("select {o}::text, {x}::text, tenant_id::text{e} from {t} where {o} = any(%s::uuid[])")
                        .format(o=ident(owner), x=ident(other), t=ident(table),
                                e=sql.SQL("").join(sql.SQL(", {}").format(ident(c)) for c in extra)),
                        (owners,)).fetchall()
    return pl.DataFrame(rows, orient="row", schema={owner: pl.Utf8, other: pl.Utf8, TENANT: pl.Utf8,
                                                    **{c: POSITIONS[c][0] for c in extra}})


def _sync_link(conn, entity: Entity, column: Column, result: ValidatedSheet, frame: pl.DataFrame,
               scope: list[str] | None, platform: str) -> tuple[Counts, list[Failure]]:
    """The junction rows of a row entity's `column`: its rows, with their ids as now stored, own the links."""
    owners = frame.select(ROW, TENANT, *entity.key, column.name, *(["tenant"] if "tenant" in frame.columns else [])) \
        .join(live_ids(conn, entity, scope).rename({"code": entity.key[0], "id": column.link.owner}),
              on=[TENANT, entity.key[0]], how="inner")
    return _sync_owned_links(conn, column, result, owners, scope, platform)


def _sync_owned_links(conn, column: Column, result: ValidatedSheet, owners: pl.DataFrame, scope: list[str] | None,
                      platform: str) -> tuple[Counts, list[Failure]]:
    """Make each owner's links in `column.link.table` exactly the items of its cell that resolve, plus, for an owner
    with an item that does not, the links it had (a warning names the item). `owners`: a row per sheet row with
    its ROW, TENANT, the owner's id (named as the junction names it) and the cell."""
    link = column.link
    items = owners.with_columns(pl.col(column.name).fill_null([])).explode(column.name) \
        if column.kind == "list" else owners
    items = items.drop_nulls(column.name) \
        .with_columns(pl.int_range(pl.len()).over(link.owner).alias("_position"))
    resolved = resolve(items, live_ids(conn, BY_SHEET[column.target], scope), column.name, link.other, platform)
    partial, warnings = unresolved(resolved, result, column, link.other, False)
    extra = [link.position] if link.position else []
    found = resolved.filter(pl.col(link.other).is_not_null())
    if link.position:
        found = found.group_by(link.owner, link.other, TENANT).agg(POSITIONS[link.position][2].alias(link.position))
    links = pl.concat([found.select(link.owner, link.other, TENANT, *extra),
                       _existing_links(conn, link.table, link.owner, link.other, extra,
                                       partial[link.owner].unique().to_list())], how="vertical_relaxed") \
        .unique([link.owner, link.other], keep="first")
    links = links.with_columns([pl.lit(value).alias(name) for name, value, _type in link.values])
    types = {link.owner: "uuid", link.other: "uuid", TENANT: "uuid",
             **{c: POSITIONS[c][1] for c in extra},
             **{name: sql_type for name, _value, sql_type in link.values}}
    name = f"link_{link.table}"
    stage(conn, name, links, types)
    return sync_links(conn, link.table, link.owner, link.other, name, [*extra, *(n for n, *_ in link.values)]), warnings


def load_link_sheet(conn, entity: Entity, result: ValidatedSheet, tenants: dict[str, str]):
    """A junction sheet. Its first reference names the owner: every live row with that code, in any tenant (the
    link takes the owner's tenant); a row whose owner is not in the database is rejected. Then either its list
    columns hold the owner's links (an agent's prompt starters; an item that names nothing is a warning), or its
    second reference names the other end of one link per row (a role's responsibility; required)."""
    platform = tenants[PLATFORM_TENANT_SLUG]
    first = entity.references[0]
    frame = result.valid.filter(~pl.col(ROW).is_in(list(result.withheld))) if result.withheld else result.valid
    owners = live_ids(conn, BY_SHEET[first.target], None)
    frame = frame.join(owners.select(pl.col("code").alias(first.name), pl.col(TENANT),
                                     pl.col("id").alias(first.table_column)), on=first.name, how="left")
    _missing, failures = unresolved(frame, result, first, first.table_column, True)
    frame = frame.filter(pl.col(first.table_column).is_not_null())
    counts: dict[str, Counts] = {}
    warnings: list[Failure] = []
    if entity.links:
        for column in entity.links:
            counts[column.link.table], found = _sync_owned_links(
                conn, column, result, frame.rename({first.table_column: column.link.owner})
                if first.table_column != column.link.owner else frame, None, platform)
            warnings += found
        return counts, failures, warnings
    second = entity.references[1]
    frame = resolve(frame, live_ids(conn, BY_SHEET[second.target], None), second.name, second.table_column, platform)
    _missing, found = unresolved(frame, result, second, second.table_column, True)
    failures += found
    frame = frame.filter(pl.col(second.table_column).is_not_null())
    extra = [c for c in entity.stored if not c.references]
    for column in extra:
        if column.default is not None:
            frame = frame.with_columns(pl.col(column.name).fill_null(column.default))
    types = {first.table_column: "uuid", second.table_column: "uuid", TENANT: "uuid",
             **{c.name: c.sql_type or c.stage_type for c in extra}}
    name = f"link_{entity.table}"
    stage(conn, name, frame.unique([first.table_column, second.table_column], keep="first"), types)
    counts[entity.table] = sync_links(conn, entity.table, first.table_column, second.table_column, name,
                                      [c.name for c in extra])
    return counts, failures, warnings


__all__ = ["live_ids", "load_entity", "load_link_sheet", "resolve", "tenant_ids", "unresolved", "with_ids"]
