"""The Dagster definitions load, and the schema asset materialises against a real database."""

from __future__ import annotations

import dagster as dg

from vital_pipelines import config
from vital_pipelines.db import phase_files
from vital_pipelines.defs.common.resources import PostgresResource
from vital_pipelines.defs.schema.assets import database_schema
from vital_pipelines.definitions import defs


def test_definitions_load_with_the_main_job():
    definitions = defs()
    keys = {key.to_user_string() for key in definitions.resolve_all_asset_keys()}
    assert "database_schema" in keys
    assert definitions.resolve_job_def("refresh_everything") is not None
    assert definitions.resolve_job_def("undo_load") is not None
    assert isinstance(definitions.resources["postgres"], PostgresResource)


def test_schema_asset_applies_then_does_nothing(make_database):
    resources = {"schema_owner": PostgresResource(database_url=make_database(), role="owner")}
    first = dg.materialize([database_schema], resources=resources)
    second = dg.materialize([database_schema], resources=resources)
    meta = [r.asset_materializations_for_node("database_schema")[0].metadata for r in (first, second)]
    phases = len(phase_files(config.SCHEMA_DIR))
    assert (meta[0]["applied"].value, meta[0]["unchanged"].value) == (phases, 0)
    assert (meta[1]["applied"].value, meta[1]["unchanged"].value) == (0, phases)


def test_schema_asset_retries_a_refused_connection_then_fails_with_the_plain_reason(server_url):
    resources = {"schema_owner": PostgresResource(database_url="postgresql://vital@localhost:1/vital", role="owner",
                                                  retry_backoff_seconds=0.05)}
    result = dg.materialize([database_schema], resources=resources, raise_on_error=False)
    assert not result.success
    retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert len(retries) == 4
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert "not accepting connections" in failure.description


def test_the_model_is_described_from_its_files_and_loaded_only_to_embed():
    from vital_pipelines.knowledge.embedding import Embedder

    embedder = Embedder()
    assert not embedder.loaded and embedder.info.dimension == 384 and embedder.info.max_tokens == 256
    vectors = embedder.encode(["a first sentence"])
    assert embedder.loaded and vectors.shape == (1, 384)
    assert embedder._describe(embedder.model) == embedder.info  # the files said what the loaded model says


def test_the_knowledge_pair_can_be_selected_with_a_partition_range_in_one_command():
    # `dagster asset materialize --select knowledge_sources,knowledge_chunks --partition-range a...b` refuses any
    # selected asset without a single-run backfill policy.
    graph = defs().resolve_asset_graph()
    for name in ("knowledge_sources", "knowledge_chunks"):
        policy = graph.get(dg.AssetKey(name)).backfill_policy
        assert policy == dg.BackfillPolicy.single_run(), name
