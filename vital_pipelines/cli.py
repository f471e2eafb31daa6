"""`vital-pipelines`: the library's operations without Dagster, for people at a terminal."""

from __future__ import annotations

import argparse
import os
import sys

from vital_pipelines import config
from vital_pipelines.db import ChangedMigrationError, DatabaseUnavailable, apply_schema, connect
from vital_pipelines.db.connection import require_extensions
from vital_pipelines.knowledge.embedding import DEFAULT_MODEL, ModelUnavailable


def _schema(args: argparse.Namespace) -> int:
    with connect(config.owner_database_url()) as conn:
        require_extensions(conn)
        result = apply_schema(conn, config.SCHEMA_DIR, rebuild=args.rebuild)
    prefix = "wiped, then " if result.wiped else ""
    print(f"{prefix}applied {len(result.applied)} file(s), {len(result.unchanged)} unchanged")
    for name in result.applied:
        print(f"  applied {name}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.knowledge:
        from vital_pipelines.knowledge.rendering import render_corpus

        written = render_corpus(config.ASSETS_DIR / "authoring", config.KNOWLEDGE_DIR)
    elif args.templates:
        from vital_pipelines.spreadsheets.templates import write_templates

        written = write_templates(Path(args.out))
    elif args.docs:
        from vital_pipelines.spreadsheets.templates import format_markdown

        target = config.PROJECT_ROOT / "docs" / "workbook-formats.md"
        target.write_text(format_markdown(), encoding="utf-8")
        written = [target]
    else:
        # The sample generator is the repository's (samples/), not the installed package's.
        sys.path.insert(0, str(config.PROJECT_ROOT))
        try:
            from samples.generate import generate
        except ImportError:
            print("vital-pipelines: the sample generator lives in the repository's samples/ folder; run this from "
                  "a checkout", file=sys.stderr)
            return 2
        written = generate(Path(args.out), scale=args.scale)
    for path in written:
        print(path)
    return 0


def _validate(args: argparse.Namespace) -> int:
    """Exit 0 when every row would load (warnings allowed), 1 when a row would be rejected, 2 when the file, a
    sheet or the mapping is refused as a whole."""
    from pathlib import Path

    from vital_pipelines.loading.sources import Source, validate_source
    from vital_pipelines.spreadsheets import report
    from vital_pipelines.spreadsheets.mapping import MappingError, mapping_path_for
    from vital_pipelines.spreadsheets.matrix import WORKBOOK as MATRIX_WORKBOOK
    from vital_pipelines.spreadsheets.safety import UnsafeWorkbookError
    from vital_pipelines.spreadsheets.validation import SheetRefused
    from vital_pipelines.spreadsheets.workbooks import MappedSource, mapped_source, workbook_kind

    path = Path(args.workbook)
    raw_dir = Path(args.raw_dir) if args.raw_dir else path.parent
    mapping_file = Path(args.mapping) if args.mapping else mapping_path_for(path)
    export: MappedSource | None = None
    try:
        if args.mapping or mapping_file.exists():
            export = mapped_source(mapping_file)
            if export.path.resolve() != path.resolve():
                export = MappedSource(export.mapping_file, export.mapping, path)
            source = Source(path, export.workbook, export)
        else:
            source = Source(path, MATRIX_WORKBOOK if path.name == MATRIX_WORKBOOK else workbook_kind(path))
        if args.database:
            return _dry_run(source, raw_dir)
        print(f"references checked against {raw_dir} (its workbooks and mapped exports) only (pass --database to "
              "check them against what the database holds and see what a load would do)", file=sys.stderr)
        results = validate_source(source, raw_dir=raw_dir)
    except SheetRefused as refused:
        for failure in refused.failures:
            print(f"{failure.location}: {failure.message}")
        print(f"\n{report.summary(refused.failures)}", file=sys.stderr)
        return 2
    except (UnsafeWorkbookError, MappingError) as error:
        print(f"vital-pipelines: {error}", file=sys.stderr)
        return 2
    failures = [f for result in results.values() for f in result.failures]
    warnings = [w for result in results.values() for w in result.warnings]
    rows = sum(result.total_rows for result in results.values())
    for warning in warnings:
        print(f"warning: {warning.location}: {warning.message}")
    if not failures:
        print(f"{path.name}: {rows} row(s), every row loads"
              f"{f' ({len(warnings)} with warnings)' if warnings else ''}.")
        return 0
    for failure in failures:
        print(f"{failure.location}: {failure.message}")
    rejected = sum(result.rejected.height for result in results.values())
    print(f"\n{path.name}: {rows} row(s): {rows - rejected} load, {rejected} would be rejected.")
    if export is not None or path.suffix.lower() != ".xlsx":
        print(report.summary(failures))
        return 1
    out = Path(args.annotated) if args.annotated else path.with_name(path.stem + ".annotated.xlsx")
    try:
        report.annotate_workbook(path, failures, out, warnings)
        print(f"{report.summary(failures)}\nAnnotated copy: {out}")
    except report.AnnotationError as error:
        print(f"{report.summary(failures)}\nNo annotated copy: {error}")
    return 1


def _dry_run(source, raw_dir) -> int:
    """What a load of `source` would do, loaded in a transaction that is rolled back (as the loader role, against
    DATABASE_URL or the local database): the load's own findings and accounts, nothing written."""
    from psycopg import conninfo

    from vital_pipelines.db import connect
    from vital_pipelines.loading.registry import AccountingError, ContractViolation, IntegrityProblem
    from vital_pipelines.loading.sources import load_source
    from vital_pipelines.loading.upsert import DeletionGuardError
    from vital_pipelines.spreadsheets import report

    url = config.database_url()
    params = conninfo.conninfo_to_dict(url)
    print(f"references checked against {raw_dir} (its workbooks and mapped exports) and the database "
          f"{params.get('dbname', '?')} on {params.get('host', 'localhost')}; loaded and rolled back", file=sys.stderr)
    try:
        with connect(url) as conn:
            result = load_source(conn, source, raw_dir=raw_dir, dry_run=True)
    except (DeletionGuardError, AccountingError, IntegrityProblem, ContractViolation) as error:
        print(f"vital-pipelines: the load would be refused: {error}", file=sys.stderr)
        return 2
    for warning in result.warnings:
        print(f"warning: {warning.location}: {warning.message}")
    for failure in result.failures:
        print(f"{failure.location}: {failure.message}")
    quarantined = 0
    for sheet, account in result.accounts.items():
        quarantined += account["quarantined"]
        print(f"{source.origin} › {sheet}: {account['rows_in']} row(s) in: {account['loaded']} load, "
              f"{account['loaded_with_warnings']} with warnings, {account['quarantined']} quarantined.")
    if result.failures:
        print(report.summary(result.failures))
    return 1 if quarantined else 0


def _crosswalk(args: argparse.Namespace) -> int:
    """Write NAME.crosswalk.yaml: every distinct value of a reference column that names nothing, with its count and
    its closest candidates, the code left for the steward to fill in."""
    from pathlib import Path

    from vital_pipelines.spreadsheets.crosswalk import crosswalk_path_for, suggest_crosswalk
    from vital_pipelines.spreadsheets.mapping import MappingError, mapping_path_for
    from vital_pipelines.spreadsheets.safety import UnsafeWorkbookError
    from vital_pipelines.spreadsheets.validation import SheetRefused
    from vital_pipelines.spreadsheets.workbooks import MappedSource, mapped_source, reference_keys

    export_path = Path(args.suggest)
    mapping_file = mapping_path_for(export_path)
    if not mapping_file.exists():
        print(f"vital-pipelines: a crosswalk belongs to a mapped export, and {mapping_file.name} is not beside "
              f"{export_path.name}; write one first (vital-pipelines map --suggest {export_path})", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else crosswalk_path_for(mapping_file)
    if out.exists() and not args.force:
        print(f"vital-pipelines: {out} exists; pass --force to replace it, or --out another file", file=sys.stderr)
        return 2
    raw_dir = Path(args.raw_dir) if args.raw_dir else export_path.parent
    try:
        export = mapped_source(mapping_file)
        export = MappedSource(export.mapping_file, export.mapping, export_path)
        database = None
        if args.database:
            from vital_pipelines.db import connect
            from vital_pipelines.loading.registry import database_references

            with connect(config.database_url()) as conn:
                database = database_references(conn)
        from vital_pipelines.spreadsheets.workbooks import validate_mapped_source

        results = validate_mapped_source(export, raw_dir=raw_dir, references=database)
        index = reference_keys(raw_dir, export.workbook, base=database)
    except SheetRefused as refused:
        print(f"vital-pipelines: {export_path.name} was refused: {refused.failures[0].message}", file=sys.stderr)
        return 2
    except (UnsafeWorkbookError, MappingError) as error:
        print(f"vital-pipelines: {error}", file=sys.stderr)
        return 2
    findings = [f for result in results.values() for f in (*result.failures, *result.warnings)]
    out.write_text(suggest_crosswalk(findings, index, export.contract, export_path.name), encoding="utf-8")
    print(f"wrote {out}: write the code each value means, then load again")
    return 0


def _map(args: argparse.Namespace) -> int:
    from pathlib import Path

    from vital_pipelines.spreadsheets.mapping import MappingError, mapping_path_for
    from vital_pipelines.spreadsheets.safety import UnsafeWorkbookError
    from vital_pipelines.spreadsheets.suggest import NoEntityFits, suggest_mapping

    source = Path(args.suggest)
    out = Path(args.out) if args.out else mapping_path_for(source)
    if out.exists() and not args.force:
        print(f"vital-pipelines: {out} exists; pass --force to replace it, or --out another file", file=sys.stderr)
        return 2
    try:
        text = suggest_mapping(source, entity=args.entity, raw_dir=Path(args.raw_dir) if args.raw_dir else None)
    except (UnsafeWorkbookError, MappingError, NoEntityFits) as error:
        print(f"vital-pipelines: {error}", file=sys.stderr)
        return 2
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}: check every line marked `guess`, then run `vital-pipelines validate {source}`")
    return 0


def _search_filters(args: argparse.Namespace):
    from vital_pipelines.knowledge.search import SearchFilters

    visibility = tuple(args.visibility or ())
    if not args.as_user and not args.tenant and not visibility:
        # Without a user or a tenant, an operator's search covers what every signed-in user may read.
        visibility = ("public",)
    return SearchFilters(tenant=args.tenant, visibility=visibility, domain=args.domain, solution=args.solution,
                         source_type=args.source_type)


def _question_vector(model: str, question: str):
    """The question's vector: by the numpy encoder where the model's folder allows (no torch to import: the command
    answers in well under a second), else by the model itself."""
    from pathlib import Path

    from vital_pipelines.knowledge.embedding import Embedder, resolve_model_path
    from vital_pipelines.knowledge.query_encoder import QueryEncoder
    from vital_pipelines.knowledge.search import embed_query

    folder = Path(str(resolve_model_path(model)))
    if folder.is_dir() and QueryEncoder.fits(folder):
        return QueryEncoder(folder).encode([" ".join(question.split())])[0]
    return embed_query(Embedder(model), question)


def _search(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from vital_pipelines.knowledge.search import acting_as, search_agents, search_chunks

    filters = _search_filters(args)
    vector, model_name = None, args.model
    if args.mode != "text":
        vector = _question_vector(args.model, args.query)
    url = config.search_database_url() if args.as_user else config.database_url()
    try:
        with connect(url) as conn:
            with acting_as(conn, args.as_user) if args.as_user else nullcontext(conn):
                chunks = search_chunks(conn, args.query, vector, model_name, limit=args.limit, filters=filters,
                                       mode=args.mode, distinct_documents=args.distinct)
                agents = search_agents(conn, vector, model_name, limit=args.agents) if vector is not None else []
                visible = chunks or conn.execute("select exists (select 1 from knowledge_chunks)").fetchone()[0]
    except ValueError as error:
        print(f"vital-pipelines: {error}", file=sys.stderr)
        return 2
    if not chunks and not agents:
        if not visible and args.as_user:
            print(f"No document is visible to you (user {args.as_user}): row-level security hides every chunk from "
                  f"this user. Ask a tenant admin for membership of the tenant that owns the documents.")
        elif not visible:
            print("Nothing is embedded yet: run scripts/run (or materialise knowledge_chunks) first.")
        else:
            print("Nothing found: no visible chunk matches this question and these filters.")
        return 1
    print(f"Knowledge ({len(chunks)} best chunks):")
    for rank, hit in enumerate(chunks, 1):
        where = " › ".join(hit.heading_path[1:] if hit.heading_path[:1] == (hit.title,) else hit.heading_path)
        excerpt = " ".join(hit.content.split())
        print(f"\n{rank}. {hit.title}{f' › {where}' if where else ''}  [{hit.document}, similarity {hit.similarity:.3f}]")
        print(f"   {excerpt[:400]}{'…' if len(excerpt) > 400 else ''}")
    if vector is None:
        return 0  # agents are matched by their profile's vector, which text mode does not compute
    print(f"\nAgents ({len(agents)} best matches):")
    for rank, agent in enumerate(agents, 1):
        print(f"{rank}. {agent.name} ({agent.slug}, similarity {agent.similarity:.3f}){f' — {agent.tagline}' if agent.tagline else ''}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from contextlib import nullcontext
    from pathlib import Path

    from vital_pipelines.knowledge.embedding import Embedder
    from vital_pipelines.knowledge.evaluation import evaluate, load_questions
    from vital_pipelines.knowledge.search import acting_as

    embedder = Embedder(args.model)
    questions = load_questions(Path(args.questions))
    url = config.search_database_url() if args.as_user else config.database_url()
    with connect(url) as conn, (acting_as(conn, args.as_user) if args.as_user else nullcontext(conn)):
        result = evaluate(conn, embedder, questions, filters=_search_filters(args), mode=args.mode)
    print(f"{'questions':<14}{'n':>4}{'doc@1':>8}{'doc@5':>8}{'pass@1':>8}{'pass@5':>8}{'MRR':>8}")
    for name, scores in [("all", result.overall), *result.by_kind.items()]:
        print(f"{name:<14}{scores.questions:>4}{scores.document_at_1:>8.3f}{scores.document_at_5:>8.3f}"
              f"{scores.passage_at_1:>8.3f}{scores.passage_at_5:>8.3f}{scores.passage_mrr:>8.3f}")
    for question, expected, got in result.misses:
        print(f"  answer passage not in the top 5: {question!r} ({expected}); top 5 from {', '.join(got)}")
    return 0 if result.overall.passage_at_5 >= args.min_recall else 1


def _add_search_scope(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as-user", metavar="UUID", help="search as this user: row-level security decides what is "
                                                          "visible (connects with SEARCH_DATABASE_URL)")
    parser.add_argument("--tenant", metavar="SLUG", help="only documents owned by this tenant")
    parser.add_argument("--visibility", action="append", choices=["private", "tenant", "subtenant", "organization",
                                                                  "public"],
                        help="only documents of this visibility (repeatable); without --as-user or --tenant: public")
    parser.add_argument("--domain", help="only documents of this domain")
    parser.add_argument("--solution", metavar="CODE", help="only documents of this solution")
    parser.add_argument("--source-type", choices=["markdown", "text", "pdf", "docx"], help="only this kind of file")
    parser.add_argument("--mode", choices=["hybrid", "vector", "text"], default="hybrid",
                        help="hybrid (default): vector and full-text rankings fused")


def _loads(args: argparse.Namespace) -> int:
    from vital_pipelines.loading import history

    try:
        with connect(config.database_url()) as conn:
            if args.action == "list":
                entries = history.list_loads(conn, target=args.target, limit=args.limit)
                conn.rollback()
                if not entries:
                    print("No load in the ledger" + (f" for {args.target}." if args.target else "."))
                    return 0
                print(f"{'load':<38}{'target':<28}{'finished (UTC)':<21}{'ins':>6}{'upd':>6}{'del':>6}{'rej':>6}  note")
                for e in entries:
                    note = (f"undo of {e.undo_of}" if e.undo_of else "") + (f"undone by {e.undone_by}" if e.undone_by else "")
                    print(f"{e.load_id:<38}{e.target[:27]:<28}{e.finished_at:%Y-%m-%d %H:%M:%S}  {e.inserted:>6}"
                          f"{e.updated:>6}{e.deleted:>6}{e.rejected:>6}  {note}")
                return 0
            if args.action == "show":
                entry = history.find_load(conn, args.load)
                changes = history.load_changes(conn, args.load)
                conn.rollback()
                print(f"load {entry.load_id}: {entry.target} from {entry.source_file}, {entry.status} at "
                      f"{entry.finished_at:%Y-%m-%d %H:%M:%S} UTC (run {entry.run_id or '-'})")
                print(f"  {entry.inserted} inserted, {entry.updated} updated, {entry.unchanged} unchanged, "
                      f"{entry.deleted} deleted, {entry.rejected} rejected; {len(changes)} row changes recorded")
                for _, table, key, operation, before, after in changes[:args.limit]:
                    print(f"  {operation:<7}{table} {history.key_text(key)}: "
                          f"{history.describe_change(operation, before, after)}")
                if len(changes) > args.limit:
                    print(f"  … and {len(changes) - args.limit} more (--limit)")
                return 0
            load = args.load or history.latest_load(conn, args.latest).load_id
            result = history.undo_load(conn, load, dry_run=args.dry_run)
    except history.UndoRefused as refusal:
        print(f"vital-pipelines: {refusal}", file=sys.stderr)
        return 1
    verb = "would" if result.dry_run else "did"
    print(f"undo of load {result.load_id}: {verb} change {result.total} rows")
    for (table, action), count in sorted(result.changes.items()):
        print(f"  {table}: {action} × {count}")
    if not result.dry_run:
        print(f"recorded as load {result.undo_load_id} (undo it to bring the changes back). The source file is "
              f"unchanged: fix or remove it, or the next run loads it again.")
    return 0


def _keys(args: argparse.Namespace) -> int:
    from vital_pipelines.portal.keys import KeyProblem, create_key, list_keys, revoke_key

    with connect(config.owner_database_url()) as conn:
        if args.action == "create":
            try:
                key, listing = create_key(conn, args.tenant, args.name)
            except KeyProblem as problem:
                print(f"vital-pipelines: {problem}", file=sys.stderr)
                return 2
            print(f"Created key {listing.name!r} for {listing.tenant_slug}. It is shown this once; store it now:")
            print(key)
            return 0
        if args.action == "revoke":
            if not revoke_key(conn, args.tenant, args.name):
                print(f"vital-pipelines: {args.tenant} has no live key named {args.name!r}", file=sys.stderr)
                return 1
            print(f"Revoked key {args.name!r} of {args.tenant}; its sessions end at their next request.")
            return 0
        for key in list_keys(conn, args.tenant):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "live"
            used = f"last used {key.last_used_at:%Y-%m-%d}" if key.last_used_at else "never used"
            print(f"{key.tenant_slug:<24} {key.name:<30} {key.prefix}…  created {key.created_at:%Y-%m-%d}  {used}  {state}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from vital_pipelines.portal.app import create_app

    print(f"Steward portal on http://{args.host}:{args.port}/ (sign in with a key from `vital-pipelines keys create`)")
    print(_runs_readiness(os.environ.get("DAGSTER_WEBSERVER_URL")))
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")
    return 0


def _runs_readiness(dagster_url: str | None) -> str:
    """What becomes of an approval with this operator's set-up, said once at start (the run page says it again)."""
    from vital_pipelines.portal.runs import RunProblem, queue_has_no_daemon

    if not dagster_url:
        return ("Approved files are loaded by the raw sensor of a running Dagster (`dg dev`); set "
                "DAGSTER_WEBSERVER_URL to launch and follow each approval's run from the portal.")
    try:
        stuck = queue_has_no_daemon(dagster_url)
    except RunProblem as problem:
        return f"Dagster at {dagster_url} does not answer yet ({problem}); approvals will say so until it does."
    if stuck:
        return (f"Dagster at {dagster_url} queues runs but no daemon runs the queue: start `dagster-daemon run -w "
                f"workspace.yaml` (or use `dg dev`), or approved runs wait.")
    return f"Approved runs are launched through Dagster at {dagster_url}."


def _worker(args: argparse.Namespace) -> int:
    from vital_pipelines.defs.common.distributed import run_worker

    run_worker(args.name, args.concurrency, args.loglevel)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vital-pipelines", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    schema = commands.add_parser("schema", help="apply the SQL phase files in schema/ as the schema's owner (DATABASE_OWNER_URL)")
    schema.add_argument("--rebuild", action="store_true",
                        help="run 00_WIPE_DATABASE.sql first (drops all pipeline data), then every file")
    schema.set_defaults(handler=_schema)
    validate = commands.add_parser("validate", help="check a registry workbook or export against its contract")
    validate.add_argument("workbook", help="path of the workbook, e.g. raw/personas.xlsx")
    validate.add_argument("--raw-dir", help="folder of the workbooks it references (default: the workbook's folder)")
    validate.add_argument("--database", action="store_true",
                          help="also check references against what the database holds (DATABASE_URL, else the "
                               "local one), as a load does")
    validate.add_argument("--annotated", help="where to write the annotated copy (default: beside the workbook)")
    validate.add_argument("--mapping", help="the export's mapping file (default: SOURCE's name with .mapping.yaml, "
                                            "when it exists)")
    validate.set_defaults(handler=_validate)
    mapping = commands.add_parser("map", help="write a first mapping file for a real export, every guess marked")
    mapping.add_argument("--suggest", required=True, metavar="EXPORT", help="the export (CSV, JSON or workbook)")
    mapping.add_argument("--entity", help="the entity it feeds (default: the best match of its header)")
    mapping.add_argument("--raw-dir", help="folder of the registry workbooks whose codes and names references "
                                           "are compared with (default: raw/)")
    mapping.add_argument("--out", help="where to write it (default: beside the export, NAME.mapping.yaml)")
    mapping.add_argument("--force", action="store_true", help="replace an existing mapping file")
    mapping.set_defaults(handler=_map)
    crosswalk = commands.add_parser("crosswalk", help="write a first crosswalk (value as found → code) for a mapped "
                                                      "export's references that name nothing")
    crosswalk.add_argument("--suggest", required=True, metavar="EXPORT", help="the export, beside its mapping file")
    crosswalk.add_argument("--raw-dir", help="folder of the registry sources its references name (default: the "
                                             "export's folder)")
    crosswalk.add_argument("--database", action="store_true",
                           help="also take the codes and names the database holds (DATABASE_URL, else the local one)")
    crosswalk.add_argument("--out", help="where to write it (default: beside the mapping, NAME.crosswalk.yaml)")
    crosswalk.add_argument("--force", action="store_true", help="replace an existing crosswalk file")
    crosswalk.set_defaults(handler=_crosswalk)
    generate = commands.add_parser("generate", help="write the sample registry workbooks")
    generate.add_argument("--out", default=str(config.RAW_DIR), help="output folder (default raw/)")
    generate.add_argument("--scale", type=int, default=1, help="multiply personas, agents and JTBDs (×10, ×100)")
    generate.add_argument("--templates", action="store_true", help="write blank template workbooks instead")
    generate.add_argument("--docs", action="store_true",
                          help="write docs/workbook-formats.md (the sheet formats, from the entity catalog) instead")
    generate.add_argument("--knowledge", action="store_true",
                          help="render assets/authoring/*.pdf.md and *.docx.md into assets/knowledge/ instead")
    generate.set_defaults(handler=_generate)
    search = commands.add_parser("search", help="the knowledge chunks and agents closest to a question")
    search.add_argument("query", help='e.g. "how do I prepare a pre-submission meeting with FDA?"')
    search.add_argument("--limit", type=int, default=5, help="chunks to show (default 5)")
    search.add_argument("--agents", type=int, default=3, help="agents to show (default 3)")
    search.add_argument("--model", default=DEFAULT_MODEL, help="the embedding model the corpus was embedded with")
    search.add_argument("--distinct", action="store_true", help="one chunk per document")
    _add_search_scope(search)
    search.set_defaults(handler=_search)
    evaluate = commands.add_parser("evaluate", help="document and passage recall@1/@5 and MRR of the knowledge search "
                                                           "on a labelled set, by question kind")
    evaluate.add_argument("--questions", default=str(config.ASSETS_DIR / "evaluation" / "knowledge_questions.yaml"))
    evaluate.add_argument("--model", default=DEFAULT_MODEL)
    evaluate.add_argument("--min-recall", type=float, default=0.9,
                          help="exit 1 when the answer passage's recall@5 is below this")
    _add_search_scope(evaluate)
    evaluate.set_defaults(handler=_evaluate)
    loads = commands.add_parser("loads", help="the ledger of loads, what one load changed, and taking a load back")
    loads_actions = loads.add_subparsers(dest="action", required=True)
    loads_list = loads_actions.add_parser("list", help="the latest loads, newest first")
    loads_list.add_argument("--target", help="one source's loads, e.g. personas")
    loads_list.add_argument("--limit", type=int, default=20)
    loads_show = loads_actions.add_parser("show", help="what one load changed, row by row")
    loads_show.add_argument("load", metavar="LOAD", help="the load's id (from `loads list`)")
    loads_show.add_argument("--limit", type=int, default=50, help="row changes to print (default 50)")
    loads_undo = loads_actions.add_parser("undo", help="take back exactly what one load changed, as a new load")
    which = loads_undo.add_mutually_exclusive_group(required=True)
    which.add_argument("load", nargs="?", metavar="LOAD", help="the load's id")
    which.add_argument("--latest", metavar="TARGET", help="the newest load of TARGET (e.g. personas) not yet undone")
    loads_undo.add_argument("--dry-run", action="store_true", help="say what would change; write nothing")
    loads.set_defaults(handler=_loads)
    keys = commands.add_parser("keys", help="tenant API keys for the steward portal (as the schema's owner)")
    keys_actions = keys.add_subparsers(dest="action", required=True)
    create = keys_actions.add_parser("create", help="create a key; it is printed once and only its hash is kept")
    create.add_argument("--tenant", required=True, metavar="SLUG")
    create.add_argument("--name", required=True, help="what the key is for, e.g. the steward's name")
    listing = keys_actions.add_parser("list", help="the keys (never the keys themselves)")
    listing.add_argument("--tenant", metavar="SLUG")
    revoke = keys_actions.add_parser("revoke", help="revoke a key; sessions signed in with it end")
    revoke.add_argument("--tenant", required=True, metavar="SLUG")
    revoke.add_argument("--name", required=True)
    keys.set_defaults(handler=_keys)
    serve = commands.add_parser("serve", help="the steward portal: upload, see every failure, download the marked-up sheet")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8090)
    serve.set_defaults(handler=_serve)
    worker = commands.add_parser("worker", help="a Celery worker of the distributed mode: runs the steps of runs "
                                                "launched with VITAL_EXECUTOR=celery (broker: VITAL_CELERY_BROKER_URL)")
    worker.add_argument("--name", help="the worker's name, shown in each step's event log (default: vital)")
    worker.add_argument("--concurrency", type=int, help="steps at once (default: the number of CPUs)")
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(handler=_worker)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (DatabaseUnavailable, ChangedMigrationError, ModelUnavailable, config.ConfigurationError) as error:
        print(f"vital-pipelines: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
