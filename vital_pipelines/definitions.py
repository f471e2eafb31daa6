"""The single entry point: every definition under `defs/`, plus the project-wide jobs and policies."""

from __future__ import annotations

import dagster as dg

from vital_pipelines import config
from vital_pipelines.defs.common.housekeeping import release_abandoned_runs_of_this_host
from vital_pipelines.defs.common.lifecycle import die_with_parent
from vital_pipelines.defs.common.jobs import embed_knowledge, refresh_everything

die_with_parent()
release_abandoned_runs_of_this_host()

@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=config.PROJECT_ROOT)


__all__ = ["defs", "embed_knowledge", "refresh_everything"]
