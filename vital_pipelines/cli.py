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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vital-pipelines", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    schema = commands.add_parser("schema", help="apply the SQL phase files in schema/ to DATABASE_URL")
    schema.add_argument("--rebuild", action="store_true",
                        help="run 00_WIPE_DATABASE.sql first (drops all pipeline data), then every file")
    schema.set_defaults(handler=_schema)
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
