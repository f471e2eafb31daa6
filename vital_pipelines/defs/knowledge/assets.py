"""Knowledge assets: the document registry, the embedded chunks per document partition, and agent profile vectors."""

import logging
from pathlib import Path

import dagster as dg

from vital_pipelines.defs.common.policies import database_errors
from vital_pipelines.defs.common.resources import PostgresResource
from vital_pipelines.defs.knowledge.partitions import knowledge_documents
from vital_pipelines.defs.knowledge.resources import EmbeddingModel, KnowledgeSource
from vital_pipelines.knowledge.agent_profiles import embed_agent_profiles
from vital_pipelines.knowledge.documents import KeyCollision
from vital_pipelines.knowledge.embedding import ModelUnavailable
from vital_pipelines.knowledge.store import DocumentResult, SyncReport, drop_documents, remove_documents, sync_documents

GROUP = "knowledge"
# Progress of long syncs, beside the run's own log: scripts/run prints this logger, whose console is otherwise quiet.
PROGRESS = logging.getLogger("vital_pipelines.progress")


class KnowledgeSyncConfig(dg.Config):
    force: bool = False
    """Re-chunk documents even where file and model are unchanged (vectors of unchanged chunks are still reused)."""
    reembed: bool = False
    """Embed every chunk again, reusing nothing (e.g. after replacing the model's weights under the same name)."""


def _progress(context: dg.AssetExecutionContext, line: str) -> None:
    context.log.info(line)
    PROGRESS.info(line)


def _loaded(embedding_model: EmbeddingModel):
    """The model, or a failure that says why it cannot be loaded (retrying would not help)."""
    try:
        return embedding_model.embedder
    except ModelUnavailable as error:
        raise dg.Failure(description=str(error), allow_retries=False) from None


def register_document_partitions(instance: dg.DagsterInstance, present: list[str]) -> tuple[list[str], list[str]]:
    """Make the `knowledge_documents` partitions exactly the present documents; returns (added, removed)."""
    existing = set(instance.get_dynamic_partitions(knowledge_documents.name))
    added = sorted(set(present) - existing)
    removed = sorted(existing - set(present))
    if added:
        instance.add_dynamic_partitions(knowledge_documents.name, added)
    for key in removed:
        instance.delete_dynamic_partition(knowledge_documents.name, key)
    return added, removed


# A single-run backfill policy lets one command select this asset with a partition range of knowledge_chunks.
@dg.asset(group_name=GROUP, kinds={"postgres"}, deps=["database_schema"], pool="knowledge",
          backfill_policy=dg.BackfillPolicy.single_run(),
          description="The registry of knowledge documents: one partition per file in assets/knowledge/; documents "
                      "that disappeared lose their chunks and are marked removed.")
def knowledge_sources(context: dg.AssetExecutionContext, postgres: PostgresResource,
                      knowledge_source: KnowledgeSource) -> dg.MaterializeResult:
    collisions: list[KeyCollision] = []
    documents = knowledge_source.documents(collisions)
    for collision in collisions:
        context.log.warning("%s would share the key %s; each is kept under its own key: %s",
                            " and ".join(collision.files), collision.slug, ", ".join(collision.resolved))
    added, dropped = register_document_partitions(context.instance, list(documents))
    with database_errors(context, postgres), postgres.get_connection() as conn:
        removed = remove_documents(conn, documents)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(documents),
        "documents": len(documents),
        "partitions_added": dg.MetadataValue.json(added),
        "partitions_removed": dg.MetadataValue.json(dropped),
        "documents_removed": dg.MetadataValue.json(removed),
        "key_collisions": dg.MetadataValue.json([{"key": c.slug, "files": list(c.files), "kept_as": list(c.resolved)}
                                                 for c in collisions]),
    })


def _sync_metadata(report: SyncReport, documents: list[DocumentResult]) -> dict:
    """Metadata of the given documents' results (one partition's, or a run's)."""
    embedded = sum(d.embedded for d in documents)
    rows = [dg.TableRecord({"document": d.slug, "status": d.status, "added": d.added, "kept": d.kept,
                            "removed": d.removed, "embedded": d.embedded, "error": d.error or ""})
            for d in documents]
    return {
        "chunks_added": sum(d.added for d in documents),
        "chunks_kept": sum(d.kept for d in documents),
        "chunks_removed": sum(d.removed for d in documents),
        "chunks_embedded": embedded,
        "tokens_embedded": sum(d.tokens_embedded for d in documents),
        "documents_failed": sum(d.status == "failed" for d in documents),
        "model": report.model.name,
        "model_revision": report.model.revision,
        "dimension": report.model.dimension,
        "documents": dg.MetadataValue.table(rows, schema=dg.TableSchema(columns=[
            dg.TableColumn(c, "string" if c in ("document", "status", "error") else "int")
            for c in ("document", "status", "added", "kept", "removed", "embedded", "error")])),
    }


@dg.asset(
    group_name=GROUP, kinds={"pgvector", "postgres"}, deps=["knowledge_sources"],
    partitions_def=knowledge_documents, backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[dg.AssetCheckSpec("documents_readable", asset="knowledge_chunks", blocking=False,
                                   description="Every document in the partition could be read.")],
    pool="knowledge",
    description="Embedded chunks of each knowledge document (pgvector, HNSW cosine); only new or changed chunks are "
                "embedded. A backfill over all partitions re-embeds the corpus after a model change.",
)
def knowledge_chunks(context: dg.AssetExecutionContext, config: KnowledgeSyncConfig, postgres: PostgresResource,
                     embedding_model: EmbeddingModel, knowledge_source: KnowledgeSource):
    available = knowledge_source.documents()
    keys = list(context.partition_keys)
    wanted = {key: available[key] for key in keys if key in available}
    vanished = [key for key in keys if key not in available]
    embedder = _loaded(embedding_model)
    with database_errors(context, postgres):
        report = sync_documents(postgres.get_connection, wanted, embedder, force=config.force, reembed=config.reembed,
                                on_progress=context.log.warning, on_step=lambda line: _progress(context, line))
        if vanished:
            with postgres.get_connection() as conn:
                report.documents.extend(drop_documents(conn, vanished))
            context.log.info("removed documents whose files are gone: %s", ", ".join(vanished))
    context.log.info("%d chunk(s) embedded in %.1f s; %d kept; %d removed", report.total("embedded"),
                     report.embed_seconds, report.total("kept"), report.total("removed"))
    # Each partition's materialisation describes that document; the run's totals go on the run's tags.
    by_slug = {d.slug: d for d in report.documents}
    many = len(keys) > 1
    if many:
        for key in keys:
            if key in by_slug:
                context.add_asset_metadata(_sync_metadata(report, [by_slug[key]]), partition_key=key)
    totals = _sync_metadata(report, report.documents)
    context.instance.add_run_tags(context.run.run_id, {
        f"vital/{name}": str(totals[name]) for name in
        ("chunks_added", "chunks_kept", "chunks_removed", "chunks_embedded", "documents_failed")})
    run_wide = {"seconds": round(report.seconds, 3),
                "chunks_per_second": round(report.total("embedded") / report.embed_seconds, 1)
                if report.embed_seconds else 0.0}
    yield dg.MaterializeResult(metadata=run_wide if many else {**totals, **run_wide})
    failed = report.failed
    yield dg.AssetCheckResult(
        check_name="documents_readable", passed=not failed, severity=dg.AssetCheckSeverity.ERROR,
        description=("Every document could be read." if not failed else
                     f"{len(failed)} document(s) could not be read; their last good chunks are kept. Fix or remove: "
                     + "; ".join(f"{Path(d.path).name}: {d.error}" for d in failed)),
        metadata={"failed_documents": dg.MetadataValue.md(
            "\n".join(["| file | reason |", "|---|---|"] + [f"| {d.path} | {d.error} |" for d in failed]))
            if failed else dg.MetadataValue.text("none")},
    )


@dg.asset(group_name=GROUP, kinds={"pgvector", "postgres"}, deps=["agents"], pool="registry",
          description="Each live agent's profile (name, description, capabilities, domains) embedded into "
                      "agents.profile_embedding; only changed profiles are re-embedded.")
def agent_profile_embeddings(context: dg.AssetExecutionContext, postgres: PostgresResource,
                             embedding_model: EmbeddingModel) -> dg.MaterializeResult:
    embedder = _loaded(embedding_model)
    with database_errors(context, postgres), postgres.get_connection() as conn:
        result = embed_agent_profiles(conn, embedder)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": result.embedded + result.unchanged,
        "embedded": result.embedded, "unchanged": result.unchanged,
        "model": embedder.info.name, "dimension": embedder.info.dimension, "seconds": round(result.seconds, 3),
    })
