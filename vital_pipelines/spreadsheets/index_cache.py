"""Validated reference keys kept by content: a workbook that references the org structure needs its valid keys,
and validating the org workbook again each time costs more than the rest of a small load. An index is stored under
a digest of the upstream sources' bytes and rules (in order), of what the database held when it was validated on top
of it, and of the validation code itself, so any change to a sheet, to the rows it was checked against, or to the
contracts and rules that judge it, is a miss. JSON only: a cache file is data, never code.

The folder is `VITAL_CACHE_DIR`, else `.cache/` in the checkout; being keyed by content, it need not be shared
between hosts, and deleting it costs one validation.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

from vital_pipelines import config
from vital_pipelines.files import write_atomically
from vital_pipelines.spreadsheets.validation import ReferenceIndex

KEPT_FILES = 64  # the newest; a registry has a handful of upstream chains


def cache_dir() -> Path:
    return Path(os.environ.get("VITAL_CACHE_DIR") or config.PROJECT_ROOT / ".cache") / "reference_keys"


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """What validation depends on besides the bytes: the package's spreadsheet code, the entity catalog the
    contracts are built from, and the enums."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    entities = package.parent / "entities"
    for source in sorted([*package.glob("*.py"), *entities.glob("*.py"), package.parent / "enums.py"]):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


def chain_key(chain: list[tuple[str, str]]) -> str:
    """The cache key of an index built from `chain`: (workbook name, SHA-256 of its bytes), upstream first."""
    text = json.dumps([_code_digest(), chain])
    return hashlib.sha256(text.encode()).hexdigest()


def load(key: str) -> ReferenceIndex | None:
    try:
        stored = json.loads((cache_dir() / f"{key}.json").read_text(encoding="utf-8"))
        return ReferenceIndex(
            keys={t: set(v) for t, v in stored["keys"].items()},
            names={t: {n: set(c) for n, c in v.items()} for t, v in stored["names"].items()},
            titles=stored["titles"], parents=stored["parents"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # missing, half-written by an older version, or damaged: validate again


def store(key: str, index: ReferenceIndex) -> None:
    stored = {"keys": {t: sorted(v) for t, v in index.keys.items()},
              "names": {t: {n: sorted(c) for n, c in v.items()} for t, v in index.names.items()},
              "titles": {t: dict(v) for t, v in index.titles.items()},
              "parents": {t: {k: dict(p) for k, p in v.items()} for t, v in index.parents.items()}}
    folder = cache_dir()
    try:
        write_atomically(folder / f"{key}.json", json.dumps(stored, ensure_ascii=False).encode("utf-8"))
        files = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in files[KEPT_FILES:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only or full disk costs speed, not correctness
