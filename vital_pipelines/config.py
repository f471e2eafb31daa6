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

DEFAULT_DATABASE_URL = "postgresql://vital:vital@localhost:5432/vital"


def database_url() -> str:
    """The pipeline's target: `DATABASE_URL` when set, else the local database the set-up script creates."""
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
