"""The single entry point: every definition under `defs/`, plus the project-wide jobs and policies."""

from __future__ import annotations

import dagster as dg

from vital_pipelines import config
from vital_pipelines.defs.common.lifecycle import die_with_parent
from vital_pipelines.defs.knowledge.partitions import KNOWLEDGE_CHUNKS, UNPARTITIONED_ASSETS

die_with_parent()

refresh_everything = dg.define_asset_job(
    "refresh_everything",
    selection=UNPARTITIONED_ASSETS,
    description="Materialise every unpartitioned asset: schema, registries from raw/, the knowledge document "
                "registry and agent profile vectors. Knowledge chunks follow per document partition.",
)
embed_knowledge = dg.define_asset_job(
    "embed_knowledge", selection=KNOWLEDGE_CHUNKS,
    description="Chunk, embed and sync knowledge documents (one partition per document).",
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=config.PROJECT_ROOT),
        dg.Definitions(jobs=[refresh_everything, embed_knowledge]),
    )
