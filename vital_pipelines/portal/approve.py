"""Approving an upload: the file becomes the tenant's own registry source, the approval is recorded, and the run
that loads exactly that workbook is launched through Dagster's GraphQL API.

The approval names the bytes it approves (SHA-256). When the preview showed that the deletion guard would refuse
the file, the steward approves by typing the number of rows that will be deleted; the approval record beside the
source (`.approvals/<file>.approval.json`) then lets the load of exactly those bytes delete them, whoever runs it (the
portal's run, the raw sensor, the nightly refresh). The previous version of the source is kept in `.history/`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from vital_pipelines.files import write_atomically
from vital_pipelines.loading.tenant_sources import (
    approval_record, source_file_names, tenant_source_name, tenant_source_path,
)
from vital_pipelines.portal.keys import KeyIdentity
from vital_pipelines.spreadsheets.crosswalk import crosswalk_path_for
from vital_pipelines.portal.preview import Preview, preview_upload
from vital_pipelines.portal.uploads import UploadStore


class ApprovalProblem(ValueError):
    """The upload cannot be approved as asked; the message says what to do."""


@dataclass(frozen=True)
class Approval:
    source: str
    path: Path
    sha256: str
    previous: Path | None
    deletions: int
    preview: Preview


def approve_upload(conn: psycopg.Connection, store: UploadStore, who: KeyIdentity, upload_id: str, *,
                   typed_deletions: int | None) -> Approval:
    """Check the upload again (its preview is recomputed now), then put it in place as the tenant's source."""
    report = store.report(who.tenant_slug, upload_id)
    if report.refused:
        raise ApprovalProblem("a refused file cannot be approved: fix the problems in the report and upload it again")
    upload = store.workbook_path(report)
    mapping = store.mapping_path(report)
    preview = preview_upload(conn, upload, report.workbook, who.tenant_slug, store.raw_dir, mapping_file=mapping)
    if preview.guard and typed_deletions != preview.deletions:
        raise ApprovalProblem(f"this file deletes {preview.deletions} row(s), more than a load deletes unasked: type "
                              f"{preview.deletions} to approve exactly those deletions")
    data = upload.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    target = tenant_source_path(store.raw_dir, who.tenant_slug, upload.name)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    previous = None
    history = target.parent / ".history"
    history.mkdir(parents=True, exist_ok=True)
    if target.exists():
        previous = history / f"{target.stem}.{stamp}{target.suffix}"
        shutil.copy2(target, previous)
    # One source per tenant and registry: a copy in another format (personas.csv after personas.xlsx) is retired.
    for name in [] if mapping else source_file_names(report.workbook):
        sibling = target.parent / name
        if name != target.name and sibling.exists():
            os.replace(sibling, history / f"{sibling.stem}.{stamp}{sibling.suffix}")
            approval_record(sibling).unlink(missing_ok=True)
    deletions = preview.deletions if preview.guard else 0
    record = {"sha256": sha, "deletions": deletions, "upload_id": upload_id, "approved_by": who.name,
              "key_id": who.key_id, "approved_at": stamp}
    # The record first: a load never sees the new bytes without the approval that goes with them.
    write_atomically(approval_record(target), json.dumps(record, indent=1).encode("utf-8"))
    if mapping is not None:  # the mapping first: the export is never read through a stale one
        if (target.parent / mapping.name).exists():
            shutil.copy2(target.parent / mapping.name, history / f"{mapping.name}.{stamp}")
        write_atomically(target.parent / mapping.name, mapping.read_bytes())
        crosswalk = crosswalk_path_for(mapping)
        if crosswalk.is_file():  # what the steward taught it in the page goes with it
            if crosswalk_path_for(target.parent / mapping.name).exists():
                shutil.copy2(crosswalk_path_for(target.parent / mapping.name), history / f"{crosswalk.name}.{stamp}")
            write_atomically(crosswalk_path_for(target.parent / mapping.name), crosswalk.read_bytes())
    write_atomically(target, data)
    source = tenant_source_name(who.tenant_slug, target.name)
    with conn.transaction():
        conn.execute(
            "insert into audit_log (tenant_id, source, action, entity_type, entity_id, new_values, details) "
            "values (%s, 'pipeline', 'approve_upload', 'registry_source', %s, %s, %s)",
            (who.tenant_id, source, Jsonb({"sha256": sha}), Jsonb({
                "upload_id": upload_id, "approved_by": who.name, "key_id": who.key_id, "deletions_approved": deletions,
                "previous_version": previous.name if previous else None,
                "changes": {t.table: {"inserted": len(t.inserted), "updated": len(t.updated),
                                      "soft_deleted": len(t.soft_deleted), "unchanged": t.unchanged}
                            for t in preview.tables}})))
    return Approval(source, target, sha, previous, deletions, preview)
