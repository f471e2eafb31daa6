"""Registry assets, one per target table or closely bound group, each with a contract check per sheet.

A contract check fails with ERROR severity when any row is rejected and lists warnings apart (they keep it
green); under the default policy `quarantine` the sheet's valid rows are loaded all the same and the rejected ones
are kept in `quarantined_rows` until a later run accepts them. Checks do not block: a dependant workbook loads and
checks its references against what the database holds. Each asset loads its registry workbook from raw/ and then
every mapped export of the same registry (`raw/*.mapping.yaml`), each in its own transaction.
"""

from pathlib import Path

import dagster as dg

from vital_pipelines.defs.common.policies import database_errors
from vital_pipelines.defs.common.resources import PostgresResource
from vital_pipelines.defs.registry.resources import RegistrySource
from vital_pipelines.defs.registry.sensors import NEEDS_STEWARD_TAG
from vital_pipelines.files import snapshot
from vital_pipelines.loading.tenant_sources import approved_deletions, tenant_source_name, tenant_sources
from vital_pipelines.loading.registry import (
    DEFAULT_MAX_DELETE_SHARE, AccountingError, ContractViolation, IntegrityProblem, LoadResult, database_references,
    load_workbook, skip_if_unchanged,
)
from vital_pipelines.loading.upsert import Counts, DeletionGuardError
from vital_pipelines.spreadsheets import report
from vital_pipelines.spreadsheets.mapping import MappingError
from vital_pipelines.spreadsheets.matrix import validate_matrix
from vital_pipelines.spreadsheets.safety import UnsafeWorkbookError
from vital_pipelines.spreadsheets.validation import Failure, SheetRefused
from vital_pipelines.spreadsheets.workbooks import (
    MappedSource, mapped_sources, validate_mapped_source, validate_registry_workbook,
)

GROUP = "registry"
KINDS = {"polars", "postgres"}
POOL = "registry"


class RegistryLoadConfig(dg.Config):
    policy: str = "quarantine"
    """`quarantine`: valid rows load, rejected rows are quarantined. `strict`: any failure and nothing is written."""
    max_delete_share: float = DEFAULT_MAX_DELETE_SHARE
    """Refuse a load that would soft-delete more than this share of a table's live rows."""
    reload: bool = False
    """Read and load the source even when it and the database are as the last successful load left them."""


def _failure_metadata(failures: list[Failure], annotated: Path | None) -> dict:
    table_rows = [dg.TableRecord({"file": f.file, "sheet": f.sheet, "cell": f.cell, "column": f.column or "",
                                  "value": "" if f.value is None else str(f.value), "rule": f.rule, "message": f.message})
                  for f in failures[: report.MAX_TABLE_ROWS]]
    metadata = {
        "failures": dg.MetadataValue.int(len(failures)),
        "what_to_fix": dg.MetadataValue.text(report.summary(failures)),
        "failing_cells": dg.MetadataValue.md(report.markdown_table(failures)),
        "failing_cells_table": dg.MetadataValue.table(
            table_rows, schema=dg.TableSchema(columns=[dg.TableColumn(c, "string") for c in
                                                       ("file", "sheet", "cell", "column", "value", "rule", "message")])),
    }
    if annotated is not None:
        metadata["annotated_workbook"] = dg.MetadataValue.path(str(annotated))
    return metadata


def _annotate(source: RegistrySource, workbook: str, path: Path, failures: list[Failure]) -> Path | None:
    if not failures:
        return None
    target = Path(source.reports_dir) / workbook.replace(".xlsx", ".annotated.xlsx")
    try:
        return report.annotate_workbook(path, failures, target)
    except Exception:  # the annotated copy is a convenience; the failure table says everything it says
        return None


def _load(context, workbook: str, config: RegistryLoadConfig, postgres: PostgresResource,
          source: RegistrySource) -> tuple[LoadResult, Path | None]:
    """Load the registry workbook (when raw/ has it) and then each mapped export of the same registry, each from
    one private copy (what is hashed is what was parsed) in its own transaction; one result for the checks."""
    results: list[tuple[str | None, LoadResult]] = []
    annotated = None
    with database_errors(context, postgres):
        try:
            mapped = [] if workbook == "solution_industry_matrix.xlsx" else \
                mapped_sources(Path(source.raw_dir), workbook)
        except MappingError as error:
            _needs_steward(context)
            raise dg.Failure(description=f"Mapping file refused: {error}", allow_retries=False) from None
        if source.workbook(workbook).exists() or not mapped:
            with snapshot(source.workbook(workbook)) as (path, sha):
                result = _validate_and_load(context, workbook, path, sha, config, postgres, source)
                annotated = _annotate(source, workbook, path, result.failures + result.warnings)
                results.append((None, result))
        for export in mapped:
            with snapshot(export.path) as (path, sha):
                results.append((export.path.name, _validate_and_load(context, workbook, path, sha, config, postgres,
                                                                     source, export)))
        if workbook != "solution_industry_matrix.xlsx":
            for tenant, tenant_path in tenant_sources(Path(source.raw_dir), workbook):
                name = tenant_source_name(tenant, workbook)
                with snapshot(tenant_path) as (path, sha):
                    # Deletions a steward approved in the portal for exactly these bytes are let through the guard.
                    approved = approved_deletions(tenant_path, sha) is not None
                    results.append((name, _validate_and_load(context, workbook, path, sha, config, postgres, source,
                                                             tenant=tenant, deletions_approved=approved)))
    return _combined(workbook, results), annotated


def _combined(workbook: str, results: list[tuple[str | None, LoadResult]]) -> LoadResult:
    """One result for the asset: counts added, failures and warnings listed, rows accounted per file and sheet."""
    if len(results) == 1 and results[0][0] is None:
        return results[0][1]
    total = LoadResult(workbook=workbook, source_sha256=", ".join(r.source_sha256 for _n, r in results))
    for name, result in results:
        for table, counts in result.tables.items():
            merged = total.tables.get(table, Counts()).add(counts)
            merged.deleted_keys = total.tables.get(table, Counts()).deleted_keys + counts.deleted_keys
            total.tables[table] = merged
        total.rejected += result.rejected
        total.failures += result.failures
        total.warnings += result.warnings
        for sheet, account in result.accounts.items():
            total.accounts[sheet if name is None else f"{name} › {sheet}"] = account
    if all(r.skipped_since for _n, r in results):
        total.skipped_since = ", ".join(r.skipped_since for _n, r in results)
    return total


def _validate_and_load(context, workbook: str, path: Path, sha: str, config: RegistryLoadConfig,
                       postgres: PostgresResource, source: RegistrySource, export: MappedSource | None = None,
                       tenant: str | None = None, deletions_approved: bool = False) -> LoadResult:
    """Validate and load one source: the registry workbook, a mapped export, or (`tenant`) a tenant's own copy."""
    origin = export.path.name if export else tenant_source_name(tenant, workbook) if tenant else path.name
    try:
        with postgres.get_connection() as conn:
            if not config.reload:
                skipped = skip_if_unchanged(conn, workbook, source_name=origin, sha256=sha, policy=config.policy)
                if skipped is not None:
                    context.log.info("%s is as its load %s left it, and so is the database: not read again",
                                     path.name, skipped.skipped_since)
                    return skipped
            if workbook == "solution_industry_matrix.xlsx":
                sheets = validate_matrix(path, isolated=source.isolated_reader)
            elif export is not None:
                sheets = validate_mapped_source(export, raw_dir=Path(source.raw_dir), path=path,
                                                references=database_references(conn),
                                                isolated=source.isolated_reader)
            else:
                sheets = validate_registry_workbook(path, raw_dir=Path(source.raw_dir), isolated=source.isolated_reader)
            return load_workbook(conn, workbook, sheets, source_path=path, policy=config.policy,
                                 run_id=context.run.run_id,
                                 max_delete_share=1.0 if deletions_approved else config.max_delete_share,
                                 source_sha256=sha, source_name=origin if (export or tenant) else None,
                                 tenant=tenant)
    except (SheetRefused, ContractViolation) as error:
        _needs_steward(context)
        annotated = _annotate(source, workbook, path, error.failures) if export is None else None
        raise dg.Failure(description=report.summary(error.failures) if isinstance(error, SheetRefused) else str(error),
                         metadata=_failure_metadata(error.failures, annotated), allow_retries=False) from None
    except (UnsafeWorkbookError, DeletionGuardError, AccountingError, MappingError, IntegrityProblem) as error:
        _needs_steward(context)
        raise dg.Failure(description=str(error), allow_retries=False) from None


def _needs_steward(context) -> None:
    """Only a new version of the sheet can fix this run: the raw sensor does not run the same content again."""
    context.instance.add_run_tags(context.run.run_id, {NEEDS_STEWARD_TAG: "true"})


def _materialization(result: LoadResult, tables: list[str]) -> dict:
    total = result.total
    per_table = {t: vars(c) for t, c in result.tables.items() if t in tables}
    main = result.tables.get(tables[0], Counts())
    return {
        "dagster/row_count": dg.MetadataValue.int(main.inserted + main.updated + main.unchanged),
        "inserted": dg.MetadataValue.int(total.inserted),
        "updated": dg.MetadataValue.int(total.updated),
        "unchanged": dg.MetadataValue.int(total.unchanged),
        "soft_deleted": dg.MetadataValue.int(total.deleted),
        "rejected": dg.MetadataValue.int(result.rejected),
        "warnings": dg.MetadataValue.int(len(result.warnings)),
        "source_sha256": dg.MetadataValue.text(result.source_sha256),
        "skipped": dg.MetadataValue.bool(result.skipped_since is not None),
        "tables": dg.MetadataValue.json(per_table),
        "sheets": dg.MetadataValue.json(result.accounts),
        "soft_deleted_keys": dg.MetadataValue.json({t: c.deleted_keys for t, c in result.tables.items()
                                                    if t in tables and c.deleted_keys}),
    }


def _check(result: LoadResult, annotated: Path | None, sheet: str, asset_key: dg.AssetKey) -> dg.AssetCheckResult:
    """Red for rejected rows or refused columns; warnings (a row loaded without an optional link, an extra column)
    are listed apart and keep it green."""
    def of_sheet(findings: list[Failure]) -> list[Failure]:
        return [f for f in findings if f.sheet == sheet or (sheet == "matrix" and f.sheet == "fit_scores")]

    failures, warnings = of_sheet(result.failures), of_sheet(result.warnings)
    metadata = _failure_metadata(failures, annotated if failures or warnings else None)
    metadata["warnings"] = dg.MetadataValue.int(len(warnings))
    if warnings:
        metadata["warning_cells"] = dg.MetadataValue.md(report.markdown_table(warnings))
    if sheet in result.accounts:
        metadata["rows"] = dg.MetadataValue.json(result.accounts[sheet])
    description = report.summary(failures) if failures or not warnings else \
        f"Every row loads; {len(warnings)} warning(s): {report.summary(warnings)}"
    return dg.AssetCheckResult(
        check_name=f"{sheet}_contract", asset_key=asset_key, passed=not failures,
        severity=dg.AssetCheckSeverity.ERROR, description=description, metadata=metadata,
    )


def _check_spec(sheet: str, asset: str) -> dg.AssetCheckSpec:
    # Not blocking: one workbook's rejected rows must not stop the others, whose loads check their references
    # against what did load.
    return dg.AssetCheckSpec(f"{sheet}_contract", asset=asset, blocking=False,
                             description=f"Every row of the `{sheet}` sheet meets its Pandera contract.")


ORG_TABLES = ["org_functions", "org_departments", "org_roles", "org_responsibilities"]
ORG_SHEET_OF = {"org_functions": "functions", "org_departments": "departments", "org_roles": "roles",
                "org_responsibilities": "responsibilities"}


@dg.multi_asset(
    specs=[dg.AssetSpec(t, group_name=GROUP, kinds=KINDS, deps=["database_schema"],
                        description=f"{t} (with its junctions), loaded from raw/org_structure.xlsx.")
           for t in ORG_TABLES],
    check_specs=[_check_spec(s, t) for t, s in ORG_SHEET_OF.items()]
    + [_check_spec("role_responsibilities", "org_responsibilities")],
    pool=POOL,
)
def org_structure(context: dg.AssetExecutionContext, config: RegistryLoadConfig, postgres: PostgresResource,
                  registry_source: RegistrySource):
    result, annotated = _load(context, "org_structure.xlsx", config, postgres, registry_source)
    junctions = {"org_departments": ["function_departments"], "org_roles": ["department_roles", "function_roles"],
                 "org_responsibilities": ["role_responsibilities"]}
    for table in ORG_TABLES:
        yield dg.MaterializeResult(asset_key=table, metadata=_materialization(result, [table, *junctions.get(table, [])]))
    for table, sheet in ORG_SHEET_OF.items():
        yield _check(result, annotated, sheet, dg.AssetKey(table))
    yield _check(result, annotated, "role_responsibilities", dg.AssetKey("org_responsibilities"))


def _registry_asset(name: str, workbook: str, sheet: str, deps: list[str], junctions: list[str], description: str):
    @dg.asset(name=name, group_name=GROUP, kinds=KINDS, deps=deps, description=description,
              check_specs=[_check_spec(sheet, name)], pool=POOL)
    def _asset(context: dg.AssetExecutionContext, config: RegistryLoadConfig, postgres: PostgresResource,
               registry_source: RegistrySource):
        result, annotated = _load(context, workbook, config, postgres, registry_source)
        yield dg.MaterializeResult(metadata=_materialization(result, [name, *junctions]))
        yield _check(result, annotated, sheet, dg.AssetKey(name))

    return _asset


personas = _registry_asset("personas", "personas.xlsx", "personas", ["database_schema", "org_roles"], [],
                           "Professional personas, loaded from raw/personas.xlsx.")
agents = _registry_asset("agents", "agents.xlsx", "agents", ["database_schema", "org_roles"],
                         ["agent_functions", "agent_departments", "agent_roles"],
                         "AI agents and their place in the organisation, loaded from raw/agents.xlsx.")
jobs_to_be_done = _registry_asset("jobs_to_be_done", "jtbds.xlsx", "jtbds", ["database_schema", "personas"],
                                  ["jtbd_personas"], "Jobs to be done and the personas they serve, from raw/jtbds.xlsx.")
solution_industry_matrix = _registry_asset(
    "solution_industry_matrix", "solution_industry_matrix.xlsx", "matrix", ["database_schema"], [],
    "Which solutions are available for which industries, from raw/solution_industry_matrix.xlsx.")
