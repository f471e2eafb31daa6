"""`vital-pipelines`: the library's operations without Dagster, for people at a terminal."""

from __future__ import annotations

import argparse
import sys

from vital_pipelines import config
from vital_pipelines.db import ChangedMigrationError, DatabaseUnavailable, apply_schema, connect
from vital_pipelines.db.connection import require_extensions


def _schema(args: argparse.Namespace) -> int:
    with connect(config.database_url()) as conn:
        require_extensions(conn)
        result = apply_schema(conn, config.SCHEMA_DIR, rebuild=args.rebuild)
    prefix = "wiped, then " if result.wiped else ""
    print(f"{prefix}applied {len(result.applied)} file(s), {len(result.unchanged)} unchanged")
    for name in result.applied:
        print(f"  applied {name}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.templates:
        from vital_pipelines.spreadsheets.templates import write_templates

        written = write_templates(Path(args.out))
    else:
        from vital_pipelines.spreadsheets.generate import generate

        written = generate(Path(args.out), scale=args.scale)
    for path in written:
        print(path)
    return 0


def _validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from vital_pipelines.spreadsheets import report
    from vital_pipelines.spreadsheets.matrix import WORKBOOK as MATRIX_WORKBOOK, validate_matrix
    from vital_pipelines.spreadsheets.safety import UnsafeWorkbookError
    from vital_pipelines.spreadsheets.validation import SheetRefused
    from vital_pipelines.spreadsheets.workbooks import validate_registry_workbook

    path = Path(args.workbook)
    try:
        if path.name == MATRIX_WORKBOOK:
            results = validate_matrix(path)
        else:
            results = validate_registry_workbook(path, raw_dir=Path(args.raw_dir) if args.raw_dir else None)
        failures = [f for result in results.values() for f in result.failures]
        rows = sum(result.total_rows for result in results.values())
    except SheetRefused as refused:
        failures, rows = refused.failures, 0
    except UnsafeWorkbookError as error:
        print(f"vital-pipelines: {error}", file=sys.stderr)
        return 1
    if not failures:
        print(f"{path.name}: {rows} row(s), every row meets its contract.")
        return 0
    for failure in failures:
        print(f"{failure.location}: {failure.message}")
    out = Path(args.annotated) if args.annotated else path.with_name(path.stem + ".annotated.xlsx")
    report.annotate_workbook(path, failures, out)
    print(f"\n{report.summary(failures)}\nAnnotated copy: {out}")
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vital-pipelines", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    schema = commands.add_parser("schema", help="apply the SQL phase files in schema/ to DATABASE_URL")
    schema.add_argument("--rebuild", action="store_true",
                        help="run 00_WIPE_DATABASE.sql first (drops all pipeline data), then every file")
    schema.set_defaults(handler=_schema)
    validate = commands.add_parser("validate", help="check a registry workbook against its contract (no database)")
    validate.add_argument("workbook", help="path of the workbook, e.g. raw/personas.xlsx")
    validate.add_argument("--raw-dir", help="folder of the workbooks it references (default: the workbook's folder)")
    validate.add_argument("--annotated", help="where to write the annotated copy (default: beside the workbook)")
    validate.set_defaults(handler=_validate)
    generate = commands.add_parser("generate", help="write the sample registry workbooks")
    generate.add_argument("--out", default=str(config.RAW_DIR), help="output folder (default raw/)")
    generate.add_argument("--scale", type=int, default=1, help="multiply personas, agents and JTBDs (×10, ×100)")
    generate.add_argument("--templates", action="store_true", help="write blank template workbooks instead")
    generate.set_defaults(handler=_generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (DatabaseUnavailable, ChangedMigrationError) as error:
        print(f"vital-pipelines: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
