"""A tenant's own registry sources: `raw/tenants/<tenant slug>/<workbook>`, written there when a steward's upload
is approved in the portal. Each is loaded after the platform's workbook as a source of its own (its provenance,
quarantine and soft deletes are its own), and only that tenant's rows are taken from it: a row that names another
tenant, or none (the platform), is quarantined with a message saying so.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import polars as pl

from vital_pipelines.files import file_sha256
from vital_pipelines.loading.upsert import PLATFORM_TENANT_SLUG
from vital_pipelines.spreadsheets.validation import ROW, Failure, ValidatedSheet

TENANTS_FOLDER = "tenants"
APPROVAL_SUFFIX = ".approval.json"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")


def is_tenant_slug(text: str) -> bool:
    return bool(_SLUG.match(text))


def tenant_source_name(tenant: str, workbook: str) -> str:
    return f"{TENANTS_FOLDER}/{tenant}/{workbook}"


def tenant_source_path(raw_dir: Path, tenant: str, workbook: str) -> Path:
    if not _SLUG.match(tenant):
        raise ValueError(f"{tenant!r} is not a tenant slug")
    return Path(raw_dir) / TENANTS_FOLDER / tenant / workbook


EXPORT_SUFFIXES = (".csv", ".json", ".jsonl")


def source_file_names(workbook: str) -> list[str]:
    """The names a tenant's copy of `workbook` may have: the workbook, or a CSV/JSON export of a one-sheet registry."""
    stem = Path(workbook).stem
    return [workbook, *(f"{stem}{suffix}" for suffix in EXPORT_SUFFIXES)]


def tenant_folders(raw_dir: Path) -> list[tuple[str, Path]]:
    """(tenant slug, folder) of every tenant folder under raw/tenants/, in slug order."""
    folder = Path(raw_dir) / TENANTS_FOLDER
    if not folder.is_dir():
        return []
    return [(child.name, child) for child in sorted(folder.iterdir()) if child.is_dir() and _SLUG.match(child.name)]


def tenant_sources(raw_dir: Path, workbook: str) -> list[tuple[str, Path]]:
    """(tenant slug, path) of every tenant's copy of `workbook` (any of its formats), in slug order."""
    folder = Path(raw_dir) / TENANTS_FOLDER
    if not folder.is_dir():
        return []
    return [(child.name, child / name) for child in sorted(folder.iterdir())
            if child.is_dir() and _SLUG.match(child.name)
            for name in source_file_names(workbook) if (child / name).is_file()]


def rows_of_other_tenants(result: ValidatedSheet, tenant: str) -> list[Failure]:
    """A failure for every valid row of the sheet that names a tenant other than `tenant`. An empty tenant cell, or
    no tenant column, means the source's own tenant (see `own_tenant`): a steward need not type it on every row."""
    frame = result.valid
    if not frame.height or "tenant" not in frame.columns:
        return []
    letter = result.letters.get("tenant")
    found = []
    for row, owner in frame.select(ROW, "tenant").rows():
        if owner is not None and owner != tenant:
            where = "in the tenant column" if letter else "in a new `tenant` column"
            found.append(Failure(file=result.file, sheet=result.contract.sheet, row=row, column="tenant",
                                 letter=letter, value=owner, rule="tenant_of_source",
                                 message=f"this row belongs to `{owner}`, but this file holds the rows of `{tenant}`: "
                                         f"write `{tenant}` {where}, or remove the row", offer=tenant))
    return found


def own_tenant(result: ValidatedSheet, tenant: str) -> None:
    """A tenant's source: its rows with an empty tenant cell (or no tenant column) are the tenant's."""
    for name in ("valid", "rejected"):
        frame = getattr(result, name)
        if "tenant" in frame.columns:
            frame = frame.with_columns(pl.col("tenant").fill_null(tenant))
        else:
            frame = frame.with_columns(pl.lit(tenant, dtype=pl.Utf8).alias("tenant"))
        setattr(result, name, frame)


def approval_record(source_path: Path) -> Path:
    """Where the approval of a tenant's source is kept: a hidden folder beside it, so that nothing that looks for
    sources or exports beside a mapping file ever takes it for one."""
    return source_path.parent / ".approvals" / (source_path.name + APPROVAL_SUFFIX)


def approved_deletions(source_path: Path, sha256: str) -> int | None:
    """The deletions approved for exactly these bytes of a tenant's source, or None when none were."""
    record = approval_record(source_path)
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return int(data["deletions"]) if data.get("sha256") == sha256 and data.get("deletions") else None


def approved_upload(source_path: Path) -> str | None:
    """The portal upload whose approval put exactly the current bytes of a tenant's source in place, or None (the
    file was changed since, or never approved in the portal)."""
    try:
        data = json.loads(approval_record(source_path).read_text(encoding="utf-8"))
        current = file_sha256(Path(source_path))
    except (OSError, ValueError):
        return None
    upload = data.get("upload_id")
    return upload if data.get("sha256") == current and isinstance(upload, str) else None


# How long the raw sensor leaves a just-approved source to the run the portal launches for it.
APPROVAL_GRACE_SECONDS = 20


def approval_in_flight(paths, *, now: float | None = None, grace: float = APPROVAL_GRACE_SECONDS) -> bool:
    """Whether one of these source files was approved in the portal in the last `grace` seconds (its approval
    record is that young and names its current bytes): the portal is launching the run that loads it, and a second
    run of the same content would only queue behind it."""
    now = time.time() if now is None else now
    for path in paths:
        record = approval_record(Path(path))
        try:
            young = now - record.stat().st_mtime < grace
        except OSError:
            continue
        if young and approved_upload(Path(path)) is not None:
            return True
    return False
