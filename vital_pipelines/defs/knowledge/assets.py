"""Knowledge assets: the document registry, the embedded chunks per document partition, and agent profile vectors."""

from pathlib import Path

import dagster as dg

from vital_pipelines.defs.common.policies import database_errors
from vital_pipelines.defs.common.resources import PostgresResource
from vital_pipelines.defs.knowledge.partitions import knowledge_documents
from vital_pipelines.defs.knowledge.resources import EmbeddingModel, KnowledgeSource
from vital_pipelines.knowledge.agent_profiles import embed_agent_profiles
from vital_pipelines.knowledge.embedding import ModelUnavailable
from vital_pipelines.knowledge.store import SyncReport, drop_documents, remove_documents, sync_documents

GROUP = "knowledge"


class KnowledgeSyncConfig(dg.Config):
    force: bool = False
    """Re-chunk documents even where file and model are unchanged (vectors of unchanged chunks are still reused)."""
    reembed: bool = False
    """Embed every chunk again, reusing nothing (e.g. after replacing the model's weights under the same name)."""


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


@dg.asset(group_name=GROUP, kinds={"postgres"}, deps=["database_schema"], pool="knowledge",
          description="The registry of knowledge documents: one partition per file in assets/knowledge/; documents "
                      "that disappeared lose their chunks and are marked removed.")
def knowledge_sources(context: dg.AssetExecutionContext, postgres: PostgresResource,
                      knowledge_source: KnowledgeSource) -> dg.MaterializeResult:
    documents = knowledge_source.documents()
    added, dropped = register_document_partitions(context.instance, list(documents))
    with database_errors(context, postgres), postgres.get_connection() as conn:
        removed = remove_documents(conn, documents)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(documents),
        "documents": len(documents),
        "partitions_added": dg.MetadataValue.json(added),
        "partitions_removed": dg.MetadataValue.json(dropped),
        "documents_removed": dg.MetadataValue.json(removed),
    })


def _sync_metadata(report: SyncReport) -> dict:
    embedded = report.total("embedded")
    rows = [dg.TableRecord({"document": d.slug, "status": d.status, "added": d.added, "kept": d.kept,
                            "removed": d.removed, "embedded": d.embedded, "error": d.error or ""})
            for d in report.documents]
    return {
        "chunks_added": report.total("added"),
        "chunks_kept": report.total("kept"),
        "chunks_removed": report.total("removed"),
        "chunks_embedded": embedded,
        "tokens_embedded": report.total("tokens_embedded"),
        "documents_failed": len(report.failed),
        "model": report.model.name,
        "model_revision": report.model.revision,
        "dimension": report.model.dimension,
        "seconds": round(report.seconds, 3),
        "chunks_per_second": round(embedded / report.embed_seconds, 1) if report.embed_seconds else 0.0,
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
                                on_progress=context.log.warning)
        if vanished:
            with postgres.get_connection() as conn:
                drop_documents(conn, vanished)
            context.log.info("removed documents whose files are gone: %s", ", ".join(vanished))
    context.log.info("%d chunk(s) embedded in %.1f s; %d kept; %d removed", report.total("embedded"),
                     report.embed_seconds, report.total("kept"), report.total("removed"))
    yield dg.MaterializeResult(metadata=_sync_metadata(report))
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
