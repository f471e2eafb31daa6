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
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import yaml

from vital_pipelines.files import write_atomically
from vital_pipelines.loading.sources import Source, validate_source
from vital_pipelines.loading.tenant_sources import (
    EXPORT_SUFFIXES, is_tenant_slug, rows_of_other_tenants, source_file_names,
)
from vital_pipelines.spreadsheets.contracts import CONTRACTS
from vital_pipelines.spreadsheets.crosswalk import crosswalk_path_for
from vital_pipelines.spreadsheets.edits import CellEdit, EditProblem, apply_edits
from vital_pipelines.spreadsheets.mapping import MAPPING_SUFFIX, MappingError, load_mapping
from vital_pipelines.spreadsheets.report import failures_csv, groups, plain
from vital_pipelines.spreadsheets.safety import UnsafeWorkbookError
from vital_pipelines.spreadsheets.validation import Failure, ReferenceIndex, SheetRefused
from vital_pipelines.spreadsheets.workbooks import WORKBOOKS, MappedSource, workbook_kind

MAX_UPLOAD_BYTES = 25 * 1024 * 1024
DRAFT_DAYS = 7  # how long an export waits to be mapped in the page
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
    mapping: str = ""  # the mapping file's name on disk, for an export in another layout
    rows: dict[str, int] = field(default_factory=dict)  # per sheet: rows read
    refused: bool = False
    findings: list[dict] = field(default_factory=list)  # failures and warnings, each with its severity
    parent: str = ""  # the upload this version was made from by edits in the page
    version: int = 1
    edits: list[dict] = field(default_factory=list)  # the edits that made this version: sheet, cell, old, new

    @property
    def editable(self) -> bool:
        """Whether its cells can be fixed in the page: a workbook or CSV in the registry's own layout."""
        return not self.mapping and Path(self.stored or self.workbook).suffix.lower() in (".xlsx", ".csv")

    def bulk_fixes(self) -> list[dict]:
        """Findings of one kind that one replacement fixes (failures, and warnings such as a value left out): the same
        value, column and rule in two or more cells, with the suggestion they share (if any). For an export read
        through a mapping, whose cells are not edited, every value of a reference or allowed-values column: the
        replacement is remembered in its crosswalk or its mapping's synonyms, for this export and the next."""
        found: dict[tuple, list[dict]] = {}
        for f in self.findings:
            if f["column"] and f["value"] is not None and f["row"] and (f["cell"] or self.mapping):
                found.setdefault((f["sheet"], f["column"], f["value"], f["rule"]), []).append(f)
        return [{"sheet": sheet, "column": column, "value": value, "rule": rule, "count": len(cells),
                 "suggestion": cells[0].get("suggestion") or "", "cells": [c["cell"] for c in cells]}
                for (sheet, column, value, rule), cells in sorted(found.items(), key=lambda kv: -len(kv[1]))
                if (len(cells) > 1 and not self.mapping) or (self.mapping and _rememberable(sheet, column))]

    @property
    def failures(self) -> list[dict]:
        return [f for f in self.findings if f["severity"] == "failure"]

    @property
    def warnings(self) -> list[dict]:
        return [f for f in self.findings if f["severity"] == "warning"]

    def groups(self) -> list[str]:
        """The biggest groups of findings of one kind, said once each (see report.groups), plain text."""
        return [plain(line) for line in groups([_failure(f) for f in self.findings])]

    def rule_counts(self) -> list[tuple[str, str, int]]:
        counts = Counter((f["severity"], f["rule"]) for f in self.findings)
        return [(severity, rule, n) for (severity, rule), n in sorted(counts.items())]

    def select(self, *, rule: str | None = None, column: str | None = None, severity: str | None = None) -> list[dict]:
        return [f for f in self.findings if (not rule or f["rule"] == rule) and (not column or f["column"] == column)
                and (not severity or f["severity"] == severity)]

    def download_name(self, kind: str) -> str:
        """A download's name after the steward's own file and this version: `acme personas (v2).annotated.xlsx`."""
        stem = re.sub(r'[\x00-\x1f"\\/]', "", Path(self.original_name or self.workbook).stem)[:120].strip()
        version = f" (v{self.version})" if self.version > 1 else ""
        return f"{stem or Path(self.workbook).stem}{version}.{kind}"

    def as_json(self) -> str:
        return json.dumps(vars(self), indent=1, ensure_ascii=False)

    def as_csv(self) -> str:
        return failures_csv(self.findings)


@dataclass(frozen=True)
class UploadSummary:
    """One line of the uploads list: an upload's report, counted."""

    upload_id: str
    uploaded_at: str
    original_name: str
    workbook: str
    version: int
    refused: bool
    failures: int
    warnings: int

    @classmethod
    def of(cls, report: Report) -> "UploadSummary":
        return cls(report.upload_id, report.uploaded_at, report.original_name, report.workbook, report.version,
                   report.refused, len(report.failures), len(report.warnings))


def registry_workbooks() -> list[str]:
    """The workbooks a steward can upload, by the file name the pipeline reads."""
    return sorted(WORKBOOKS)


class UploadStore:
    def __init__(self, root: Path, raw_dir: Path):
        self.root = Path(root)
        self.raw_dir = Path(raw_dir)

    def folder(self, tenant: str, upload_id: str) -> Path:
        if not _UPLOAD_ID.match(upload_id) or not is_tenant_slug(tenant):
            raise FileNotFoundError(upload_id)
        folder = self.root / tenant / upload_id
        if not folder.is_dir():
            raise FileNotFoundError(upload_id)
        return folder

    def save(self, tenant: str, workbook: str, data: bytes, original_name: str, *, mapping: bytes | None = None,
             references: ReferenceIndex | None = None, parent: Report | None = None,
             edits: list[dict] = (), crosswalk: bytes | None = None) -> Report:
        """Store the bytes as `workbook` for `tenant` (or, with `mapping`, as the export that mapping file reads,
        whose entity then decides the workbook), validate them and keep the report; returns the report.
        `references`: what the database holds, for an export's references. `parent`: the upload these bytes were
        made from by `edits` (a new version of it)."""
        if len(data) > MAX_UPLOAD_BYTES:
            raise UploadProblem(f"the file is {len(data) / 2 ** 20:.1f} MiB, over the {MAX_UPLOAD_BYTES // 2 ** 20} MiB "
                                "limit")
        if not data:
            raise UploadProblem("the file is empty")
        # to the microsecond, so that versions made within one second list newest first
        upload_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f") + "-" + secrets.token_urlsafe(12)
        folder = self.root / tenant / upload_id
        folder.mkdir(parents=True)
        try:
            mapping_name = ""
            if mapping is not None:
                workbook, stored, mapping_name = _mapped_names(folder, mapping, data, original_name)
                if crosswalk is not None:
                    write_atomically(crosswalk_path_for(folder / mapping_name), crosswalk)
            elif parent is not None:
                workbook = parent.workbook
                stored = parent.stored or parent.workbook
            else:
                workbook = _recognised(folder, data, original_name) or workbook
                if workbook not in WORKBOOKS:
                    raise UploadProblem("the file's name and sheets do not say which registry it is: name it after "
                                        f"its registry ({', '.join(registry_workbooks())}, or the .csv/.json of a "
                                        "one-sheet registry), or map it as an export in another layout")
                stored = _stored_name(workbook, data, original_name)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # a refused upload leaves nothing behind
            raise
        path = folder / stored
        write_atomically(path, data)
        report = Report(upload_id=upload_id, tenant=tenant, workbook=workbook, stored=stored, mapping=mapping_name,
                        uploaded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        original_name=Path(original_name or "").name[:200],
                        parent=parent.upload_id if parent else "", version=parent.version + 1 if parent else 1,
                        edits=list(edits))
        _validate(report, path, self.raw_dir, folder / mapping_name if mapping_name else None, references)
        write_atomically(folder / "report.json", report.as_json().encode("utf-8"))
        write_atomically(folder / "summary.json", json.dumps(vars(UploadSummary.of(report))).encode("utf-8"))
        return report

    def revise(self, tenant: str, upload_id: str, edits: list[CellEdit],
               references: ReferenceIndex | None = None) -> Report:
        """A new version of the upload: its file with `edits` applied, checked again; the upload itself is kept as
        it was (its report, its approval)."""
        report = self.report(tenant, upload_id)
        if not report.editable:
            raise UploadProblem("this file's cells cannot be edited in the page (an export read through a mapping, "
                                "or a JSON export): correct the file and upload it again")
        if not edits:
            raise UploadProblem("nothing to change: type a new value in a cell, or pick a suggestion")
        path = self.workbook_path(report)
        try:
            data = apply_edits(path, edits)
        except EditProblem as problem:
            raise UploadProblem(str(problem)) from None
        found = {(f["sheet"], f["cell"]): f["value"] for f in report.findings}
        done = [{"sheet": e.sheet, "cell": e.cell, "old": found.get((e.sheet, e.cell)), "new": e.value} for e in edits]
        return self.save(tenant, report.workbook, data, report.original_name, references=references, parent=report,
                         edits=done)

    def remember(self, tenant: str, upload_id: str, sheet: str, column: str, found: str, code: str,
                 references: ReferenceIndex | None = None) -> Report:
        """A new version of a mapped export's upload whose rules read `found` in `column` as `code`: in the crosswalk
        beside its mapping (a reference column) or as one of the mapping's `values:` synonyms (an allowed-values
        column). The export itself is not changed: the next export from the same system reads the same way."""
        report = self.report(tenant, upload_id)
        mapping_path = self.mapping_path(report)
        if mapping_path is None:
            raise UploadProblem("only an export read through a mapping remembers a replacement; fix the cells")
        kind = _rememberable(sheet, column)
        if not kind or not code.strip():
            raise UploadProblem(f"`{column}` is neither a reference nor an allowed-values column, or no value was "
                                f"given: correct the export")
        rules = mapping_path.read_bytes()
        crosswalk_file = crosswalk_path_for(mapping_path)
        table = yaml.safe_load(crosswalk_file.read_text(encoding="utf-8")) if crosswalk_file.is_file() else None
        table = table if isinstance(table, dict) else {}
        if kind == "crosswalk":
            table.setdefault(column, {})[found] = code.strip()
        else:
            data = yaml.safe_load(rules) or {}
            rule = (data.get("columns") or {}).get(column)
            if rule is None:
                raise UploadProblem(f"the mapping does not map `{column}`")
            rule = {"from": rule} if not isinstance(rule, dict) else rule
            rule.setdefault("values", {})[found] = code.strip()
            data["columns"][column] = rule
            rules = ("# Synonyms added in the steward portal.\n"
                     + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10_000)).encode("utf-8")
        crosswalk = yaml.safe_dump(table, sort_keys=False, allow_unicode=True).encode("utf-8") if table else None
        edit = [{"sheet": sheet, "cell": "", "old": found, "new": code.strip(),
                 "remembered_in": "crosswalk" if kind == "crosswalk" else "mapping synonyms", "column": column}]
        return self.save(tenant, report.workbook, self.workbook_path(report).read_bytes(),
                         report.original_name, mapping=rules, crosswalk=crosswalk, references=references,
                         parent=report, edits=edit)

    def save_draft(self, tenant: str, data: bytes, original_name: str) -> str:
        """An export kept while the steward maps its columns in the page (`drafts/<id>/export.<suffix>`, with its
        original name beside it); returns the draft's id."""
        if len(data) > MAX_UPLOAD_BYTES:
            raise UploadProblem(f"the file is over the {MAX_UPLOAD_BYTES // 2 ** 20} MiB limit")
        if not data:
            raise UploadProblem("the file is empty")
        suffix = ".xlsx" if data[:4] == b"PK\x03\x04" else Path(original_name or "").suffix.lower()
        if suffix not in (".xlsx", *EXPORT_SUFFIXES):
            raise UploadProblem("the export is neither an Excel workbook nor a CSV or JSON file")
        self._forget_old_drafts(tenant)
        draft_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f") + "-" + secrets.token_urlsafe(12)
        folder = self.root / tenant / "drafts" / draft_id
        folder.mkdir(parents=True)
        write_atomically(folder / f"export{suffix}", data)
        write_atomically(folder / "name.txt", Path(original_name or "").name[:200].encode("utf-8"))
        return draft_id

    def _forget_old_drafts(self, tenant: str, days: float = DRAFT_DAYS) -> None:
        """Exports left unmapped for `days` are removed (a mapped one lives on as its upload)."""
        import time

        drafts = self.root / tenant / "drafts"
        if not drafts.is_dir():
            return
        for folder in drafts.iterdir():
            if _UPLOAD_ID.match(folder.name) and time.time() - folder.stat().st_mtime > days * 86_400:
                shutil.rmtree(folder, ignore_errors=True)

    def draft(self, tenant: str, draft_id: str) -> tuple[Path, str]:
        """(the draft export's path, its original name)."""
        if not _UPLOAD_ID.match(draft_id) or not is_tenant_slug(tenant):
            raise FileNotFoundError(draft_id)
        folder = self.root / tenant / "drafts" / draft_id
        found = [p for p in folder.glob("export.*")] if folder.is_dir() else []
        if not found:
            raise FileNotFoundError(draft_id)
        return found[0], (folder / "name.txt").read_text(encoding="utf-8")

    def claim_approval(self, tenant: str, upload_id: str) -> bool:
        """Whether this caller may approve the upload: the first claim wins (an exclusive create), so a double
        click or two tabs approve once and launch one run."""
        try:
            os.close(os.open(self.folder(tenant, upload_id) / ".approval-claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                             0o600))
            return True
        except FileExistsError:
            return False

    def release_approval(self, tenant: str, upload_id: str) -> None:
        """An approval that was refused (e.g. the deletions were not confirmed) may be tried again."""
        (self.folder(tenant, upload_id) / ".approval-claimed").unlink(missing_ok=True)

    def mapping_path(self, report: Report) -> Path | None:
        """The upload's mapping file (of a report read with `report`), or None."""
        return self.folder(report.tenant, report.upload_id) / report.mapping if report.mapping else None

    def report(self, tenant: str, upload_id: str) -> Report:
        data = json.loads((self.folder(tenant, upload_id) / "report.json").read_text(encoding="utf-8"))
        return Report(**data)

    def workbook_path(self, report: Report) -> Path:
        """The uploaded file (of a report read with `report`)."""
        return self.folder(report.tenant, report.upload_id) / (report.stored or report.workbook)

    def annotated(self, tenant: str, upload_id: str) -> Path:
        """The upload with every failing and warned cell highlighted and commented (made once, then kept)."""
        from vital_pipelines.spreadsheets.report import annotate_workbook

        report = self.report(tenant, upload_id)
        folder = self.folder(tenant, upload_id)
        if not (report.stored or report.workbook).endswith(".xlsx"):
            raise FileNotFoundError("an export has no annotated copy: its report names every line")
        target = folder / "_annotated.xlsx"  # `_` first: no export's name (its mapping's `source:`) can take it
        if not target.exists():
            annotate_workbook(folder / (report.stored or report.workbook), [_failure(f) for f in report.failures],
                              target, [_failure(f) for f in report.warnings])
        return target

    def write_state(self, tenant: str, upload_id: str, state: dict) -> None:
        """What became of the upload after its approval (its source, the run that loads it)."""
        write_atomically(self.folder(tenant, upload_id) / "approval.json", json.dumps(state).encode("utf-8"))

    def read_state(self, tenant: str, upload_id: str) -> dict | None:
        path = self.folder(tenant, upload_id) / "approval.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def upload_ids(self, tenant: str) -> list[str]:
        """The tenant's uploads, newest first (their folders' names, nothing read)."""
        folder = self.root / tenant
        if not is_tenant_slug(tenant) or not folder.is_dir():
            return []
        return [child.name for child in sorted(folder.iterdir(), reverse=True)
                if _UPLOAD_ID.match(child.name) and (child / "report.json").exists()]

    def summary(self, tenant: str, upload_id: str) -> UploadSummary:
        """What the uploads list shows of one upload, from the small summary written beside its report (a report
        holds every finding: a list of versions must not parse them all); one written before summaries existed is
        summarised from its report once."""
        path = self.folder(tenant, upload_id) / "summary.json"
        try:
            return UploadSummary(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            summary = UploadSummary.of(self.report(tenant, upload_id))
            write_atomically(path, json.dumps(vars(summary)).encode("utf-8"))
            return summary


def _rememberable(sheet: str, column: str) -> str | None:
    """Where a replacement of a mapped export's value is kept: `crosswalk` for a reference column, `synonyms` for an
    allowed-values column, None for any other."""
    contract = CONTRACTS.get(sheet)
    if contract is None or column not in contract.schema.columns:
        return None
    meta = contract.schema.columns[column].metadata or {}
    if meta.get("references"):
        return "crosswalk"
    return "synonyms" if meta.get("kind") == "enum" else None


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


_EXPORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}\.(csv|json|jsonl|xlsx)$")


def _mapped_names(folder: Path, mapping: bytes, data: bytes, original_name: str) -> tuple[str, str, str]:
    """(workbook, export file name, mapping file name) of an export uploaded with its mapping file. The export is
    stored under the name its mapping's `source:` gives (a plain file name, checked), else beside the mapping under
    its stem; never under the uploaded file's name."""
    draft = folder / f"upload{MAPPING_SUFFIX}"
    write_atomically(draft, mapping)
    try:
        parsed = load_mapping(draft)
    except MappingError as error:
        raise UploadProblem(f"the mapping file was refused: {error}") from None
    workbook = CONTRACTS[parsed.entity].workbook
    if parsed.source:
        if not _EXPORT_NAME.match(parsed.source):
            raise UploadProblem(f"the mapping's `source:` must be a plain file name (letters, digits, `_`, `-`, `.`; "
                                f".csv, .json, .jsonl or .xlsx); got {parsed.source!r}")
        export = parsed.source
    else:
        suffix = ".xlsx" if data[:4] == b"PK\x03\x04" else Path(original_name or "").suffix.lower()
        if suffix not in (".xlsx", *EXPORT_SUFFIXES):
            raise UploadProblem("the export is neither an Excel workbook nor a CSV or JSON file")
        export = f"{parsed.entity}_export{suffix}"
    if export in source_file_names(workbook):
        raise UploadProblem(f"an export in another layout cannot be named {export} (the registry's own name); "
                            f"rename it and its mapping's `source:`")
    mapping_name = Path(export).stem + MAPPING_SUFFIX
    os.replace(draft, folder / mapping_name)
    return workbook, export, mapping_name


def _recognised(folder: Path, data: bytes, original_name: str) -> str | None:
    """Which registry workbook the bytes are, from the file itself: its name (`personas.xlsx`, `personas.csv`), else
    the sheets a workbook holds (`my file (2).xlsx` with a `personas` sheet); None when neither says."""
    name = Path(original_name or "").name.lower()
    for workbook in WORKBOOKS:
        if name in source_file_names(workbook):
            return workbook
    if not name.endswith(".xlsx"):
        return None
    probe = folder / ".probe.xlsx"
    try:
        probe.write_bytes(data)
        return workbook_kind(probe)
    except (UnsafeWorkbookError, ValueError, OSError):
        return None
    finally:
        probe.unlink(missing_ok=True)


def upload_sheets(path: Path, raw_dir: Path, mapping_file: Path | None = None,
                  references: ReferenceIndex | None = None) -> dict:
    """The validated sheets of an upload (a registry workbook or export, or an export read through its mapping), as
    the load would validate it: `validate_source`, with `references` (what the database holds)."""
    if mapping_file is None:
        source = Source(path, workbook_kind(path))
    else:
        export = MappedSource(mapping_file, load_mapping(mapping_file), path)
        source = Source(path, export.workbook, export)
    return validate_source(source, raw_dir=raw_dir, references=references, isolated=True)


def _finding(failure: Failure, severity: str) -> dict:
    return {**failure.as_dict(), "severity": severity}


def _failure(finding: dict) -> Failure:
    return Failure(file=finding["file"], sheet=finding["sheet"], row=finding["row"], column=finding["column"],
                   letter=re.sub(r"\d+$", "", finding["cell"] or "") or None, value=finding["value"],
                   rule=finding["rule"], message=finding["message"])


def _validate(report: Report, path: Path, raw_dir: Path, mapping_file: Path | None,
              references: ReferenceIndex | None) -> None:
    """Validate with the pipeline's isolated reader; a refused sheet or file is a finding, never an exception."""
    try:
        sheets = upload_sheets(path, raw_dir, mapping_file, references)
    except MappingError as error:
        report.refused = True
        report.findings = [{"file": report.mapping, "sheet": "", "cell": "", "row": None, "column": None,
                            "value": None, "rule": "mapping", "message": str(error), "severity": "failure"}]
        return
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
