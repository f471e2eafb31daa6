"""Recognising a load that would change nothing before its source is parsed.

A registry load is skipped when three things are as the last successful load of the same source left them: the
bytes of the source (SHA-256), the load's settings (policy), and a fingerprint of every table the load reads or
writes (its own tables, the tables its references resolve against, the tenants). The fingerprint is an MD5 over
a digest of each table's rows (see `_table_digest`), so a row deleted or edited by hand, a parent load that changed
a referenced row, or a tenant added since, all make the next run load again. Columns that other steps write after
a load (the agent profile vectors) are left out, or the load would never be recognised as unchanged.
"""

from __future__ import annotations

from psycopg import sql

from vital_pipelines.entities import BY_SHEET, workbook_entities
from vital_pipelines.loading.entity_load import DERIVED_LINKS



def _tables_of(workbook: str) -> tuple[str, ...]:
    """What a registry load reads or writes: its entities' tables and junctions, the tables its references resolve
    against, and the tenants."""
    entities = workbook_entities()[workbook]
    tables = [e.table for e in entities]
    tables += [c.link.table for e in entities for c in e.links]
    tables += [junction for e in entities for junction, *_ in DERIVED_LINKS.get(e.sheet, ())]
    tables += [BY_SHEET[c.target].table for e in entities for c in e.references]
    return (*dict.fromkeys(tables), "tenants")


FINGERPRINT_TABLES = {workbook: _tables_of(workbook) for workbook in workbook_entities()} | {
    "solution_industry_matrix.xlsx": ("solution_industry_matrix", "solutions", "industries", "tenants")}
# Written after a load by another step (agent_profile_embeddings), or by every write (updated_at).
AFTER_LOAD_COLUMNS = {"agents": ("profile_embedding", "embedding_model", "profile_sha256", "embedded_at")}
AFTER_LOAD_METADATA_KEYS = {"agents": ("profile_embedding",)}


# Column types PostgreSQL can hash without rendering them as text: a default hash operator class with an extended
# (64-bit, seeded) support function, for the type itself, its base type (a domain) or its element type (an array);
# enums through `anyenum`. Anything else (ltree, in PostgreSQL 15) is hashed as its text.
_HASHABLE_COLUMNS = """
with hashable as (
    select oc.opcintype as type from pg_opclass oc join pg_am am on am.oid = oc.opcmethod and am.amname = 'hash'
    join pg_amproc p on p.amprocfamily = oc.opcfamily and p.amprocnum = 2 where oc.opcdefault
)
select c.relname, a.attname, exists (
    select 1 from hashable h where h.type = case when b.typtype = 'e' then 'anyenum'::regtype
                                                 when b.typcategory = 'A' then b.typelem else b.oid end
       or (b.typcategory = 'A' and h.type = 'anyarray'::regtype and exists (
           select 1 from hashable e join pg_type et on et.oid = b.typelem
           where e.type = case when et.typtype = 'e' then 'anyenum'::regtype else et.oid end)))
from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_type t on t.oid = a.atttypid
join pg_type b on b.oid = case when t.typtype = 'd' then t.typbasetype else t.oid end
where a.attrelid = any(array(select to_regclass('public.' || t) from unnest(%s::text[]) t))
  and a.attnum > 0 and not a.attisdropped order by a.attrelid, a.attnum
"""


def _columns(conn, tables: tuple[str, ...]) -> dict[str, list[tuple[str, bool]]]:
    """(column, hashable) of each table, in table order, read in one catalog query."""
    found: dict[str, list[tuple[str, bool]]] = {table: [] for table in tables}
    for table, name, hashable in conn.execute(_HASHABLE_COLUMNS, (list(tables),)):
        found[table].append((name, hashable))
    return found


def _table_digest(table: str, table_columns: list[tuple[str, bool]]) -> sql.Composed:
    """The sum of a 64-bit hash of every row (its columns but those left out, in table order): independent of row
    order, so no sort. The hash is PostgreSQL's own record hash (each column hashed by its type's hash function,
    as hash partitioning does), which does not render the row as text: four times as fast as an MD5 of the row's
    text on a 33,500-row table."""
    dropped = {"updated_at", *AFTER_LOAD_COLUMNS.get(table, ())}
    columns = [(name, hashable) for name, hashable in table_columns if name not in dropped]
    keys = AFTER_LOAD_METADATA_KEYS.get(table)

    def value(name: str, hashable: bool) -> sql.Composable:
        if name == "metadata" and keys:
            return sql.SQL("coalesce(t.metadata, '{{}}'::jsonb) - {keys}::text[]").format(keys=sql.Literal(list(keys)))
        return sql.SQL("t.{}" if hashable else "t.{}::text").format(sql.Identifier(name))

    values = [value(name, hashable) for name, hashable in columns]
    return sql.SQL("select coalesce(sum(hash_record_extended(row({values}), 0)::numeric), 0)::text || ':' || count(*) "
                   "from {table} t").format(values=sql.SQL(", ").join(values), table=sql.Identifier(table))


def database_fingerprint(conn, workbook: str) -> str:
    """One MD5 over the contents of every table the load of `workbook` reads or writes, as this role sees them."""
    tables = FINGERPRINT_TABLES[workbook]
    columns = _columns(conn, tables)
    parts = [f"{table}:{conn.execute(_table_digest(table, columns[table])).fetchone()[0]}" for table in tables]
    return conn.execute("select md5(%s)", ("|".join(parts),)).fetchone()[0]


def last_load(conn, target: str, source_file: str) -> dict | None:
    """The newest successful load of `source_file` into `target`: its hash, policy and details."""
    row = conn.execute(
        "select id::text, source_sha256, policy, details, finished_at from pipeline_loads "
        "where target = %s and source_file = %s and status = 'succeeded' order by finished_at desc limit 1",
        (target, source_file)).fetchone()
    if row is None:
        return None
    load_id, sha, policy, details, finished = row
    return {"load_id": load_id, "source_sha256": sha, "policy": policy, "details": details or {},
            "finished_at": finished}


def unchanged_load(conn, workbook: str, *, target: str, source_file: str, sha256: str, policy: str) -> dict | None:
    """The last load when loading `source_file` again would change nothing (see the module docstring), else None."""
    previous = last_load(conn, target, source_file)
    if previous is None or previous["source_sha256"] != sha256 or previous["policy"] != policy:
        return None
    recorded = previous["details"].get("fingerprint")
    if recorded is None or recorded != database_fingerprint(conn, workbook):
        return None
    return previous


__all__ = ["FINGERPRINT_TABLES", "database_fingerprint", "last_load", "unchanged_load"]
