"""The `database_schema` asset: every phase file in `schema/` applied, tracked by checksum."""


import dagster as dg

from vital_pipelines import config
from vital_pipelines.db import ChangedMigrationError, apply_schema
from vital_pipelines.db.connection import require_extensions
from vital_pipelines.defs.common.policies import database_errors
from vital_pipelines.defs.common.resources import PostgresResource


class SchemaConfig(dg.Config):
    rebuild: bool = False
    """Run 00_WIPE_DATABASE.sql first and apply every file again (drops all pipeline data)."""


@dg.asset(
    group_name="schema", pool="schema",
    kinds={"postgres"},
    description="The VITAL.expert gold-standard schema: the phase files in schema/ applied in order, once each.",
)
def database_schema(context: dg.AssetExecutionContext, config: SchemaConfig,
                    schema_owner: PostgresResource) -> dg.MaterializeResult:
    try:
        with database_errors(context, schema_owner), \
                schema_owner.get_connection() as conn:
            require_extensions(conn)
            result = apply_schema(conn, _schema_dir(), rebuild=config.rebuild)
    except ChangedMigrationError as error:
        raise dg.Failure(description=str(error), allow_retries=False) from None
    context.log.info(
        "schema: %d file(s) applied, %d unchanged%s",
        len(result.applied), len(result.unchanged), " after a wipe" if result.wiped else "",
    )
    return dg.MaterializeResult(
        metadata={
            "applied": dg.MetadataValue.int(len(result.applied)),
            "unchanged": dg.MetadataValue.int(len(result.unchanged)),
            "applied_files": dg.MetadataValue.json(result.applied),
            "wiped": dg.MetadataValue.bool(result.wiped),
            "database": dg.MetadataValue.text(schema_owner.display_url),
        }
    )


def _schema_dir():
    return config.SCHEMA_DIR
