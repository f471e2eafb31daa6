"""The executor of every job that does not choose its own: Dagster's default (a process per step on this machine),
or Celery workers when VITAL_EXECUTOR=celery (vital_pipelines/defs/common/distributed.py)."""

import dagster as dg

from vital_pipelines.defs.common.distributed import executor_choice, executor_definition


@dg.definitions
def executor() -> dg.Definitions:
    if executor_choice() == "celery":
        return dg.Definitions(executor=executor_definition())
    return dg.Definitions()
