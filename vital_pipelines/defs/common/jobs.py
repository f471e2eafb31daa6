"""The project-wide jobs, named so that schedules, sensors and the UI's launch buttons target them."""

import dagster as dg

from vital_pipelines.defs.knowledge.partitions import KNOWLEDGE_CHUNKS, UNPARTITIONED_ASSETS

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
