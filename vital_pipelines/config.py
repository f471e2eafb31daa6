"""Project paths and the database URL every entry point agrees on."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = PROJECT_ROOT / "schema"
ASSETS_DIR = PROJECT_ROOT / "assets"
# Operators can point the pipeline at a mounted share instead of the checkout's folders.
RAW_DIR = Path(os.environ.get("VITAL_RAW_DIR") or PROJECT_ROOT / "raw")
KNOWLEDGE_DIR = Path(os.environ.get("VITAL_KNOWLEDGE_DIR") or ASSETS_DIR / "knowledge")


def reports_dir() -> Path:
    """Annotated workbooks and failure reports for stewards: VITAL_REPORTS_DIR (a shared folder when steps run on
    several hosts), else out/steward/ in the checkout."""
    return Path(os.environ.get("VITAL_REPORTS_DIR") or PROJECT_ROOT / "out" / "steward")

# scripts/setup creates both roles locally: the schema's owner, and the loader that owns nothing.
DEFAULT_DATABASE_URL = "postgresql://vital_loader:vital_loader@localhost:5432/vital"
DEFAULT_OWNER_DATABASE_URL = "postgresql://vital:vital@localhost:5432/vital"
# Searches on behalf of a user: a role that can only switch to `authenticated` (Supabase: `authenticator`).
DEFAULT_SEARCH_DATABASE_URL = "postgresql://vital_search:vital_search@localhost:5432/vital"
LOADER_URL_VARIABLE = "DATABASE_URL"
OWNER_URL_VARIABLE = "DATABASE_OWNER_URL"
SEARCH_URL_VARIABLE = "SEARCH_DATABASE_URL"


class ConfigurationError(RuntimeError):
    """A setting is missing or contradicts another; the message says which to set."""


def database_url() -> str:
    """Where loads connect, as the loader role: `DATABASE_URL` when set, else the local database."""
    return os.environ.get(LOADER_URL_VARIABLE) or DEFAULT_DATABASE_URL


def owner_database_url() -> str:
    """Where schema changes connect, as the schema's owner: `DATABASE_OWNER_URL` when set; else, when
    `DATABASE_URL` is not set either, the local database. A remote DATABASE_URL without an owner URL is an error:
    the local owner is never the right guess for someone else's server."""
    if os.environ.get(OWNER_URL_VARIABLE):
        return os.environ[OWNER_URL_VARIABLE]
    if os.environ.get(LOADER_URL_VARIABLE):
        raise ConfigurationError(f"{LOADER_URL_VARIABLE} is set but {OWNER_URL_VARIABLE} is not: schema changes run as "
                           f"the schema's owner; set {OWNER_URL_VARIABLE} to that role's URL.")
    return DEFAULT_OWNER_DATABASE_URL


def search_database_url() -> str:
    """Where searches on behalf of a user connect: `SEARCH_DATABASE_URL` when set; else, when `DATABASE_URL` is not
    set either, the local `vital_search` role. Like the owner's, it is never guessed for someone else's server."""
    if os.environ.get(SEARCH_URL_VARIABLE):
        return os.environ[SEARCH_URL_VARIABLE]
    if os.environ.get(LOADER_URL_VARIABLE):
        raise ConfigurationError(f"{LOADER_URL_VARIABLE} is set but {SEARCH_URL_VARIABLE} is not: a search on behalf "
                                 f"of a user connects as a role that may only switch to `authenticated` (on Supabase "
                                 f"`authenticator`); set {SEARCH_URL_VARIABLE} to that role's URL.")
    return DEFAULT_SEARCH_DATABASE_URL
