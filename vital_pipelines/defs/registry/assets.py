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
from vital_pipelines.entities import BY_SHEET, workbook_entities
from vital_pipelines.files import write_atomically
from vital_pipelines.loading.entity_load import DERIVED_LINKS
from vital_pipelines.loading.sources import NoSource, Source, load_source, registry_sources
from vital_pipelines.loading.registry import (
    DEFAULT_MAX_DELETE_SHARE, AccountingError, ContractViolation, IntegrityProblem, LoadResult,
)
from vital_pipelines.loading.tenant_sources import TENANTS_FOLDER, approved_upload
from vital_pipelines.loading.upsert import Counts, DeletionGuardError
from vital_pipelines.spreadsheets import report
from vital_pipelines.spreadsheets.mapping import MappingError
from vital_pipelines.spreadsheets.safety import UnsafeWorkbookError
from vital_pipelines.spreadsheets.validation import Failure, SheetRefused

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


def _failure_metadata(failures: list[Failure], annotated: Path | None, source: RegistrySource | None = None) -> dict:
    """The failures as a table that reads at a laptop's width (short columns, the message last, plain text), the
    summary, and where the steward gets everything: the annotated workbook and the full report (links into the
    portal when it is configured; the table stops at MAX_TABLE_ROWS, the report never does)."""
    table_rows = [dg.TableRecord({"file": f.file, "sheet": f.sheet, "cell": f.cell, "value": report.short(f.value),
                                  "rule": report.rule_words(f.rule), "message": report.plain(f.message)})
                  for f in failures[: report.MAX_TABLE_ROWS]]
    metadata = {
        "failures": dg.MetadataValue.int(len(failures)),
        "what_to_fix": dg.MetadataValue.text(report.plain(report.summary(failures))),
        "failing_cells": dg.MetadataValue.md(report.markdown_table(failures)),
        "failing_cells_table": dg.MetadataValue.table(
            table_rows, schema=dg.TableSchema(columns=[dg.TableColumn(c, "string") for c in
                                                       ("file", "sheet", "cell", "value", "rule", "message")])),
    }
    if annotated is not None:
        metadata["annotated_workbook"] = dg.MetadataValue.path(str(annotated))
        if source is not None and source.portal_url:
            base = source.portal_url.rstrip("/")
            metadata["annotated_workbook_download"] = dg.MetadataValue.url(f"{base}/reports/{annotated.name}")
            metadata["full_report"] = dg.MetadataValue.url(f"{base}/reports/{_report_csv(annotated).name}")
    tenant_files = sorted({f.file for f in failures if f.file.startswith(f"{TENANTS_FOLDER}/")})
    if source is not None and source.portal_url and tenant_files:
        # a tenant's file: its steward reads its report and its waiting rows in the portal, not an annotated copy
        base = source.portal_url.rstrip("/")
        metadata["portal_quarantine"] = dg.MetadataValue.url(f"{base}/quarantine")
        for name in tenant_files:
            upload = approved_upload(Path(source.raw_dir) / name)
            if upload:
                metadata[f"portal_report {name}"] = dg.MetadataValue.url(f"{base}/uploads/{upload}")
    return metadata


def _report_csv(annotated: Path) -> Path:
    return annotated.with_name(annotated.name.replace(".annotated.xlsx", ".failures.csv"))


def _annotate(source: RegistrySource, workbook: str, path: Path, failures: list[Failure],
              warnings: list[Failure] = ()) -> Path | None:
    """The annotated copy of the workbook and, beside it, the full report as CSV (failures and warnings)."""
    if not failures and not warnings:
        return None
    target = Path(source.reports_dir) / workbook.replace(".xlsx", ".annotated.xlsx")
    try:
        annotated = report.annotate_workbook(path, failures, target, warnings)
        findings = [{**f.as_dict(), "severity": "failure"} for f in failures] + \
                   [{**f.as_dict(), "severity": "warning"} for f in warnings]
        write_atomically(_report_csv(annotated), report.failures_csv(findings).encode("utf-8"))  # as the copy: 0600
        return annotated
    except Exception:  # the annotated copy is a convenience; the failure table says everything it says
        return None


class SourceRefused(Exception):
    """A source refused as a whole (headers, a bad file, the deletion guard): the checks say why, then the step
    fails."""

    def __init__(self, description: str, failures: list[Failure], metadata: dict):
        self.description, self.failures, self.metadata = description, failures, metadata
        super().__init__(description)


def _load(context, workbook: str, config: RegistryLoadConfig, postgres: PostgresResource,
          source: RegistrySource) -> tuple[LoadResult, Path | None]:
    """Load every source of the registry (see loading.sources), each in its own transaction; one result for the
    checks, and the annotated copy of the registry's own workbook when it has findings."""
    results: list[tuple[str | None, LoadResult]] = []
    annotated = None
    with database_errors(context, postgres):
        try:
            sources = registry_sources(Path(source.raw_dir), workbook)
        except MappingError as error:
            _needs_steward(context)
            raise SourceRefused(f"A mapping file was refused: {error}", [], {}) from None
        except NoSource as error:
            _needs_steward(context)
            raise SourceRefused(str(error), [], {}) from None
        for each in sources:
            own = each.export is None and each.tenant is None and each.path.name == workbook
            result = _validate_and_load(context, each, config, postgres, source, annotate=own)
            if own:
                annotated = _annotate(source, workbook, each.path, result.failures, result.warnings)
            results.append((None if own else each.origin, result))
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
            merged.held_back_keys = total.tables.get(table, Counts()).held_back_keys + counts.held_back_keys
            total.tables[table] = merged
        total.rejected += result.rejected
        total.failures += result.failures
        total.warnings += result.warnings
        for sheet, account in result.accounts.items():
            total.accounts[sheet if name is None else f"{name} › {sheet}"] = account
    if all(r.skipped_since for _n, r in results):
        total.skipped_since = ", ".join(r.skipped_since for _n, r in results)
    return total


def _validate_and_load(context, each: Source, config: RegistryLoadConfig, postgres: PostgresResource,
                       source: RegistrySource, *, annotate: bool) -> LoadResult:
    """Load one source through the library's `load_source`; a refusal becomes the checks' failure."""
    def skipped(result: LoadResult) -> None:
        context.log.info("%s is as its load %s left it, and so is the database: not read again", each.origin,
                         result.skipped_since)

    try:
        with postgres.get_connection() as conn:
            return load_source(conn, each, raw_dir=Path(source.raw_dir), policy=config.policy,
                               run_id=context.run.run_id, max_delete_share=config.max_delete_share,
                               reload=config.reload, isolated=source.isolated_reader, on_skip=skipped)
    except (SheetRefused, ContractViolation) as error:
        _needs_steward(context)
        annotated = _annotate(source, each.workbook, each.path, error.failures) if annotate else None
        if isinstance(error, SheetRefused):  # a few problems, each at its cell: say them
            shown = "; ".join(f"{f.sheet} {f.cell}: {report.plain(f.message)}".replace("  ", " ")
                              for f in error.failures[:3])
            more = f" (and {len(error.failures) - 3} more)" if len(error.failures) > 3 else ""
            description = f"{shown}{more}. Fix the sheet (the annotated copy marks each cell) and save it again."
        else:
            description = str(error)
        raise SourceRefused(f"{each.origin} was refused: {description}", error.failures,
                            _failure_metadata(error.failures, annotated, source)) from None
    except (UnsafeWorkbookError, DeletionGuardError, AccountingError, MappingError, IntegrityProblem) as error:
        _needs_steward(context)
        raise SourceRefused(f"{each.origin} was refused: {error}", [], {}) from None


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
        "deletions_held_back": dg.MetadataValue.json({t: c.held_back_keys for t, c in result.tables.items()
                                                      if t in tables and c.held_back_keys}),
    }


def _check(result: LoadResult, annotated: Path | None, sheet: str, asset_key: dg.AssetKey,
           source: RegistrySource | None = None) -> dg.AssetCheckResult:
    """Red for rejected rows or refused columns; warnings (a row loaded without an optional link, an extra column)
    are listed apart and keep it green."""
    def of_sheet(findings: list[Failure]) -> list[Failure]:
        return [f for f in findings if f.sheet == sheet or (sheet == "matrix" and f.sheet == "fit_scores")]

    failures, warnings = of_sheet(result.failures), of_sheet(result.warnings)
    metadata = _failure_metadata(failures, annotated if failures or warnings else None, source)
    metadata["warnings"] = dg.MetadataValue.int(len(warnings))
    if warnings:
        metadata["warning_cells"] = dg.MetadataValue.md(report.markdown_table(warnings))
    # Each file's own accounting (the platform's workbook, a tenant's file, an export), never one file's for another.
    accounts = {("platform workbook" if name == sheet else name.rsplit(" › ", 1)[0]): account
                for name, account in result.accounts.items() if name == sheet or name.endswith(f" › {sheet}")}
    if accounts:
        metadata["rows"] = dg.MetadataValue.json(accounts)
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


def _refused_checks(refusal: SourceRefused, checks: list[tuple[str, dg.AssetKey]]):
    """Every check of the asset fails with the reason and the refused cells, so the Checks tab says why; the step
    then fails (nothing was loaded)."""
    for sheet, asset_key in checks:
        own = [f for f in refusal.failures if f.sheet == sheet]
        # The sheet's own refused cells; the links to the annotated workbook and the report stay.
        metadata = {**refusal.metadata, **(_failure_metadata(own, None) if own else {})}
        yield dg.AssetCheckResult(check_name=f"{sheet}_contract", asset_key=asset_key, passed=False,
                                  severity=dg.AssetCheckSeverity.ERROR, description=refusal.description,
                                  metadata=metadata)
    raise dg.Failure(description=refusal.description, metadata=refusal.metadata, allow_retries=False)


def _junctions(entities) -> dict[str, list[str]]:
    """Per asset: the junction tables its load keeps in step (reported with it)."""
    found: dict[str, list[str]] = {}
    for entity in entities:
        tables = [c.link.table for c in entity.links] + [j for j, *_ in DERIVED_LINKS.get(entity.sheet, ())]
        if entity.links_only:
            tables.append(entity.table)
        found.setdefault(entity.asset_name, []).extend(tables)
    return found


def _workbook_asset(workbook: str, entities):
    """One multi-asset per registry workbook: an asset per table its sheets fill, a contract check per sheet, and
    dependencies on the assets of the tables its references name; all of it read from the entity catalog."""
    tables = [e for e in entities if not e.links_only]
    checks = [(e.sheet, e.asset_name) for e in entities]
    junctions = _junctions(entities)
    deps: dict[str, set[str]] = {e.asset_name: set() for e in tables}
    for entity in entities:
        deps[entity.asset_name] |= {BY_SHEET[c.target].asset_name for c in entity.references
                                    if BY_SHEET[c.target].workbook != workbook}

    @dg.multi_asset(
        # Run config names the op: a one-table workbook's op is named after its table, as its asset is.
        name=tables[0].asset_name if len(tables) == 1 else workbook.removesuffix(".xlsx"),
        specs=[dg.AssetSpec(e.asset_name, group_name=GROUP, kinds=KINDS, deps=["database_schema", *sorted(deps[e.asset_name])],
                            description=f"{e.description} Loaded from raw/{workbook}"
                                        + (f" (with {', '.join(junctions[e.asset_name])})."
                                           if junctions.get(e.asset_name) else "."))
               for e in tables],
        check_specs=[_check_spec(sheet, asset) for sheet, asset in checks],
        pool=POOL,
    )
    def _asset(context: dg.AssetExecutionContext, config: RegistryLoadConfig, postgres: PostgresResource,
               registry_source: RegistrySource):
        try:
            result, annotated = _load(context, workbook, config, postgres, registry_source)
        except SourceRefused as refusal:
            yield from _refused_checks(refusal, [(sheet, dg.AssetKey(asset)) for sheet, asset in checks])
            return
        for entity in tables:
            yield dg.MaterializeResult(asset_key=entity.asset_name, metadata=_materialization(
                result, [entity.table, *junctions.get(entity.asset_name, [])]))
        for sheet, asset in checks:
            yield _check(result, annotated, sheet, dg.AssetKey(asset), registry_source)

    return _asset


def _registry_asset(name: str, workbook: str, sheet: str, deps: list[str], junctions: list[str], description: str):
    @dg.asset(name=name, group_name=GROUP, kinds=KINDS, deps=deps, description=description,
              check_specs=[_check_spec(sheet, name)], pool=POOL)
    def _asset(context: dg.AssetExecutionContext, config: RegistryLoadConfig, postgres: PostgresResource,
               registry_source: RegistrySource):
        try:
            result, annotated = _load(context, workbook, config, postgres, registry_source)
        except SourceRefused as refusal:
            yield from _refused_checks(refusal, [(sheet, dg.AssetKey(name))])
            return
        yield dg.MaterializeResult(metadata=_materialization(result, [name, *junctions]))
        yield _check(result, annotated, sheet, dg.AssetKey(name), registry_source)

    return _asset


WORKBOOK_ASSET = {workbook: _workbook_asset(workbook, entities) for workbook, entities in workbook_entities().items()}
REGISTRY_ASSETS = list(WORKBOOK_ASSET.values())
solution_industry_matrix = _registry_asset(
    "solution_industry_matrix", "solution_industry_matrix.xlsx", "matrix",
    ["database_schema", "industries", "solutions"], [],
    "Which solutions are available for which industries, from raw/solution_industry_matrix.xlsx.")
