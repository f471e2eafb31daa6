"""Hybrid search over the knowledge chunks (vector and full text, fused), and the best-matching agents.

The vector ranking (pgvector HNSW, cosine) finds paraphrases; the lexical ranking (the chunks' `search_vector`,
each query term weighted by its rarity, BM25's idf) finds exact names, codes and figures the embedding misses.
The two are fused by reciprocal rank: a chunk's score is the sum of 1 / (60 + rank) over the rankings it is in.

Whose rows are searched is decided by the database, not here: a search on behalf of a user runs inside
`acting_as`, as `authenticated` with that user's claims, so row-level security hides every chunk whose document
the user may not read. Filters (tenant, visibility, domain, solution, source type) narrow further; they never widen.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg import sql

from vital_pipelines.db.connection import use_vector_types
from vital_pipelines.knowledge.embedding import Embedder

RRF_K = 60
LEXICAL_CUTOFF = 0.5  # of the best lexical score
SEARCH_MODES = ("hybrid", "vector", "text")


@dataclass(frozen=True)
class SearchFilters:
    """Narrow a search: the owning tenant's slug, visibility levels, domain, a solution's code, a source type."""

    tenant: str | None = None
    visibility: tuple[str, ...] = ()
    domain: str | None = None
    solution: str | None = None
    source_type: str | None = None


@dataclass(frozen=True)
class ChunkHit:
    document: str
    title: str
    heading_path: tuple[str, ...]
    content: str
    similarity: float
    score: float
    chunk_index: int = 0


@dataclass(frozen=True)
class AgentHit:
    slug: str
    name: str
    tagline: str | None
    similarity: float


def embed_query(embedder: Embedder, query: str) -> np.ndarray:
    return embedder.encode([" ".join(query.split())])[0]


@contextmanager
def acting_as(conn: psycopg.Connection, user_id: str) -> Iterator[psycopg.Connection]:
    """A transaction in which every statement runs as `authenticated` with `user_id`'s JWT claims, so row-level
    security answers for that user. The connection's own role must be allowed to switch (vital_search locally,
    `authenticator` on Supabase); `ValueError` when `user_id` is not a UUID."""
    subject = str(uuid.UUID(str(user_id)))
    with conn.transaction():
        conn.execute("set local role authenticated")
        conn.execute("select set_config('request.jwt.claims', %s, true)",
                     (json.dumps({"sub": subject, "role": "authenticated"}),))
        yield conn


def _filter_sql(filters: SearchFilters) -> tuple[sql.Composable, dict]:
    clauses: list[sql.Composable] = [sql.SQL("s.deleted_at is null")]
    params: dict = {}
    if filters.tenant:
        clauses.append(sql.SQL("s.tenant_id = (select id from tenants where slug = %(tenant)s)"))
        params["tenant"] = filters.tenant
    if filters.visibility:
        clauses.append(sql.SQL("s.visibility::text = any(%(visibility)s)"))
        params["visibility"] = list(filters.visibility)
    if filters.domain:
        clauses.append(sql.SQL("lower(s.domain) = lower(%(domain)s)"))
        params["domain"] = filters.domain
    if filters.solution:
        clauses.append(sql.SQL("s.solution_id in (select id from solutions where code = %(solution)s)"))
        params["solution"] = filters.solution
    if filters.source_type:
        clauses.append(sql.SQL("s.source_type = %(source_type)s"))
        params["source_type"] = filters.source_type
    return sql.SQL(" and ").join(clauses), params


def _iterative_scans(conn) -> bool:
    """pgvector 0.8 and later can keep scanning the index until enough rows pass the filters (older servers, such
    as some hosted ones, cannot: their searches then rely on a larger ef_search)."""
    version = conn.execute("select extversion from pg_extension where extname = 'vector'").fetchone()
    parts = tuple(int(p) for p in version[0].split(".")[:2] if p.isdigit()) if version else ()
    return parts >= (0, 8)


def _vector_ranking(conn, vector, model_name: str, depth: int, where: sql.Composable, params: dict) -> list[uuid.UUID]:
    # Iterative scans keep walking the HNSW graph until enough rows pass the filters and row-level security.
    conn.execute(sql.SQL("set local hnsw.ef_search = {}").format(sql.Literal(min(1000, max(40, 2 * depth)))))
    if _iterative_scans(conn):
        conn.execute("set local hnsw.iterative_scan = relaxed_order")
    rows = conn.execute(sql.SQL(
        "with ranked as materialized ("
        " select c.id, c.embedding <=> %(q)s as distance from knowledge_chunks c"
        " join knowledge_sources s on s.id = c.source_id"
        " where c.embedding_model = %(model)s and {where} order by c.embedding <=> %(q)s limit %(depth)s)"
        " select id from ranked order by distance, id").format(where=where),
        {**params, "q": vector, "model": model_name, "depth": depth}).fetchall()
    return [row[0] for row in rows]


def _text_ranking(conn, query: str, depth: int, where: sql.Composable, params: dict) -> list[uuid.UUID]:
    """Chunks holding the query's terms, ranked by the summed rarity (BM25 idf) of the terms each holds."""
    rows = conn.execute(sql.SQL(
        "with terms as (select distinct t.lexeme, quote_literal(t.lexeme)::tsquery as query"
        "  from unnest(to_tsvector('english', %(text)s)) t),"
        " corpus as (select count(*)::float8 as n from knowledge_chunks),"
        " weighted as (select terms.query, ln(1 + (corpus.n - df.n + 0.5) / (df.n + 0.5)) as idf"
        "  from terms, corpus, lateral (select count(*)::float8 as n from knowledge_chunks k"
        "   where k.search_vector @@ terms.query) df where df.n > 0)"
        " select c.id, sum(w.idf) from weighted w join knowledge_chunks c on c.search_vector @@ w.query"
        " join knowledge_sources s on s.id = c.source_id where {where}"
        " group by c.id order by sum(w.idf) desc, c.id limit %(depth)s").format(where=where),
        {**params, "text": query, "depth": depth}).fetchall()
    # A chunk that holds only the query's common words is no lexical evidence: it would otherwise add a second
    # vote to chunks the vector ranking already placed, crowding out the one chunk that holds the rare term.
    best = rows[0][1] if rows else 0.0
    return [chunk for chunk, score in rows if score >= LEXICAL_CUTOFF * best]


def fuse(rankings: list[list[uuid.UUID]], k: int = RRF_K) -> list[tuple[uuid.UUID, float]]:
    """Reciprocal rank fusion of best-first rankings: (id, score), best first; ties broken by first appearance."""
    scores: dict[uuid.UUID, float] = {}
    for ranking in rankings:
        for rank, chunk in enumerate(ranking, 1):
            scores[chunk] = scores.get(chunk, 0.0) + 1.0 / (k + rank)
    order = {chunk: n for n, chunk in enumerate(c for ranking in rankings for c in ranking)}
    return sorted(scores.items(), key=lambda item: (-item[1], order[item[0]]))


def search_chunks(conn: psycopg.Connection, query: str, vector: np.ndarray | None, model_name: str, *,
                  limit: int = 5, filters: SearchFilters | None = None, mode: str = "hybrid",
                  distinct_documents: bool = False) -> list[ChunkHit]:
    """The `limit` best chunks for `query` (its embedding `vector`), best first, among the rows this connection may
    read; `distinct_documents` keeps only each document's best chunk."""
    if mode not in SEARCH_MODES:
        raise ValueError(f"search mode must be one of {', '.join(SEARCH_MODES)}; got {mode!r}")
    use_vector_types(conn)
    where, params = _filter_sql(filters or SearchFilters())
    depth = max(40, 8 * limit)
    with conn.transaction():
        rankings = []
        if mode in ("hybrid", "vector") and vector is not None:
            rankings.append(_vector_ranking(conn, vector, model_name, depth, where, params))
        if mode in ("hybrid", "text") and query.strip():
            rankings.append(_text_ranking(conn, query, depth, where, params))
        fused = fuse(rankings)
        if not fused:
            return []
        ids = [chunk for chunk, _ in fused]
        rows = conn.execute(
            "select c.id, s.slug, s.title, c.heading_path, c.content, c.chunk_index, "
            " case when %(q)s::vector is null then 0 else 1 - (c.embedding <=> %(q)s::vector) end "
            "from knowledge_chunks c join knowledge_sources s on s.id = c.source_id where c.id = any(%(ids)s)",
            {"q": vector, "ids": ids}).fetchall()
    details = {row[0]: row[1:] for row in rows}
    hits: list[ChunkHit] = []
    seen: set[str] = set()
    for chunk, score in fused:
        slug, title, headings, content, index, similarity = details[chunk]
        if distinct_documents and slug in seen:
            continue
        seen.add(slug)
        hits.append(ChunkHit(slug, title, tuple(headings), content, float(similarity or 0.0), score, index))
        if len(hits) == limit:
            break
    return hits


def search_agents(conn: psycopg.Connection, vector: np.ndarray, model_name: str, *, limit: int = 3) -> list[AgentHit]:
    use_vector_types(conn)
    rows = conn.execute(
        "select slug, name, tagline, 1 - (profile_embedding <=> %(q)s) from agents "
        "where deleted_at is null and embedding_model = %(model)s order by profile_embedding <=> %(q)s limit %(limit)s",
        {"q": vector, "model": model_name, "limit": limit}).fetchall()
    return [AgentHit(slug, name, tagline, float(sim)) for slug, name, tagline, sim in rows]
