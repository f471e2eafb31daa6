"""Keeping `knowledge_sources` / `knowledge_chunks` (pgvector) exactly in step with the documents, and searching them.

A sync plans every document first (extract, chunk, compare with the stored chunks), embeds everything that is
new in one batched pass, then writes each document in a transaction of its own under an advisory lock. A chunk's
id is derived from its document, position, content hash and model, so an unchanged chunk keeps its row and its
vector; a chunk that only moved reuses its stored vector; only new text is embedded.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from vital_pipelines import config
from vital_pipelines.db.connection import use_vector_types
from vital_pipelines.db.locks import VECTOR_DIMENSION_LOCK, knowledge_document_lock, lock_for_transaction
from vital_pipelines.enums import VISIBILITY_LEVEL
from vital_pipelines.files import file_sha256
from vital_pipelines.knowledge.chunking import CHUNKER_VERSION, Chunk, chunk_blocks
from vital_pipelines.knowledge.documents import Document, ExtractionError, extract
from vital_pipelines.knowledge.embedding import Embedder, ModelInfo
from vital_pipelines.loading.upsert import PLATFORM_TENANT_SLUG, deterministic_id, tenant_ids_by_slug

ConnectionFactory = Callable[[], psycopg.Connection]


@dataclass
class DocumentResult:
    slug: str
    status: str  # synced | unchanged | failed | removed
    added: int = 0
    kept: int = 0
    removed: int = 0
    embedded: int = 0
    tokens_embedded: int = 0
    error: str | None = None
    path: str | None = None


@dataclass
class SyncReport:
    model: ModelInfo
    documents: list[DocumentResult] = field(default_factory=list)
    embed_seconds: float = 0.0
    seconds: float = 0.0

    def total(self, attribute: str) -> int:
        return sum(getattr(d, attribute) for d in self.documents)

    @property
    def failed(self) -> list[DocumentResult]:
        return [d for d in self.documents if d.status == "failed"]


@dataclass
class _Plan:
    document: Document
    tenant_id: str
    solution_id: str | None
    source_id: str
    chunks: list[Chunk]
    chunk_ids: list[str]
    removed_ids: list[str]
    added: list[int]
    vectors: dict[int, np.ndarray]
    kept: int
    replace_all: bool = False
    platform_owned: bool = True


def chunk_id(source_id: str, chunk: Chunk, model: ModelInfo) -> str:
    return str(deterministic_id("knowledge_chunks", source_id, str(chunk.index), chunk.sha256, model.name, model.revision))


def source_id(tenant_id: str, slug: str) -> str:
    return str(deterministic_id("knowledge_sources", tenant_id, slug))


def ensure_vector_dimension(conn: psycopg.Connection, dimension: int, model: str) -> list[str]:
    """Make the vector columns hold `dimension`; a change drops the old model's vectors (a backfill re-embeds them)
    and rebuilds the HNSW index. Returns the tables that changed. The DDL runs in the schema owner's definer
    function `private.ensure_vector_dimension`: the loader may change the dimension, nothing else about a table, and
    only for another `model` than the one its stored vectors came from."""
    return list(conn.execute("select private.ensure_vector_dimension(%s, %s)", (dimension, model)).fetchone()[0])


def _resolve(conn, document: Document, tenants: dict[str, str]) -> tuple[str, str | None]:
    front = document.front_matter
    tenant_slug = str(front.get("tenant") or PLATFORM_TENANT_SLUG).strip().lower()
    if tenant_slug not in tenants:
        raise ExtractionError(document.path, f"front matter `tenant` must be the slug of an existing tenant; "
                                             f"`{tenant_slug}` is not one")
    visibility = front.get("visibility")
    if visibility is not None and str(visibility).strip().lower() not in VISIBILITY_LEVEL:
        raise ExtractionError(document.path, f"front matter `visibility` must be one of "
                                             f"{', '.join(VISIBILITY_LEVEL)}; got `{visibility}`")
    solution_id = None
    if front.get("solution"):
        row = conn.execute("select id from solutions where code = %s and owner_tenant_id = %s",
                           (str(front["solution"]).strip(), tenants[PLATFORM_TENANT_SLUG])).fetchone()
        if row is None:
            raise ExtractionError(document.path, f"front matter `solution` must be the code of a solution; "
                                                 f"`{front['solution']}` is not one")
        solution_id = str(row[0])
    return tenants[tenant_slug], solution_id


def _current_chunk_count(conn, slug: str, file_sha: str, model: ModelInfo) -> int | None:
    """The chunk count of a live, synced source with this file content, chunker and model; None when it must be
    (re)synced. Checked before extraction, so an unchanged corpus is not even parsed (a document's tenant comes
    from its own content, so the same bytes cannot belong elsewhere). Chunks deleted behind the pipeline's back
    (by hand, a restore gone wrong) make the count differ, and the document is synced again."""
    row = conn.execute(
        "select s.chunk_count from knowledge_sources s where s.slug = %s and s.deleted_at is null "
        "and s.status = 'synced' and s.content_sha256 = %s and coalesce(s.front_matter->>'_chunker', '') = %s "
        "and s.chunk_count = (select count(*) from knowledge_chunks c where c.source_id = s.id) "
        "and not exists (select 1 from knowledge_chunks c where c.source_id = s.id "
        "  and (c.embedding_model is distinct from %s or c.embedding_model_revision is distinct from %s))",
        (slug, file_sha, CHUNKER_VERSION, model.name, model.revision)).fetchone()
    return row[0] if row else None


def _plan(conn, slug: str, path: Path, embedder: Embedder, tenants: dict[str, str], force: bool,
          reembed: bool) -> _Plan | DocumentResult:
    model = embedder.info
    sha = file_sha256(path) if path.is_file() else None
    if not (force or reembed) and sha is not None:
        kept = _current_chunk_count(conn, slug, sha, model)
        if kept is not None:
            return DocumentResult(slug, "unchanged", kept=kept, path=str(path))
    try:
        document = extract(path, slug, sha256=sha)
        tenant_id, solution_id = _resolve(conn, document, tenants)
    except ExtractionError as error:
        return DocumentResult(slug, "failed", error=error.reason, path=str(path))
    chunks = chunk_blocks(document.title, document.blocks, count_tokens=embedder.count_tokens,
                          max_tokens=model.max_tokens)
    # A document that moved to another tenant keeps its source row (and so its chunks' ids and vectors).
    existing = conn.execute("select id from knowledge_sources where slug = %s "
                            "order by tenant_id = %s desc, deleted_at is not null, id limit 1", (slug, tenant_id)).fetchone()
    sid = str(existing[0]) if existing else source_id(tenant_id, slug)
    ids = [chunk_id(sid, chunk, model) for chunk in chunks]
    stored = {str(i): (sha, m, r) for i, sha, m, r in conn.execute(
        "select id, content_sha256, embedding_model, embedding_model_revision from knowledge_chunks "
        "where source_id in (select id from knowledge_sources where slug = %s)", (slug,))}
    platform_owned = tenant_id == tenants[PLATFORM_TENANT_SLUG]
    if reembed:
        return _Plan(document=document, tenant_id=tenant_id, solution_id=solution_id, source_id=sid, chunks=chunks,
                     chunk_ids=ids, removed_ids=list(stored), added=list(range(len(chunks))), vectors={}, kept=0,
                     replace_all=True, platform_owned=platform_owned)
    added = [n for n, i in enumerate(ids) if i not in stored]
    reusable_ids = {sha: i for i, (sha, m, r) in stored.items() if m == model.name and r == model.revision}
    vectors: dict[int, np.ndarray] = {}
    wanted = {chunks[n].sha256: n for n in added if chunks[n].sha256 in reusable_ids}
    if wanted:
        rows = conn.execute("select content_sha256, embedding from knowledge_chunks where id = any(%s)",
                            ([uuid.UUID(reusable_ids[sha]) for sha in wanted],)).fetchall()
        by_sha = {sha: vector for sha, vector in rows}
        vectors = {n: _as_array(by_sha[chunks[n].sha256])
                   for n in added if chunks[n].sha256 in by_sha}
    return _Plan(document=document, tenant_id=tenant_id, solution_id=solution_id, source_id=sid, chunks=chunks,
                 chunk_ids=ids, removed_ids=[i for i in stored if i not in set(ids)], added=added,
                 vectors=vectors, kept=len(chunks) - len(added), platform_owned=platform_owned)


def _as_array(vector) -> np.ndarray:
    return np.asarray(vector.to_numpy() if hasattr(vector, "to_numpy") else vector, dtype=np.float32)


def _write(conn: psycopg.Connection, plan: _Plan, model: ModelInfo) -> None:
    document = plan.document
    front = {**document.front_matter, "_chunker": CHUNKER_VERSION}
    # Without front matter, the platform's documents are shared with everyone; a tenant's stay with that tenant.
    visibility = str(front.get("visibility") or ("public" if plan.platform_owned else "tenant")).strip().lower()
    with conn.transaction():
        lock_for_transaction(conn, knowledge_document_lock(document.slug))
        # A document whose tenant changed moves its row and chunks; any other row of the slug goes with its chunks.
        conn.execute("delete from knowledge_sources where slug = %s and id <> %s", (document.slug, plan.source_id))
        conn.execute("update knowledge_sources set tenant_id = %s where id = %s and tenant_id <> %s",
                     (plan.tenant_id, plan.source_id, plan.tenant_id))
        conn.execute("update knowledge_chunks set tenant_id = %s where source_id = %s and tenant_id <> %s",
                     (plan.tenant_id, plan.source_id, plan.tenant_id))
        conn.execute(
            "insert into knowledge_sources as k (id, tenant_id, slug, title, source_path, source_type, domain, "
            " solution_id, visibility, content_sha256, byte_size, word_count, chunk_count, front_matter, status, "
            " extraction_error, last_synced_at, deleted_at) "
            "values (%s, %s, %s, %s, %s, %s, %s, %s, %s::visibility_level, %s, %s, %s, %s, %s, 'synced', null, now(), null) "
            "on conflict (tenant_id, slug) do update set title = excluded.title, source_path = excluded.source_path, "
            " source_type = excluded.source_type, domain = excluded.domain, solution_id = excluded.solution_id, "
            " visibility = excluded.visibility, content_sha256 = excluded.content_sha256, byte_size = excluded.byte_size, "
            " word_count = excluded.word_count, chunk_count = excluded.chunk_count, front_matter = excluded.front_matter, "
            " status = 'synced', extraction_error = null, last_synced_at = now(), deleted_at = null",
            (plan.source_id, plan.tenant_id, document.slug, document.title[:500], _relative(document.path),
             document.source_type, (str(front["domain"])[:100] if front.get("domain") else None), plan.solution_id,
             visibility, document.file_sha256, document.byte_size, document.word_count, len(plan.chunks), Jsonb(front)))
        if plan.replace_all:
            conn.execute("delete from knowledge_chunks where source_id = %s", (plan.source_id,))
        else:
            conn.execute("delete from knowledge_chunks where source_id = %s and not (id = any(%s))",
                         (plan.source_id, [uuid.UUID(i) for i in plan.chunk_ids]))
        if plan.added:
            _copy_chunks(conn, plan, model)


def _copy_chunks(conn: psycopg.Connection, plan: _Plan, model: ModelInfo) -> None:
    conn.execute(sql.SQL("create temp table stage_chunks (id uuid, chunk_index int, heading_path text[], content text, "
                         "token_count int, content_sha256 text, embedding vector({})) on commit drop")
                 .format(sql.Literal(model.dimension)))
    with conn.cursor().copy("copy stage_chunks from stdin with (format binary)") as copy:
        copy.set_types(["uuid", "int4", "text[]", "text", "int4", "text", "vector"])
        for n in plan.added:
            chunk = plan.chunks[n]
            copy.write_row((uuid.UUID(plan.chunk_ids[n]), chunk.index, list(chunk.heading_path), chunk.content,
                            chunk.token_count, chunk.sha256, plan.vectors[n]))
    # Rows another writer already stored under the same id are identical by construction: keep them.
    conn.execute(
        "insert into knowledge_chunks (id, tenant_id, source_id, chunk_index, heading_path, content, token_count, "
        " content_sha256, embedding, embedding_model, embedding_model_revision, embedding_dimension, embedded_at, metadata) "
        "select s.id, %s, %s, s.chunk_index, s.heading_path, s.content, s.token_count, s.content_sha256, s.embedding, "
        " %s, %s, %s, now(), %s from stage_chunks s order by s.chunk_index on conflict (id) do nothing",
        (plan.tenant_id, plan.source_id, model.name, model.revision, model.dimension,
         Jsonb({"chunker": CHUNKER_VERSION})))


def _relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(config.PROJECT_ROOT).as_posix()
    except ValueError:
        return str(path)


def _record_failure(conn: psycopg.Connection, result: DocumentResult) -> None:
    """A document that cannot be read keeps its last good chunks; its source row says why it is stale."""
    with conn.transaction():
        conn.execute("update knowledge_sources set status = 'failed', extraction_error = %s where slug = %s "
                     "and deleted_at is null", (result.error, result.slug))


class _Progress:
    """Lines of "done / total, rate, time left" for one stage, at most one every `every` seconds, and the last."""

    def __init__(self, say: Callable[[str], None] | None, stage: str, total: int, unit: str, every: float = 5.0):
        self.say, self.stage, self.total, self.unit, self.every = say, stage, total, unit, every
        self.started = self.last = time.perf_counter()

    def done(self, count: int) -> None:
        now = time.perf_counter()
        if self.say is None or self.total == 0 or (count < self.total and now - self.last < self.every):
            return
        self.last = now
        rate = count / max(now - self.started, 1e-9)
        left = f", about {(self.total - count) / rate:.0f} s left" if count < self.total and rate > 0 else ""
        self.say(f"{self.stage}: {count}/{self.total} {self.unit} ({rate:.1f} {self.unit}/s{left})")


EMBED_SLICE = 256  # chunks per call to the model between progress lines


def sync_documents(connect: ConnectionFactory, documents: dict[str, Path], embedder: Embedder, *,
                   force: bool = False, reembed: bool = False,
                   on_progress: Callable[[str], None] | None = None,
                   on_step: Callable[[str], None] | None = None) -> SyncReport:
    """Bring the given documents (slug → path) up to date; see the module docstring. `force` re-chunks documents
    whose file and model are unchanged (still reusing stored vectors); `reembed` embeds every chunk again.
    `on_progress` hears of each document that cannot be read; `on_step`, of documents planned, chunks embedded and
    documents written, done / total with the rate, every few seconds."""
    started = time.perf_counter()
    report = SyncReport(model=embedder.info)
    with connect() as conn:
        use_vector_types(conn)
        with conn.transaction():
            lock_for_transaction(conn, VECTOR_DIMENSION_LOCK)
            ensure_vector_dimension(conn, embedder.info.dimension, embedder.info.name)
        tenants = tenant_ids_by_slug(conn)
        plans: list[_Plan] = []
        planning = _Progress(on_step, "documents read and chunked", len(documents), "documents")
        for done, (slug, path) in enumerate(sorted(documents.items()), 1):
            outcome = _plan(conn, slug, path, embedder, tenants, force, reembed)
            planning.done(done)
            conn.commit()
            if isinstance(outcome, DocumentResult):
                report.documents.append(outcome)
                if outcome.status == "failed":
                    _record_failure(conn, outcome)
                    if on_progress:
                        on_progress(f"{path}: {outcome.error}")
            else:
                plans.append(outcome)
        # Chunks with no stored vector to reuse, per plan; all of them embedded in one batched pass.
        fresh = {id(plan): [n for n in plan.added if n not in plan.vectors] for plan in plans}
        pending = [(plan, n) for plan in plans for n in fresh[id(plan)]]
        embed_started = time.perf_counter()
        embedding = _Progress(on_step, "chunks embedded", len(pending), "chunks")
        for first in range(0, len(pending), EMBED_SLICE):
            part = pending[first:first + EMBED_SLICE]
            for (plan, n), vector in zip(part, embedder.encode([plan.chunks[n].embed_text for plan, n in part])):
                plan.vectors[n] = vector
            embedding.done(first + len(part))
        report.embed_seconds = time.perf_counter() - embed_started
        writing = _Progress(on_step, "documents written", len(plans), "documents")
        for done, plan in enumerate(plans, 1):
            _write(conn, plan, embedder.info)
            writing.done(done)
            embedded = fresh[id(plan)]
            report.documents.append(DocumentResult(
                plan.document.slug, "synced", added=len(plan.added), kept=plan.kept, removed=len(plan.removed_ids),
                embedded=len(embedded), tokens_embedded=sum(plan.chunks[n].token_count for n in embedded),
                path=str(plan.document.path)))
    report.seconds = time.perf_counter() - started
    return report


def remove_documents(conn: psycopg.Connection, keep_slugs: Iterable[str]) -> list[str]:
    """Remove the chunks of every live document not in `keep_slugs` and mark its source removed."""
    keep = sorted(set(keep_slugs))
    gone = [slug for (slug,) in conn.execute(
        "select slug from knowledge_sources where deleted_at is null and not (slug = any(%s)) order by slug", (keep,))]
    return [result.slug for result in drop_documents(conn, gone)]


def drop_documents(conn: psycopg.Connection, slugs: Iterable[str]) -> list[DocumentResult]:
    """Remove the chunks of these documents and mark their sources removed, in one transaction; one result per
    document that was live, with the chunks it lost."""
    gone = sorted(set(slugs))
    results: list[DocumentResult] = []
    if gone:
        with conn.transaction():
            counts = dict(conn.execute(
                "select s.slug, count(c.id) from knowledge_sources s left join knowledge_chunks c on c.source_id = s.id "
                "where s.slug = any(%s) and s.deleted_at is null group by s.slug", (gone,)).fetchall())
            conn.execute("delete from knowledge_chunks c using knowledge_sources s where s.id = c.source_id "
                         "and s.slug = any(%s)", (gone,))
            conn.execute("update knowledge_sources set status = 'removed', chunk_count = 0, deleted_at = now() "
                         "where slug = any(%s) and deleted_at is null", (gone,))
        results = [DocumentResult(slug, "removed", removed=counts[slug]) for slug in gone if slug in counts]
    conn.commit()
    return results
