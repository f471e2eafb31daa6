"""A populated tenant world for the row-level security matrix: rows of every table of the schema, made from the
catalog, for every tenant of the 5-level hierarchy and a sibling, and the people who act on them.

`RowFactory` builds an insertable row of any table from its columns, foreign keys and a few overrides where a
check constraint wants a particular value; parents are created as needed, each row with parents of its own, so that
a row can be deleted without touching another's.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import re
import uuid
from dataclasses import dataclass, field

import psycopg

PLATFORM = "00000000-0000-0000-0000-000000000001"
PROVIDER = "11111111-1111-1111-1111-111111111111"
ACME = "22222222-2222-2222-2222-222222222222"
PARTNER = "33333333-3333-3333-3333-333333333333"
TRIAL = "44444444-4444-4444-4444-444444444444"
LEVELS = (PLATFORM, PROVIDER, ACME, PARTNER, TRIAL)
ROLES = ("owner", "admin", "member", "viewer")

# Values a check constraint or trigger insists on, by table and column ({n}: a number unique to the value);
# everything else comes from the type.
OVERRIDES: dict[tuple[str, str], str] = {
    ("pipeline_loads", "policy"): "quarantine",
    ("pipeline_loads", "status"): "succeeded",
    ("audit_log", "source"): "pipeline",
    ("tenant_members", "role"): "member",
    ("tenant_members", "status"): "active",
    ("industries", "code"): "v_industry_{n}",
    ("deliverables", "content"): "text",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    category: str
    enum_first: str | None
    required: bool
    max_length: int | None


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]


# Nullable references a check constraint needs one of (num_nonnulls(...) >= 1).
REQUIRED_REFERENCES = {("consultation_feedback", "consultation_id"), ("vote_records", "voter_user_id")}


@dataclass
class Table:
    name: str
    columns: dict[str, Column]
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    allowed: dict[str, str] = field(default_factory=dict)  # column -> first value its `= ANY (ARRAY[...])` check allows
    one_per_tenant: bool = False  # unique on the owner column alone: a new row must replace the tenant's row

    @property
    def owner_column(self) -> str | None:
        for name in ("tenant_id", "owner_tenant_id"):
            if name in self.columns:
                return name
        return "id" if self.name == "tenants" else None


def catalog(conn: psycopg.Connection) -> dict[str, Table]:
    tables: dict[str, Table] = {}
    for table, name, typ, category, enum_first, notnull, defaulted, typmod in conn.execute("""
        select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), t.typcategory,
               (select e.enumlabel from pg_enum e where e.enumtypid = t.oid order by e.enumsortorder limit 1),
               a.attnotnull, a.atthasdef or a.attidentity <> '' or a.attgenerated <> '', a.atttypmod
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
        join pg_type t on t.oid = a.atttypid
        where n.nspname = 'public' and c.relkind in ('r', 'p')
          and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')
        order by c.relname, a.attnum"""):
        entry = tables.setdefault(table, Table(table, {}))
        if defaulted and not notnull:
            continue
        max_length = typmod - 4 if category == "S" and typmod > 4 else None
        entry.columns[name] = Column(name, typ, category, enum_first, notnull and not defaulted, max_length)
    for table, columns, parent, parent_columns in conn.execute("""
        select c.conrelid::regclass::text, array(select attname::text from pg_attribute a, unnest(c.conkey) with ordinality k(n, i)
                                                 where a.attrelid = c.conrelid and a.attnum = k.n order by k.i),
               c.confrelid::regclass::text,
               array(select attname::text from pg_attribute a, unnest(c.confkey) with ordinality k(n, i)
                     where a.attrelid = c.confrelid and a.attnum = k.n order by k.i)
        from pg_constraint c where c.contype = 'f' and c.connamespace = 'public'::regnamespace"""):
        if table in tables:
            tables[table].foreign_keys.append(ForeignKey(tuple(columns), parent, tuple(parent_columns)))
    for table, definition in conn.execute("select conrelid::regclass::text, pg_get_constraintdef(oid) from pg_constraint "
                                          "where contype = 'c' and connamespace = 'public'::regnamespace"):
        listed = re.match(r"CHECK \(\(\(?(\w+)\)?(?:::text)? = ANY \(\(?ARRAY\['([^']*)'", definition)
        if listed and table in tables:
            tables[table].allowed[listed.group(1)] = listed.group(2)
    for table, columns in conn.execute("""
        select c.conrelid::regclass::text, array(select attname::text from pg_attribute a, unnest(c.conkey) k(n)
                                                 where a.attrelid = c.conrelid and a.attnum = k.n)
        from pg_constraint c where c.contype in ('u', 'p') and c.connamespace = 'public'::regnamespace"""):
        if table in tables and columns == [tables[table].owner_column] and table != "tenants":
            tables[table].one_per_tenant = True
    return tables


class RowFactory:
    """Insertable rows of any table, as column → text value (cast to the column's type on insert). Runs as a role
    that may write every table (the schema owner, whose membership of service_role passes every table's policy)."""

    def __init__(self, conn: psycopg.Connection, tables: dict[str, Table], user_id: str):
        self.conn = conn
        self.tables = tables
        self.user_id = user_id
        self._serial = itertools.count(1)

    def values(self, table: str, tenant: str | None, **given: str | None) -> dict[str, str | None]:
        """A new row for `table` owned by `tenant`, with fresh parents; `given` values win."""
        spec = self.tables[table]
        row: dict[str, str | None] = {}
        for fk in spec.foreign_keys:
            if any(c in given for c in fk.columns):
                continue
            if not any((spec.columns.get(c) and spec.columns[c].required) or (table, c) in REQUIRED_REFERENCES
                       for c in fk.columns):
                continue
            row.update(zip(fk.columns, self._parent(fk, tenant)))
        for column in spec.columns.values():
            if column.name in row or column.name in given or not (column.required or (table, column.name) in OVERRIDES):
                continue
            row[column.name] = self._value(table, column)
        if spec.owner_column and spec.owner_column != "id":
            row[spec.owner_column] = tenant or PLATFORM
        row.update(given)
        return row

    def insert(self, table: str, row: dict[str, str | None], returning: tuple[str, ...] = ()) -> tuple | None:
        spec = self.tables[table]
        columns = list(row)
        statement = "insert into public.{} ({}) values ({})".format(
            _quote(table), ", ".join(map(_quote, columns)),
            ", ".join(f"%s::{spec.columns[c].type}" for c in columns))
        if returning:
            statement += " returning " + ", ".join(f"{_quote(c)}::text" for c in returning)
        cursor = self.conn.execute(statement, [row[c] for c in columns])
        return cursor.fetchone() if returning else None

    def create(self, table: str, tenant: str | None, **given: str | None) -> None:
        self.insert(table, self.values(table, tenant, **given))

    def _parent(self, fk: ForeignKey, tenant: str | None) -> tuple:
        if fk.parent == "auth.users":
            return (self.user_id,)
        if fk.parent == "tenants":
            return (tenant or PLATFORM,)
        parent = self.tables[fk.parent]
        extra = {"visibility": "tenant"} if "visibility" in parent.columns else {}
        if fk.parent == "org_functions":
            return self.conn.execute("select " + ", ".join(f"{_quote(c)}::text" for c in fk.parent_columns)
                                     + " from org_functions order by code limit 1").fetchone()
        return self.insert(fk.parent, self.values(fk.parent, tenant, **extra), returning=fk.parent_columns)

    def _value(self, table: str, column: Column) -> str:
        n = next(self._serial)
        if (table, column.name) in OVERRIDES:
            return OVERRIDES[(table, column.name)].format(n=n)
        if column.name in self.tables[table].allowed:
            return self.tables[table].allowed[column.name]
        if column.enum_first is not None:
            return column.enum_first
        if column.type == "uuid":
            return str(uuid.uuid4())
        if column.category == "A":
            return "{}"
        if column.category == "B":
            return "false"
        if column.category == "N":
            return "1"
        if column.category == "D":
            return datetime.date(1000 + n // 12, n % 12 + 1, 1).isoformat()  # unique, and the first of a month
        if column.type in ("jsonb", "json"):
            return "{}"
        if column.category == "S":
            if column.max_length == 64 or "sha256" in column.name or column.name.endswith("_hash"):
                return hashlib.sha256(str(n).encode()).hexdigest()[: column.max_length or 64]
            if "email" in column.name:
                return f"u{n}@example.com"
            text = f"V-{n}" if column.name == "code" or column.name.endswith("_code") else f"v-{n}"
            return text[: column.max_length] if column.max_length else text
        raise AssertionError(f"no test value for {table}.{column.name} of type {column.type}")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Actor:
    """Someone the matrix acts as: a database role, and for `authenticated` a user with one membership."""

    name: str
    role: str  # anon | authenticated | service_role | vital_loader
    user_id: str | None = None
    tenant: str | None = None
    tenant_role: str | None = None


# Tables whose rows the schema's triggers write as a side effect of other rows (the knowledge search's statistics).
KEPT_BY_TRIGGERS = {"knowledge_lexicon", "knowledge_corpus"}


def build(conn: psycopg.Connection) -> tuple[list[Actor], dict[str, Table], dict[str, dict[str, dict]], str]:
    """Populate the database (as the owner, committed): a sibling of Acme, members of every role at every level,
    rows of every table for every tenant (one per visibility level where the table has one, created by that
    tenant's member), and one insertable candidate row per table and tenant. Returns the actors, the catalog, the
    candidates (table → tenant → values) and the sibling tenant's id."""
    tables = catalog(conn)
    sibling = conn.execute(
        "insert into tenants (parent_tenant_id, name, slug, tenant_level, hierarchy_depth, contact_email, contact_name) "
        "values (%s, 'Globex Bio', 'globex-bio', 'enterprise_client', 2, 'ops@globex.example', 'Globex') returning id::text",
        (PROVIDER,)).fetchone()[0]
    tenants = [*LEVELS, sibling]

    def user(email: str) -> str:
        user_id = str(uuid.uuid4())
        conn.execute("insert into auth.users (id, email) values (%s, %s)", (user_id, email))
        conn.execute("insert into user_profiles (id, email) values (%s, %s)", (user_id, email))
        return user_id

    actors = [Actor("anon", "anon"), Actor("service_role", "service_role"), Actor("loader", "vital_loader")]
    for level, tenant in enumerate(LEVELS):
        for role in ROLES:
            user_id = user(f"{role}{level}@example.com")
            conn.execute("insert into tenant_members (tenant_id, user_id, role) values (%s, %s, %s)", (tenant, user_id, role))
            actors.append(Actor(f"L{level} {role}", "authenticated", user_id, tenant, role))
    sibling_member = user("member@globex.example")
    conn.execute("insert into tenant_members (tenant_id, user_id, role) values (%s, %s, 'member')", (sibling, sibling_member))
    actors.append(Actor("sibling member", "authenticated", sibling_member, sibling, "member"))
    creators = {a.tenant: a.user_id for a in actors if a.tenant_role == "member"}

    factory = RowFactory(conn, tables, creators[PLATFORM])
    visibilities = [r[0] for r in conn.execute("select unnest(enum_range(null::visibility_level))::text")]
    # Rows of the trigger-kept tables come from the chunks (one per tenant, under `tenant` documents).
    skip = {"tenants", "tenant_members", "user_profiles", "schema_migrations", *KEPT_BY_TRIGGERS}
    for name, spec in tables.items():
        if name in skip:
            continue
        owners = tenants if spec.owner_column else [None]
        for tenant in owners:
            factory.user_id = creators.get(tenant, creators[PLATFORM])
            for visibility in (visibilities if "visibility" in spec.columns else [None]):
                given = {"visibility": visibility} if visibility else {}
                if "created_by" in spec.columns:
                    given["created_by"] = factory.user_id
                factory.create(name, tenant, **given)
    candidates: dict[str, dict[str, dict]] = {}
    for name, spec in tables.items():
        if name == "schema_migrations":
            continue
        owners = tenants if spec.owner_column else [None]
        for tenant in owners:
            if name == "tenant_members":
                candidate = {"tenant_id": tenant, "user_id": user(f"invitee-{uuid.uuid4().hex[:8]}@example.com"),
                             "role": "member"}
            elif name == "user_profiles":
                fresh = str(uuid.uuid4())
                conn.execute("insert into auth.users (id) values (%s)", (fresh,))
                candidate = {"id": fresh, "email": f"{fresh[:8]}@example.com"}
            elif name == "tenants":
                depth = conn.execute("select hierarchy_depth from tenants where id = %s", (tenant,)).fetchone()[0]
                levels = [r[0] for r in conn.execute("select unnest(enum_range(null::tenant_level))::text")]
                if depth + 1 >= len(levels):
                    continue  # a trial tenant has no level below it
                candidate = factory.values("tenants", None, parent_tenant_id=tenant, tenant_level=levels[depth + 1],
                                           hierarchy_depth=str(depth + 1), slug=f"candidate-{uuid.uuid4().hex[:8]}")
            else:
                # The statistics kept by triggers hold a row per (tenant, visibility) that has chunks, which the
                # world's chunks (all under `tenant` documents) never have for `private`.
                visibility = "private" if name in KEPT_BY_TRIGGERS else "tenant"
                candidate = factory.values(name, tenant, **({"visibility": visibility} if "visibility" in spec.columns else {}))
            candidates.setdefault(name, {})[str(tenant)] = candidate
    conn.commit()
    return actors, tables, candidates, sibling
