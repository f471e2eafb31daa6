"""The nightly refresh: every spreadsheet, the document registry, agent vectors, then every knowledge document."""

import dagster as dg

from vital_pipelines.defs.knowledge.partitions import UNPARTITIONED_ASSETS, document_range, range_tags


@dg.schedule(cron_schedule="0 2 * * *", execution_timezone="UTC", target=dg.AssetSelection.all(),
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="02:00 UTC: reload every workbook in raw/, then re-sync every knowledge document. Unchanged "
                         "rows and chunks are left untouched, so a quiet night writes almost nothing.")
def nightly_refresh(context: dg.ScheduleEvaluationContext):
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    graph = context.repository_def.asset_graph
    yield dg.RunRequest(run_key=f"nightly:{day}:registry",
                        asset_selection=sorted(UNPARTITIONED_ASSETS.resolve(graph), key=lambda k: k.to_user_string()),
                        tags={"vital/trigger": "nightly"})
    bounds = document_range(context.instance)
    if bounds:
        yield dg.RunRequest(run_key=f"nightly:{day}:knowledge", asset_selection=[dg.AssetKey("knowledge_chunks")],
                            tags={"vital/trigger": "nightly", **range_tags(*bounds)})

