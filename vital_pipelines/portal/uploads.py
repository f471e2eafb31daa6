"""A steward's uploads: stored per tenant under names the portal makes, validated with the pipeline's own
hardened reader and contracts, and reported cell by cell. No web here: the portal's pages call these functions.

An upload lives in `<portal dir>/<tenant slug>/<upload id>/` as the registry workbook it stands for (its name
chosen from the registry's own list, never taken from the uploaded file's name), with `report.json` beside it and,
when asked for, the annotated copy.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from vital_pipelines.loading.tenant_sources import EXPORT_SUFFIXES, rows_of_other_tenants
from vital_pipelines.spreadsheets.report import failures_csv
from vital_pipelines.spreadsheets.safety import UnsafeWorkbookError
from vital_pipelines.spreadsheets.validation import Failure, SheetRefused
from vital_pipelines.spreadsheets.workbooks import WORKBOOKS, validate_registry_workbook

MAX_UPLOAD_BYTES = 25 * 1024 * 1024
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{16,40}$")


class UploadProblem(ValueError):
    """An upload that cannot be taken (too large, not a registry workbook); the message says why."""


@dataclass
class Report:
    upload_id: str
    tenant: str
    workbook: str
    uploaded_at: str
    original_name: str
    stored: str = ""  # the file's name on disk: the workbook, or `personas.csv` / `.json` / `.jsonl` for an export
    rows: dict[str, int] = field(default_factory=dict)  # per sheet: rows read
    refused: bool = False
    findings: list[dict] = field(default_factory=list)  # failures and warnings, each with its severity

    @property
    def failures(self) -> list[dict]:
        return [f for f in self.findings if f["severity"] == "failure"]

    @property
    def warnings(self) -> list[dict]:
        return [f for f in self.findings if f["severity"] == "warning"]

    def rule_counts(self) -> list[tuple[str, str, int]]:
        counts = Counter((f["severity"], f["rule"]) for f in self.findings)
        return [(severity, rule, n) for (severity, rule), n in sorted(counts.items())]

    def select(self, *, rule: str | None = None, column: str | None = None, severity: str | None = None) -> list[dict]:
        return [f for f in self.findings if (not rule or f["rule"] == rule) and (not column or f["column"] == column)
                and (not severity or f["severity"] == severity)]

    def as_json(self) -> str:
        return json.dumps(vars(self), indent=1, ensure_ascii=False)

    def as_csv(self) -> str:
        return failures_csv(self.findings)


def registry_workbooks() -> list[str]:
    """The workbooks a steward can upload, by the file name the pipeline reads."""
    return sorted(WORKBOOKS)


class UploadStore:
    def __init__(self, root: Path, raw_dir: Path):
        self.root = Path(root)
        self.raw_dir = Path(raw_dir)

    def folder(self, tenant: str, upload_id: str) -> Path:
        if not _UPLOAD_ID.match(upload_id) or not re.fullmatch(r"[a-z0-9-]{1,100}", tenant):
            raise FileNotFoundError(upload_id)
        folder = self.root / tenant / upload_id
        if not folder.is_dir():
            raise FileNotFoundError(upload_id)
        return folder

    def save(self, tenant: str, workbook: str, data: bytes, original_name: str) -> Report:
        """Store the bytes as `workbook` for `tenant`, validate them and keep the report; returns the report."""
        if workbook not in WORKBOOKS:
            raise UploadProblem(f"choose which registry workbook this is ({', '.join(registry_workbooks())})")
        if len(data) > MAX_UPLOAD_BYTES:
            raise UploadProblem(f"the file is {len(data) / 1e6:.1f} MB, over the {MAX_UPLOAD_BYTES / 1e6:.0f} MB limit")
        if not data:
            raise UploadProblem("the file is empty")
        stored = _stored_name(workbook, data, original_name)
        upload_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_urlsafe(12)
        folder = self.root / tenant / upload_id
        folder.mkdir(parents=True)
        path = folder / stored
        _write_atomically(path, data)
        report = Report(upload_id=upload_id, tenant=tenant, workbook=workbook, stored=stored,
                        uploaded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        original_name=Path(original_name or "").name[:200])
        _validate(report, path, self.raw_dir)
        _write_atomically(folder / "report.json", report.as_json().encode("utf-8"))
        return report

    def report(self, tenant: str, upload_id: str) -> Report:
        data = json.loads((self.folder(tenant, upload_id) / "report.json").read_text(encoding="utf-8"))
        return Report(**data)

    def workbook_path(self, tenant: str, upload_id: str) -> Path:
        report = self.report(tenant, upload_id)
        return self.folder(tenant, upload_id) / (report.stored or report.workbook)

    def annotated(self, tenant: str, upload_id: str) -> Path:
        """The upload with every failing and warned cell highlighted and commented (made once, then kept)."""
        from vital_pipelines.spreadsheets.report import annotate_workbook

        report = self.report(tenant, upload_id)
        folder = self.folder(tenant, upload_id)
        if not (report.stored or report.workbook).endswith(".xlsx"):
            raise FileNotFoundError("an export has no annotated copy: its report names every line")
        target = folder / f"{Path(report.workbook).stem}.annotated.xlsx"
        if not target.exists():
            annotate_workbook(folder / (report.stored or report.workbook), [_failure(f) for f in report.findings],
                              target)
        return target

    def write_state(self, tenant: str, upload_id: str, state: dict) -> None:
        """What became of the upload after its approval (its source, the run that loads it)."""
        _write_atomically(self.folder(tenant, upload_id) / "approval.json", json.dumps(state).encode("utf-8"))

    def read_state(self, tenant: str, upload_id: str) -> dict | None:
        path = self.folder(tenant, upload_id) / "approval.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def uploads(self, tenant: str) -> list[Report]:
        folder = self.root / tenant
        if not re.fullmatch(r"[a-z0-9-]{1,100}", tenant) or not folder.is_dir():
            return []
        found = []
        for child in sorted(folder.iterdir(), reverse=True):
            if _UPLOAD_ID.match(child.name) and (child / "report.json").exists():
                found.append(self.report(tenant, child.name))
        return found


def _stored_name(workbook: str, data: bytes, original_name: str) -> str:
    """Which name the upload is stored under: an Excel workbook (a zip package) as the registry's workbook, a CSV or
    JSON export of a one-sheet registry as `<registry>.csv` / `.json` / `.jsonl` (by the uploaded name's extension)."""
    if data[:4] == b"PK\x03\x04":
        return workbook
    suffix = Path(original_name or "").suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise UploadProblem("the file is neither an Excel workbook (.xlsx) nor a CSV or JSON export "
                            "(.csv, .json, .jsonl)")
    if len(WORKBOOKS[workbook]) != 1:
        raise UploadProblem(f"{workbook} has several sheets: upload it as an Excel workbook")
    return Path(workbook).stem + suffix


def _write_atomically(path: Path, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as temporary:
        temporary.write(data)
        partial = Path(temporary.name)
    os.replace(partial, path)


def _finding(failure: Failure, severity: str) -> dict:
    return {**failure.as_dict(), "severity": severity}


def _failure(finding: dict) -> Failure:
    return Failure(file=finding["file"], sheet=finding["sheet"], row=finding["row"], column=finding["column"],
                   letter=re.sub(r"\d+$", "", finding["cell"] or "") or None, value=finding["value"],
                   rule=finding["rule"], message=finding["message"])


def _validate(report: Report, path: Path, raw_dir: Path) -> None:
    """Validate with the pipeline's isolated reader; a refused sheet or file is a finding, never an exception."""
    try:
        sheets = validate_registry_workbook(path, raw_dir=raw_dir, isolated=True)
    except SheetRefused as refused:
        report.refused = True
        report.findings = [_finding(f, "failure") for f in refused.failures]
        return
    except UnsafeWorkbookError as error:
        report.refused = True
        report.findings = [{"file": report.workbook, "sheet": "", "cell": "", "row": None, "column": None,
                            "value": None, "rule": "unreadable_file", "message": str(error), "severity": "failure"}]
        return
    for name, result in sheets.items():
        report.rows[name] = result.valid.height + result.rejected.height
        report.findings += [_finding(f, "failure") for f in result.failures]
        report.findings += [_finding(f, "warning") for f in result.warnings]
        report.findings += [_finding(f, "failure") for f in rows_of_other_tenants(result, report.tenant)]
    report.findings.sort(key=lambda f: (f["sheet"], f["row"] or 0, f["cell"] or "", f["rule"]))
