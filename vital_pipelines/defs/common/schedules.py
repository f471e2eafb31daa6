"""The nightly refresh: every spreadsheet, the document registry and agent vectors at 02:00, then, when that run
succeeds, every knowledge document. Both target named jobs, so the UI's "Launch all" on a tick launches them."""

import dagster as dg

from vital_pipelines.defs.common.jobs import embed_knowledge, refresh_everything
from vital_pipelines.defs.knowledge.partitions import document_range, range_tags


@dg.schedule(cron_schedule="0 2 * * *", execution_timezone="UTC", job=refresh_everything,
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="02:00 UTC: reload every workbook in raw/ (then `knowledge_after_refresh` re-syncs every "
                         "knowledge document). Unchanged rows and chunks are left untouched, so a quiet night writes "
                         "almost nothing.")
def nightly_refresh(context: dg.ScheduleEvaluationContext):
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return dg.RunRequest(run_key=f"nightly:{day}:registry", tags={"vital/trigger": "nightly"})


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, monitored_jobs=[refresh_everything],
                      request_job=embed_knowledge, default_status=dg.DefaultSensorStatus.RUNNING,
                      description="After a successful refresh_everything run, one run over every knowledge document.")
def knowledge_after_refresh(context: dg.RunStatusSensorContext):
    bounds = document_range(context.instance)
    if not bounds:
        return dg.SkipReason("no knowledge documents are registered")
    trigger = context.dagster_run.tags.get("vital/trigger", "refresh_everything")
    return dg.RunRequest(run_key=f"after:{context.dagster_run.run_id}",
                         tags={"vital/trigger": f"{trigger} (knowledge)", **range_tags(*bounds)})
