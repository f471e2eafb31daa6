"""Which role the pipeline connects as, and refusing to load with more power than a load needs.

Loads run as a loader role that owns nothing and sees rows only through its own policies (22_tenant_isolation.sql);
schema changes run as the owner. A load that finds itself connected as the owner, a superuser, a role that bypasses
row-level security or a member of one refuses before it writes anything.
"""

from __future__ import annotations

import psycopg

from vital_pipelines.db.connection import redact_url


class PrivilegedRoleError(RuntimeError):
    """The pipeline was about to load with a role that can do more than load."""


def loader_role_problems(conn: psycopg.Connection) -> list[str]:
    """What makes the current role unfit to run loads, in words; empty when it is a plain loader role."""
    row = conn.execute(
        """
        select r.rolsuper, r.rolbypassrls,
               (select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
                 where n.nspname = 'public' and c.relkind in ('r', 'p') and pg_has_role(c.relowner, 'USAGE')),
               (select string_agg(g.rolname, ', ' order by g.rolname) from pg_roles g
                 where g.rolname <> current_user and pg_has_role(g.oid, 'MEMBER')
                   and (g.rolbypassrls or g.rolsuper or g.rolname = 'service_role'))
        from pg_roles r where r.rolname = current_user
        """).fetchone()
    superuser, bypass, owned, powerful = row
    problems = []
    if superuser:
        problems.append("it is a superuser")
    if bypass:
        problems.append("it bypasses row-level security")
    if owned:
        problems.append(f"it owns (or acts as the owner of) {owned} of the schema's tables")
    if powerful:
        problems.append(f"it is a member of {powerful}")
    return problems


def require_loader_role(conn: psycopg.Connection, url: str) -> None:
    """Raise `PrivilegedRoleError` with a sentence that says what to change when the connection's role is more than
    a loader."""
    problems = loader_role_problems(conn)
    if problems:
        user = conn.execute("select current_user").fetchone()[0]
        raise PrivilegedRoleError(
            f"Refusing to load as database role {user!r} ({redact_url(url)}): {'; '.join(problems)}. Loads run as "
            f"the loader role, which owns nothing: set DATABASE_URL to the loader's URL (locally "
            f"postgresql://vital_loader:vital_loader@localhost:5432/vital) and keep the owner's URL in "
            f"DATABASE_OWNER_URL, which only the schema step uses.")
