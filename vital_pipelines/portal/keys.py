"""Tenant API keys (the schema's `api_keys`): created and revoked by the operator, checked by the portal.

A key is shown once, when it is created; the table keeps its first characters (to find the candidate row) and a
bcrypt hash made by pgcrypto, which `private.verify_api_key` compares (crypt() recomputes the hash from the
presented key, so no plain comparison of secrets happens in Python).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

import psycopg

KEY_PREFIX = "vk_"
PREFIX_LENGTH = 12  # "vk_" and 9 random characters: enough that a presented key meets one candidate row
BCRYPT_COST = 10


class KeyProblem(ValueError):
    """A key cannot be created or revoked as asked; the message says why."""


@dataclass(frozen=True)
class KeyIdentity:
    key_id: str
    tenant_id: str
    tenant_slug: str
    name: str


@dataclass(frozen=True)
class KeyListing:
    key_id: str
    tenant_slug: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def create_key(conn: psycopg.Connection, tenant_slug: str, name: str) -> tuple[str, KeyListing]:
    """A new key for `tenant_slug` named `name` (as the schema's owner); returns the key, which is not stored."""
    name = " ".join(name.split())
    if not name or len(name) > 100:
        raise KeyProblem("a key needs a name of 1 to 100 characters")
    tenant = conn.execute("select id from tenants where slug = %s", (tenant_slug,)).fetchone()
    if tenant is None:
        raise KeyProblem(f"no tenant has the slug {tenant_slug!r}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    try:
        with conn.transaction():
            row = conn.execute(
                "insert into api_keys (tenant_id, name, key_prefix, key_hash, scopes) "
                "values (%s, %s, %s, crypt(%s, gen_salt('bf', %s)), array['steward']) "
                "returning id, key_prefix, created_at", (tenant[0], name, key[:PREFIX_LENGTH], key, BCRYPT_COST)).fetchone()
    except psycopg.errors.UniqueViolation:
        raise KeyProblem(f"tenant {tenant_slug} already has a key named {name!r}; revoke it or choose another name") from None
    return key, KeyListing(str(row[0]), tenant_slug, name, row[1], row[2], None, None)


def list_keys(conn: psycopg.Connection, tenant_slug: str | None = None) -> list[KeyListing]:
    rows = conn.execute(
        "select k.id, t.slug, k.name, k.key_prefix, k.created_at, k.last_used_at, k.revoked_at "
        "from api_keys k join tenants t on t.id = k.tenant_id "
        "where %(slug)s::text is null or t.slug = %(slug)s order by t.slug, k.created_at", {"slug": tenant_slug})
    return [KeyListing(str(r[0]), r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]


def revoke_key(conn: psycopg.Connection, tenant_slug: str, name: str) -> bool:
    """Revoke the tenant's live key of that name; False when there is none."""
    with conn.transaction():
        row = conn.execute(
            "update api_keys k set revoked_at = now(), updated_at = now() from tenants t "
            "where t.id = k.tenant_id and t.slug = %s and k.name = %s and k.revoked_at is null returning k.id",
            (tenant_slug, name)).fetchone()
    return row is not None


def verify_key(conn: psycopg.Connection, presented: str) -> KeyIdentity | None:
    """The identity behind a presented key, or None when it is unknown, revoked or expired."""
    if not presented.startswith(KEY_PREFIX) or len(presented) > 200:
        return None
    row = conn.execute(
        "select v.key_id, v.tenant_id, s.tenant_slug, s.key_name from private.verify_api_key(%s) v, "
        "lateral private.api_key_session(v.key_id) s limit 1", (presented,)).fetchone()
    conn.rollback()
    return KeyIdentity(str(row[0]), str(row[1]), row[2], row[3]) if row else None


def session_identity(conn: psycopg.Connection, key_id: str) -> KeyIdentity | None:
    """The identity of a signed-in session's key while that key is live (a revoked key ends its sessions)."""
    try:
        key = uuid.UUID(key_id)
    except ValueError:
        return None
    row = conn.execute("select tenant_id, tenant_slug, key_name from private.api_key_session(%s)", (key,)).fetchone()
    conn.rollback()
    return KeyIdentity(str(key), str(row[0]), row[1], row[2]) if row else None
