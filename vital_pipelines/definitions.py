"""The single entry point: every definition under `defs/`, plus the project-wide jobs and policies."""

from __future__ import annotations

import dagster as dg

from vital_pipelines import config

refresh_everything = dg.define_asset_job(
    "refresh_everything",
    selection=dg.AssetSelection.all(),
    description="Materialise every asset: schema, registries from raw/, knowledge from assets/.",
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=config.PROJECT_ROOT),
        dg.Definitions(jobs=[refresh_everything]),
    )
