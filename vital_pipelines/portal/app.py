"""The stewards' web portal: sign in with a tenant API key, upload a registry workbook, read every failure and
warning, download the annotated workbook and the report, see the tenant's quarantined rows.

Server-rendered pages (FastAPI, Jinja2), no JavaScript. Every page and API call needs a live key: a browser signs in
once (a signed session cookie naming the key, checked against the database on every request, so revoking the key
ends the session); an API client sends `Authorization: Bearer <key>`. Anything else answers 401. Form posts carry
a CSRF token bound to the session.
"""

from __future__ import annotations

import hmac
import math
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml
from psycopg import sql as psycopg_sql
from fastapi import FastAPI, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from vital_pipelines import config
from vital_pipelines.db import connect
from vital_pipelines.loading.sources import content_tag, registry_content_sha
from vital_pipelines.portal.approve import ApprovalProblem, approve_upload
from vital_pipelines.loading import history
from vital_pipelines.loading.registry import database_references
from vital_pipelines.loading.upsert import PLATFORM_TENANT_SLUG
from vital_pipelines.spreadsheets.contracts import CONTRACTS
from vital_pipelines.spreadsheets.edits import CellEdit, EditProblem, is_cell
from vital_pipelines.spreadsheets.safety import UnsafeWorkbookError
from vital_pipelines.spreadsheets.suggest import NoEntityFits, export_headers, mapping_from_choices, suggest_mapping
from vital_pipelines.spreadsheets.mapping import MAX_MAPPING_BYTES, MappingError
from vital_pipelines.spreadsheets.report import rule_words
from vital_pipelines.portal.keys import KeyIdentity, session_identity, verify_key
from vital_pipelines.portal.preview import preview_upload
from vital_pipelines.portal.rows import HISTORY_PAGES, PAGE_SIZE, natural_keys, quarantined
from vital_pipelines.loading.ledger import load_outcome
from vital_pipelines.loading.registry import ledger_target
from vital_pipelines.portal.runs import RunProblem, RunState, launch_workbook_run, queue_has_no_daemon, run_state
from vital_pipelines.portal.uploads import MAX_UPLOAD_BYTES, UploadProblem, UploadStore

# A request carries the file, perhaps its mapping, and a few form fields: the file's limit and room for the rest.
MAX_REQUEST_BYTES = MAX_UPLOAD_BYTES + MAX_MAPPING_BYTES + 64 * 1024
TOO_BIG = f"The upload is over the {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB limit."

SESSION_SECONDS = 8 * 3600
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.filters["rule_words"] = rule_words


@dataclass(frozen=True)
class PortalSettings:
    database_url: str
    portal_dir: Path
    raw_dir: Path
    secret: str
    dagster_url: str | None = None
    reports_dir: Path | None = None  # where the pipeline's runs write annotated copies of the platform's workbooks


def default_settings() -> PortalSettings:
    import os

    return PortalSettings(
        database_url=config.database_url(),
        portal_dir=Path(os.environ.get("VITAL_PORTAL_DIR") or config.PROJECT_ROOT / ".portal"),
        raw_dir=config.RAW_DIR,
        # Without a configured secret, sessions last as long as the process.
        secret=os.environ.get("VITAL_PORTAL_SECRET") or secrets.token_urlsafe(32),
        dagster_url=os.environ.get("DAGSTER_WEBSERVER_URL"),
        reports_dir=config.reports_dir(),
    )


class NotSignedIn(Exception):
    pass


# The forms of the pages (sign-in, fixes, a mapping's choices, approvals) are small; only the uploads carry files,
# and they check the key and their own limit before reading a byte (`_upload_form`).
MAX_FORM_BYTES = 1024 * 1024
UPLOAD_PATHS = ("/uploads", "/api/uploads", "/mappings")


class FormLimit:
    """Any other request body over MAX_FORM_BYTES is refused with 413: a declared size before a byte is read (a
    client waiting for `100 Continue` sends nothing), a body without one as soon as it passes the limit; form
    parsing never holds more."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in UPLOAD_PATHS:
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_FORM_BYTES):
            refusal = JSONResponse({"error": "the request is larger than any form of this site"}, status_code=413)
            return await refusal(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_FORM_BYTES:
                raise HTTPException(413, "The request is larger than any form of this site.")
            return message

        return await self.app(scope, counted, send)


def create_app(settings: PortalSettings | None = None) -> FastAPI:
    settings = settings or default_settings()
    store = UploadStore(settings.portal_dir, settings.raw_dir)
    app = FastAPI(title="VITAL data steward portal", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SessionMiddleware, secret_key=settings.secret, session_cookie="vital_portal",
                       max_age=SESSION_SECONDS, same_site="strict", https_only=False)
    app.add_middleware(FormLimit)

    def identity(request: Request) -> KeyIdentity:
        header = request.headers.get("authorization", "")
        with connect(settings.database_url) as conn:
            if header.lower().startswith("bearer "):
                found = verify_key(conn, header[7:].strip())
            elif request.session.get("key_id"):
                found = session_identity(conn, request.session["key_id"])
            else:
                found = None
        if found is None:
            request.session.pop("key_id", None)
            raise NotSignedIn()
        return found

    def csrf_token(request: Request) -> str:
        if "csrf" not in request.session:
            request.session["csrf"] = secrets.token_urlsafe(24)
        return request.session["csrf"]

    def check_csrf(request: Request, token: str) -> None:
        if request.headers.get("authorization"):
            return  # API clients authenticate every call with their key; no cookie is involved
        if not hmac.compare_digest(token or "", request.session.get("csrf", "")):
            raise HTTPException(403, "The form has expired or did not come from this site: reload the page and try again.")

    def page(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(request, template, {"csrf": csrf_token(request), **context},
                                          status_code=status_code)

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, _error: NotSignedIn):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "a valid, unrevoked API key is required"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        return page(request, "signin.html", status_code=401, message="Sign in with your tenant's API key.")

    @app.exception_handler(HTTPException)
    async def http_problem(request: Request, error: HTTPException):
        if request.url.path.startswith("/api/") or request.headers.get("authorization"):
            return JSONResponse({"error": error.detail}, status_code=error.status_code)
        try:
            who = identity(request)
        except NotSignedIn:
            who = None
        return page(request, "error.html", status_code=error.status_code, message=error.detail, who=who,
                    back=_way_back(request.url.path) if who and error.status_code != 404 else [])

    @app.get("/signin", response_class=HTMLResponse)
    def signin_form(request: Request):
        return page(request, "signin.html", status_code=401, message="Sign in with your tenant's API key.")

    @app.post("/signin")
    def signin(request: Request, key: str = Form(""), csrf: str = Form("")):
        check_csrf(request, csrf)
        with connect(settings.database_url) as conn:
            found = verify_key(conn, key.strip())
        if found is None:
            return page(request, "signin.html", status_code=401, message="That key is unknown, revoked or expired.")
        request.session.clear()
        request.session["key_id"] = found.key_id
        return RedirectResponse("/", status_code=303)

    @app.post("/signout")
    def signout(request: Request, csrf: str = Form("")):
        check_csrf(request, csrf)
        request.session.clear()
        return RedirectResponse("/signin", status_code=303)

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request, page_number: int = Query(1, alias="page")):
        who = identity(request)
        ids = store.upload_ids(who.tenant_slug)
        pages = max(1, math.ceil(len(ids) / PAGE_SIZE))
        page_number = min(max(1, page_number), pages)
        shown = [store.summary(who.tenant_slug, upload_id)
                 for upload_id in ids[(page_number - 1) * PAGE_SIZE: page_number * PAGE_SIZE]]
        approvals = {}
        follow = True  # one wait for a Dagster that does not answer, not one per upload
        with connect(settings.database_url) as conn:
            for upload in shown:
                state = store.read_state(who.tenant_slug, upload.upload_id)
                if state is not None:
                    approvals[upload.upload_id] = approval_status(upload.upload_id, state, who.tenant_slug, conn,
                                                                  follow=follow)
                    follow = follow and not approvals[upload.upload_id].get("unreachable")
            conn.rollback()
        return page(request, "home.html", who=who, uploads=shown, approvals=approvals, pages=pages,
                    page_number=page_number, limit_mb=MAX_UPLOAD_BYTES // (1024 * 1024))

    async def _upload_form(request: Request):
        """The upload's form, read only now: after the key (the caller's identity) and the declared size were
        checked, so a refused upload never sends its body (a client that asks `Expect: 100-continue` gets the
        refusal first) and nothing of it is spooled. A body without a declared size is counted as it arrives and
        cut off at the limit."""
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_REQUEST_BYTES):
            raise HTTPException(413, TOO_BIG)
        received = 0
        upstream = request.receive

        async def counted():
            nonlocal received
            message = await upstream()
            received += len(message.get("body", b""))
            if received > MAX_REQUEST_BYTES:
                raise HTTPException(413, TOO_BIG)
            return message

        limited = Request(request.scope, receive=counted)
        return await limited.form(max_files=2, max_fields=8, max_part_size=MAX_UPLOAD_BYTES + 1)

    async def _receive(request: Request, who: KeyIdentity, workbook: str, file: UploadFile,
                       mapping: UploadFile | None = None):
        data = await file.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise HTTPException(413, TOO_BIG)
        rules = await mapping.read(MAX_MAPPING_BYTES + 1) if _given(mapping) else None
        try:
            # checked as the load will check it: against the folder's sources and what the database holds
            references = database_now()
            return store.save(who.tenant_slug, workbook, data, file.filename or "", mapping=rules,
                              references=references)
        except UploadProblem as problem:
            raise HTTPException(422, str(problem)) from None

    def database_now():
        """What the database holds now, for the references of a file checked as the load will check it."""
        with connect(settings.database_url) as conn:
            references = database_references(conn)
            conn.rollback()
        return references

    async def posted_file(request: Request, missing: str, *, csrf: bool = True):
        """(the caller, the form, its file): the key and the declared size checked before the body is read."""
        who = identity(request)
        form = await _upload_form(request)
        if csrf:
            check_csrf(request, str(form.get("csrf", "")))
        file = form.get("file")
        if not _given(file):
            raise HTTPException(422, missing)
        return who, form, file

    def _given(part) -> bool:
        return part is not None and not isinstance(part, str) and bool(getattr(part, "filename", None))

    @app.post("/uploads")
    async def upload(request: Request):
        who, form, file = await posted_file(request, "Choose a file to upload.")
        report = await _receive(request, who, str(form.get("workbook", "")), file, form.get("mapping"))
        return RedirectResponse(f"/uploads/{report.upload_id}", status_code=303)

    def _report(who: KeyIdentity, upload_id: str):
        try:
            return store.report(who.tenant_slug, upload_id)
        except (FileNotFoundError, ValueError):
            raise HTTPException(404, "No such upload for your tenant.") from None

    @app.get("/uploads/{upload_id}", response_class=HTMLResponse)
    def report_page(request: Request, upload_id: str, rule: str = "", column: str = "", severity: str = "",
                    page_number: int = Query(1, alias="page")):
        who = identity(request)
        report = _report(who, upload_id)
        selected = report.select(rule=rule or None, column=column or None, severity=severity or None)
        pages = max(1, math.ceil(len(selected) / PAGE_SIZE))
        page_number = min(max(1, page_number), pages)
        shown = selected[(page_number - 1) * PAGE_SIZE: page_number * PAGE_SIZE]
        columns = sorted({f["column"] for f in report.findings if f["column"]})
        seen: set[tuple] = set()
        for finding in shown:  # one input per cell, on the cell's first finding
            place = (finding["sheet"], finding["cell"])
            finding["fixable"] = is_cell(finding["cell"]) and place not in seen
            seen.add(place)
        return page(request, "report.html", who=who, report=report, findings=shown, selected=len(selected),
                    page_number=page_number, pages=pages, rule=rule, column=column, severity=severity,
                    columns=columns, rules=sorted({f["rule"] for f in report.findings}),
                    failing_rows=len({(f["sheet"], f["row"]) for f in report.failures}), groups=report.groups(),
                    bulk=report.bulk_fixes()[:12] if report.editable or report.mapping else [])

    def _revised(who: KeyIdentity, upload_id: str, edits: list[CellEdit]):
        references = database_now()
        try:
            revised = store.revise(who.tenant_slug, upload_id, edits, references)
        except UploadProblem as problem:
            raise HTTPException(422, str(problem)) from None
        return RedirectResponse(f"/uploads/{revised.upload_id}", status_code=303)

    @app.post("/uploads/{upload_id}/fixes")
    async def fixes(request: Request, upload_id: str):
        """The cells the steward changed in the report (and the suggestion taken with one click): a new version."""
        who = identity(request)
        form = await request.form(max_files=0, max_fields=4 * PAGE_SIZE + 8)
        check_csrf(request, str(form.get("csrf", "")))
        report = _report(who, upload_id)
        found = {f"{f['sheet']}!{f['cell']}": f for f in report.findings}
        edits = {}
        try:
            for name, value in form.multi_items():
                place = name.removeprefix("cell:")
                if name.startswith("cell:") and place in found and str(value) != (found[place]["value"] or ""):
                    edits[place] = CellEdit(found[place]["sheet"], found[place]["cell"], str(value))
            taken = str(form.get("apply", ""))
            if taken:
                suggestion = found.get(taken, {}).get("suggestion")
                if not suggestion:
                    raise HTTPException(422, "That suggestion is no longer in the report: reload the page.")
                edits[taken] = CellEdit(found[taken]["sheet"], found[taken]["cell"], suggestion)
        except EditProblem as problem:
            raise HTTPException(422, str(problem)) from None
        return _revised(who, upload_id, list(edits.values()))

    @app.post("/uploads/{upload_id}/bulk")
    def bulk_fix(request: Request, upload_id: str, csrf: str = Form(""), sheet: str = Form(""),
                 column: str = Form(""), value: str = Form(""), rule: str = Form(""), new: str = Form("")):
        """One value of one column replaced in every failing cell that holds it."""
        who = identity(request)
        check_csrf(request, csrf)
        report = _report(who, upload_id)
        group = next((b for b in report.bulk_fixes() if (b["sheet"], b["column"], b["value"], b["rule"])
                      == (sheet, column, value, rule)), None)
        if group is None:
            raise HTTPException(422, "Those cells are no longer in the report: reload the page.")
        if report.mapping:  # an export's cells stay as exported: its rules learn the replacement
            references = database_now()
            try:
                revised = store.remember(who.tenant_slug, upload_id, sheet, column, value, new, references)
            except UploadProblem as problem:
                raise HTTPException(422, str(problem)) from None
            return RedirectResponse(f"/uploads/{revised.upload_id}", status_code=303)
        try:
            edits = [CellEdit(sheet, cell, new) for cell in group["cells"]]
        except EditProblem as problem:
            raise HTTPException(422, str(problem)) from None
        return _revised(who, upload_id, edits)

    @app.get("/uploads/{upload_id}/file")
    def upload_file(request: Request, upload_id: str):
        """This version of the steward's file (after fixes in the page), to keep working on it."""
        who = identity(request)
        report = _report(who, upload_id)
        path = store.workbook_path(report)
        return FileResponse(path, filename=report.download_name(path.suffix.lstrip(".")),
                            media_type="application/octet-stream")

    @app.get("/uploads/{upload_id}/mapping.yaml")
    def mapping_file(request: Request, upload_id: str):
        who = identity(request)
        report = _report(who, upload_id)
        path = store.mapping_path(report)
        if path is None:
            raise HTTPException(404, "This upload has no mapping file.")
        return FileResponse(path, filename=path.name, media_type="application/yaml")

    @app.get("/uploads/{upload_id}/annotated.xlsx")
    def annotated(request: Request, upload_id: str):
        who = identity(request)
        report = _report(who, upload_id)
        try:
            path = store.annotated(who.tenant_slug, upload_id)
        except FileNotFoundError as missing:
            raise HTTPException(404, str(missing)) from None
        return FileResponse(path, filename=report.download_name("annotated.xlsx"),
                            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

    @app.get("/uploads/{upload_id}/report.csv")
    def report_csv(request: Request, upload_id: str):
        report = _report(identity(request), upload_id)
        return PlainTextResponse(report.as_csv(), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": _attachment(report.download_name("report.csv"))})

    @app.get("/uploads/{upload_id}/report.json")
    def report_json_download(request: Request, upload_id: str):
        report = _report(identity(request), upload_id)
        return Response(report.as_json(), media_type="application/json",
                        headers={"Content-Disposition": _attachment(report.download_name("report.json"))})

    @app.get("/api/uploads/{upload_id}")
    def report_json(request: Request, upload_id: str):
        report = _report(identity(request), upload_id)
        return Response(report.as_json(), media_type="application/json")

    @app.post("/api/uploads")
    async def api_upload(request: Request):
        who, form, file = await posted_file(request, "send the workbook as the multipart field `file`", csrf=False)
        report = await _receive(request, who, str(form.get("workbook", "")), file, form.get("mapping"))
        return Response(report.as_json(), media_type="application/json", status_code=201)

    @app.post("/mappings")
    async def map_upload(request: Request):
        """An export in another layout, kept as a draft while its columns are mapped in the page."""
        who, _form, file = await posted_file(request, "Choose an export to map.")
        data = await file.read(MAX_UPLOAD_BYTES + 1)
        try:
            draft_id = store.save_draft(who.tenant_slug, data, file.filename or "")
        except UploadProblem as problem:
            raise HTTPException(422, str(problem)) from None
        return RedirectResponse(f"/mappings/{draft_id}", status_code=303)

    def _draft(who: KeyIdentity, draft_id: str) -> tuple[Path, str]:
        try:
            return store.draft(who.tenant_slug, draft_id)
        except (FileNotFoundError, ValueError):
            raise HTTPException(404, "No such export for your tenant.") from None

    def _proposal(path: Path, name: str, entity: str) -> tuple[str | None, str | None, list[str]]:
        """(the suggested mapping's YAML, why none could be made, the export's headers)."""
        import shutil
        import tempfile

        try:
            headers = export_headers(path)
        except (UnsafeWorkbookError, MappingError, ValueError) as error:
            raise HTTPException(422, f"The export cannot be read: {error}") from None
        with tempfile.TemporaryDirectory() as scratch:
            # the file's own name is evidence of its entity (`notion_personas.csv`); a plain name keeps it
            named = Path(scratch) / (re.sub(r"[^A-Za-z0-9_.-]", "_", Path(name).stem)[:80] + path.suffix)
            shutil.copy(path, named)
            try:
                return suggest_mapping(named, entity=entity or None, raw_dir=settings.raw_dir), None, headers
            except NoEntityFits as refusal:
                return None, str(refusal).split(": ", 1)[-1], headers

    @app.get("/mappings/{draft_id}", response_class=HTMLResponse)
    def mapping_page(request: Request, draft_id: str, entity: str = ""):
        who = identity(request)
        path, name = _draft(who, draft_id)
        if entity and entity not in CONTRACTS:
            raise HTTPException(404, "No such registry entity.")
        suggested, refusal, headers = _proposal(path, name, entity)
        rows = []
        if suggested:
            proposal = yaml.safe_load(suggested)
            entity = proposal["entity"]
            chosen = {column: (value["from"] if isinstance(value, dict) else value)
                      for column, value in (proposal.get("columns") or {}).items()}
            for column_name, column in CONTRACTS[entity].schema.columns.items():
                if column_name == "metadata":
                    continue
                meta = column.metadata or {}
                allowed = next((c.statistics["allowed_values"] for c in column.checks if c.name == "isin"), None)
                what = (f"one of {', '.join(map(str, allowed))}" if allowed else
                        f"names a row of {meta['references'].split('.')[0]}" if meta.get("references") else
                        f"e.g. {meta['example']}" if meta.get("example") else "")
                rows.append({"name": column_name, "chosen": chosen.get(column_name),
                             "required": not column.nullable and meta.get("default") is None, "what": what})
        return page(request, "mapping.html", who=who, draft_id=draft_id, name=name, entity=entity, rows=rows,
                    headers=headers, refusal=refusal, entities=sorted(CONTRACTS))

    @app.post("/mappings/{draft_id}")
    async def mapping_save(request: Request, draft_id: str):
        """The mapping the steward confirmed: saved with the export as an upload, which is checked at once."""
        who = identity(request)
        form = await request.form(max_files=0, max_fields=200)
        check_csrf(request, str(form.get("csrf", "")))
        path, name = _draft(who, draft_id)
        entity = str(form.get("entity", ""))
        if entity not in CONTRACTS:
            raise HTTPException(422, "Choose which registry the export holds.")
        suggested, _refusal, headers = _proposal(path, name, entity)
        choices = {key.removeprefix("column:"): (str(value) or None) for key, value in form.multi_items()
                   if key.startswith("column:")}
        export_name = f"{entity}_export{path.suffix}"
        rules = mapping_from_choices(suggested, choices, headers, export_name)
        references = database_now()
        try:
            report = store.save(who.tenant_slug, "", path.read_bytes(), name, mapping=rules.encode("utf-8"),
                                references=references)
        except UploadProblem as problem:
            raise HTTPException(422, str(problem)) from None
        return RedirectResponse(f"/uploads/{report.upload_id}", status_code=303)

    @app.get("/uploads/{upload_id}/preview", response_class=HTMLResponse)
    def preview_page(request: Request, upload_id: str):
        who = identity(request)
        report = _report(who, upload_id)
        if report.refused:
            raise HTTPException(409, "A refused file has no preview: fix the problems in the report and upload it again.")
        with connect(settings.database_url) as conn:
            preview = preview_upload(conn, store.workbook_path(report), report.workbook,
                                     who.tenant_slug, settings.raw_dir,
                                     mapping_file=store.mapping_path(report))
        return page(request, "preview.html", who=who, report=report, preview=preview)

    @app.post("/uploads/{upload_id}/approve")
    def approve(request: Request, upload_id: str, csrf: str = Form(""), deletions: str = Form("")):
        who = identity(request)
        check_csrf(request, csrf)
        report = _report(who, upload_id)
        if not store.claim_approval(who.tenant_slug, upload_id):
            # approved already (a second click, another tab): one approval, one run; show it
            return RedirectResponse(f"/uploads/{upload_id}/run", status_code=303)
        typed = int(deletions) if deletions.strip().isdigit() else None
        try:
            with connect(settings.database_url) as conn:
                approval = approve_upload(conn, store, who, upload_id, typed_deletions=typed)
        except ApprovalProblem as problem:
            store.release_approval(who.tenant_slug, upload_id)
            raise HTTPException(409, str(problem)) from None
        except BaseException:
            store.release_approval(who.tenant_slug, upload_id)
            raise
        state = {"source": approval.source, "sha256": approval.sha256, "run_id": None, "problem": None}
        if settings.dagster_url:
            try:
                state["run_id"] = launch_workbook_run(settings.dagster_url, report.workbook, tags={
                    content_tag(report.workbook): registry_content_sha(settings.raw_dir, report.workbook) or "",
                    "vital/trigger": f"portal approval of upload {upload_id} by {who.name} ({who.tenant_slug})"})
            except RunProblem as problem:
                state["problem"] = str(problem)
        store.write_state(who.tenant_slug, upload_id, state)
        return RedirectResponse(f"/uploads/{upload_id}/run", status_code=303)

    def approval_status(upload_id: str, state: dict, tenant: str, conn, with_rows: bool = False,
                        follow: bool = True) -> dict:
        """What became of an approved upload, in the words the run page and the uploads list both show: green only
        when the run succeeded and none of the file's rows wait in quarantine. A run that finished is asked about
        once (its status is kept with the approval); what waits is read from the database every time. `follow`:
        whether Dagster may be asked now (a list stops asking once Dagster did not answer)."""
        status = {"kind": "running", "text": "The raw sensor loads the file within seconds.", "link": None}
        run, problem = None, state.get("problem")
        if state.get("run_id") and settings.dagster_url:
            status["link"] = f"{settings.dagster_url.rstrip('/')}/runs/{state['run_id']}"
            if not state.get("run_status") and not follow:
                status.update(kind="unknown", unreachable=True,
                              text="Dagster did not answer just now; the run is followed again on the next look.")
                return status
            try:
                run = RunState(state["run_id"], state["run_status"]) if state.get("run_status") else \
                    run_state(settings.dagster_url, state["run_id"])
            except RunProblem as trouble:
                problem, status["unreachable"] = str(trouble), True
            if run is not None and run.verdict is not None and not state.get("run_status"):
                store.write_state(tenant, upload_id, {**state, "run_status": run.status})
        if run is None:
            if status.get("unreachable"):  # launched, but Dagster does not answer now: look again, say so
                status.update(kind="unknown", text=f"Dagster did not answer just now ({problem}); the page looks "
                                                   "again.")
            elif problem:
                status.update(kind="red", text=f"The run could not be launched: {problem}. The raw sensor loads the "
                                               "file at its next look.")
            return status
        if run.verdict is None:
            if run.status in ("QUEUED", "NOT_STARTED") and _no_daemon():
                status.update(kind="stuck", text="Queued, but no Dagster daemon is running to start it: ask your "
                                                 "operator to start one (`dagster-daemon run`, or `dg dev`, which "
                                                 "runs the webserver and the daemon together). The run starts as "
                                                 "soon as the daemon does.")
            else:
                status.update(text=f"Running ({run.status.lower().replace('_', ' ')})…")
            return status
        if run.verdict == "red":
            status.update(kind="red", text="red: the run failed; its page in the Dagster UI says why.")
            return status
        outcome = load_outcome(conn, target=ledger_target(state["source"]), sha256=state["sha256"])
        loaded = (outcome["loaded"] + outcome["warned"]) if outcome else None
        warned = f", {outcome['warned']} with warnings" if outcome and outcome["warned"] else ""
        if outcome and outcome["waiting"]:
            status.update(kind="waiting", waiting=outcome["waiting"],
                          text=f"Loaded {loaded}, {outcome['waiting']} waiting in quarantine{warned}.")
            if with_rows:
                status["rows"] = quarantined(conn, tenant, 1, target=ledger_target(state["source"]), limit=10)[1]
        else:
            status.update(kind="green", text=f"green: loaded {loaded if loaded is not None else 'every row'}"
                                             f"{warned}.")
        return status

    def _no_daemon() -> bool:
        try:
            return queue_has_no_daemon(settings.dagster_url)
        except RunProblem:
            return False

    @app.get("/uploads/{upload_id}/run", response_class=HTMLResponse)
    def run_page(request: Request, upload_id: str):
        who = identity(request)
        report = _report(who, upload_id)
        state = store.read_state(who.tenant_slug, upload_id)
        if state is None:
            raise HTTPException(404, "This upload has not been approved.")
        with connect(settings.database_url) as conn:
            status = approval_status(upload_id, state, who.tenant_slug, conn, with_rows=True)
            conn.rollback()
        return page(request, "run.html", who=who, report=report, state=state, status=status)

    @app.get("/reports/{name}")
    def pipeline_report(request: Request, name: str):
        """The annotated copy and the full report a pipeline run wrote for one of the platform's own workbooks
        (linked from the Dagster check); they hold every tenant's rows of that file, so only the platform's keys."""
        who = identity(request)
        if who.tenant_slug != PLATFORM_TENANT_SLUG or settings.reports_dir is None:
            raise HTTPException(404, "No such report for your tenant.")
        match = re.fullmatch(r"([a-z_]+)\.(annotated\.xlsx|failures\.csv)", name)
        path = settings.reports_dir / name
        if match is None or not path.is_file():
            raise HTTPException(404, "No such report: the run that wrote it found nothing to report, or it was moved.")
        media = "text/csv" if name.endswith(".csv") else \
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return FileResponse(path, filename=name, media_type=media)

    @app.get("/loads", response_class=HTMLResponse)
    def loads_page(request: Request):
        who = identity(request)
        with connect(settings.database_url) as conn:
            entries = history.tenant_loads(conn, who.tenant_slug, PLATFORM_TENANT_SLUG)
            conn.rollback()
        return page(request, "loads.html", who=who, loads=entries)

    @app.get("/loads/{load_id}", response_class=HTMLResponse)
    def load_page(request: Request, load_id: str):
        """What one load changed, row by row, and the preview of taking it back (nothing written)."""
        who = identity(request)
        with connect(settings.database_url) as conn:
            try:
                entry = history.tenant_load(conn, load_id, who.tenant_slug, PLATFORM_TENANT_SLUG)
            except history.UndoRefused as refusal:
                raise HTTPException(404, str(refusal)) from None
            changes = history.load_changes(conn, load_id)
            shown = changes[:PAGE_SIZE * 4]
            names = natural_keys(conn, [(table, key.get("id")) for _, table, key, *_rest in shown])
            conn.rollback()
            try:
                preview, refusal = history.undo_load(conn, load_id, dry_run=True), None
            except history.UndoRefused as problem:
                preview, refusal = None, str(problem)
        rows = [{"table": table, "key": names.get((table, key.get("id"))) or history.key_text(key),
                 "id": key.get("id"), "operation": operation,
                 "change": history.describe_change(operation, before, after)} for _, table, key, operation, before, after
                in shown]
        lines = [f"{table}: {action} × {count}" for (table, action), count in sorted(preview.changes.items())] \
            if preview else []
        return page(request, "load.html", who=who, load=entry, rows=rows, total=len(changes), preview=preview,
                    preview_lines=lines, refusal=refusal, linkable=HISTORY_PAGES)

    @app.post("/loads/{load_id}/undo")
    def undo(request: Request, load_id: str, csrf: str = Form("")):
        who = identity(request)
        check_csrf(request, csrf)
        with connect(settings.database_url) as conn:
            try:
                history.tenant_load(conn, load_id, who.tenant_slug, PLATFORM_TENANT_SLUG)
                result = history.undo_load(conn, load_id, run_id=f"portal:{who.name}")
            except history.UndoRefused as refusal:
                raise HTTPException(409, str(refusal)) from None
        return RedirectResponse(f"/loads/{result.undo_load_id}", status_code=303)

    @app.get("/history/{table}/{row_id}", response_class=HTMLResponse)
    def history_page(request: Request, table: str, row_id: str):
        """One row's history, for a row of the tenant's own."""
        who = identity(request)
        if table not in HISTORY_PAGES or not re.fullmatch(r"[0-9a-f-]{36}", row_id):
            raise HTTPException(404, "No such row for your tenant.")
        with connect(settings.database_url) as conn:
            owner = conn.execute(psycopg_sql.SQL("select t.slug from {} r join tenants t on t.id = r.tenant_id "
                                                 "where r.id = %s").format(psycopg_sql.Identifier(table)),
                                 (row_id,)).fetchone()
            if owner is None or owner[0] != who.tenant_slug:
                raise HTTPException(404, "No such row for your tenant.")
            entries = history.row_history(conn, table, {"id": row_id})
            conn.rollback()
        return page(request, "history.html", who=who, table=table, row_id=row_id,
                    entries=[{"load": load, "operation": operation, "change": history.describe_change(operation, before, after),
                              "at": at} for load, operation, before, after, at in entries])

    @app.get("/quarantine", response_class=HTMLResponse)
    def quarantine(request: Request, page_number: int = Query(1, alias="page")):
        who = identity(request)
        with connect(settings.database_url) as conn:
            total, rows = quarantined(conn, who.tenant_slug, page_number)
        pages = max(1, math.ceil(total / PAGE_SIZE))
        return page(request, "quarantine.html", who=who, rows=rows, total=total, page_number=page_number, pages=pages)

    return app


def _way_back(path: str) -> list[tuple[str, str]]:
    """Where a steward goes from an error on `path`: the upload's preview or report it came from."""
    found = re.match(r"^/uploads/([A-Za-z0-9_-]{16,40})(/[a-z_.]+)?", path)
    if not found:
        return []
    upload = f"/uploads/{found.group(1)}"
    back = [(f"{upload}/preview", "Back to the preview")] if found.group(2) in ("/approve", "/run") else []
    return back + [(upload, "Back to the report")]


def _attachment(name: str) -> str:
    """A Content-Disposition that saves the file under `name` (RFC 6266: an ASCII fallback and the UTF-8 name)."""
    from urllib.parse import quote

    fallback = name.encode("ascii", "replace").decode().replace("?", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"
