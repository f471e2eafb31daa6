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
import math
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
BM25_K1 = 1.2
BM25_B = 0.75
TERM_BATCH_CHUNKS = 250  # chunks looked up at once, at most, unless one term alone holds more
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


def _filter_params(filters: SearchFilters) -> dict:
    return {"tenant": filters.tenant, "visibility": list(filters.visibility) or None, "domain": filters.domain,
            "solution": filters.solution, "source_type": filters.source_type}


# The filters over a live source `s`, as the lexical candidates apply them too (schema/27).
_SOURCE_MATCHES = sql.SQL("private.knowledge_source_matches(s, %(tenant)s::text, %(visibility)s::text[], "
                          "%(domain)s::text, %(solution)s::text, %(source_type)s::text)")


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


def _term_statistics(conn, query: str) -> tuple[dict[str, float], dict[str, float], float]:
    """The query's terms with their BM25 idf and their chunk counts over the chunks this connection may read, and
    the mean chunk length, in one round trip: read from the statistics kept with the chunks (schema/27), so the cost
    does not depend on the corpus."""
    terms, chunks, length, counts = conn.execute(
        "with query as (select coalesce(tsvector_to_array(private.knowledge_text_vector(%s)), '{}') as terms)"
        " select query.terms, corpus.chunks, corpus.length, coalesce(("
        "   select jsonb_object_agg(lexeme, n) from (select lexeme, sum(chunk_count)::float8 as n"
        "   from knowledge_lexicon where lexeme = any(query.terms) group by lexeme) held), '{}')"
        " from query, (select coalesce(sum(chunk_count), 0)::float8 as chunks,"
        "   coalesce(sum(total_length), 0)::float8 as length from knowledge_corpus) corpus", (query,)).fetchone()
    if not terms:
        return {}, {}, 1.0
    holding = {lexeme: float(n) for lexeme, n in counts.items() if n > 0}
    weights = {lexeme: math.log(1 + (chunks - n + 0.5) / (n + 0.5)) for lexeme, n in holding.items()}
    return weights, holding, (length / chunks if chunks else 1.0)


def _score_chunks(conn, terms: list[str], weights: dict[str, float], mean_length: float, holding: list[str],
                  lacking: list[str], filters: SearchFilters,
                  also: list[str] | None = None) -> list[tuple[uuid.UUID, float]]:
    """BM25 scores over all `terms` of the chunks that hold one of `holding`, one of `also` where given, and none of
    `lacking` (found through the GIN index); each chunk's term frequencies are read from its own search vector, cut
    down to the query's terms. The chunks come from `private.knowledge_lexical_candidates`, which applies the read
    rule and the filters once per tenant and visibility and lets the GIN index do the matching (see schema/27)."""
    candidates = " | ".join(_quoted(t) for t in holding)
    if also:
        candidates = f"({candidates}) & ({' | '.join(_quoted(t) for t in also)})"
    if lacking:
        candidates = f"({candidates}) & !({' | '.join(_quoted(t) for t in lacking)})"
    rows = conn.execute(
        "with candidates as materialized (select * from private.knowledge_lexical_candidates("
        "  %(candidates)s::tsquery, %(tenant)s, %(visibility)s, %(domain)s, %(solution)s, %(source_type)s))"
        " select c.id, round(sum(w.idf * greatest(1, cardinality(t.positions)) * (%(k1)s + 1)"
        "  / (greatest(1, cardinality(t.positions)) + %(k1)s * (1 - %(b)s + %(b)s * coalesce(c.lexical_length, 0)"
        "  / %(avgdl)s)))::numeric, 9)"
        " from candidates c, unnest(ts_filter(setweight(c.search_vector, 'A', %(terms)s), '{a}')) t"
        "  join unnest(%(terms)s::text[], %(idfs)s::float8[]) w(lexeme, idf) on w.lexeme = t.lexeme"
        " group by c.id",
        {**_filter_params(filters), "terms": terms, "idfs": [weights[t] for t in terms], "candidates": candidates,
         "k1": BM25_K1, "b": BM25_B, "avgdl": max(mean_length, 1.0)}).fetchall()
    return [(chunk, float(score)) for chunk, score in rows]


def _quoted(term: str) -> str:
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def _text_ranking(conn, query: str, depth: int, filters: SearchFilters) -> list[uuid.UUID]:
    """Chunks holding the query's terms, ranked by BM25 (rarity of each term, its frequency in the chunk, the
    chunk's length), ties broken by id.

    Cost follows the matches of the query's rarest terms, not the corpus: terms are looked up rarest first, a batch
    at a time (about TERM_BATCH_CHUNKS chunks), and each chunk found is scored over every query term. A commoner
    term is looked up only while fewer than `depth` chunks were found and the chunks holding none of the rarer terms
    could still reach the cut (a chunk's score is at most the sum of (k1 + 1) * idf over the terms it holds). Where
    one rare term alone is held by more chunks than a batch, the chunks that hold it with the next rarest term are
    taken first, then those that hold it with any other query term. So a chunk holding only common words is scored only when nothing rarer is found: it is no lexical
    evidence (see the cut below)."""
    weights, holding, mean_length = _term_statistics(conn, query)
    terms = sorted(weights, key=lambda t: (-weights[t], t))
    scores: dict[uuid.UUID, float] = {}
    looked_up: list[str] = []
    while len(looked_up) < len(terms):
        batch = [terms[len(looked_up)]]
        for term in terms[len(looked_up) + 1:]:
            if sum(holding[t] for t in batch) + holding[term] > TERM_BATCH_CHUNKS:
                break
            batch.append(term)
        rest = terms[len(looked_up) + len(batch):]
        found: list[tuple[uuid.UUID, float]] = []
        if rest and sum(holding[t] for t in batch) > TERM_BATCH_CHUNKS:
            for narrowing in ([rest[0]], rest) if len(rest) > 1 else (rest,):
                found = _score_chunks(conn, terms, weights, mean_length, batch, looked_up, filters, also=narrowing)
                if len(found) >= depth:
                    break
        if len(found) < depth:
            found = _score_chunks(conn, terms, weights, mean_length, batch, looked_up, filters)
        scores.update(found)
        looked_up += batch
        best = max(scores.values(), default=0.0)
        if len(scores) >= depth or (best and sum((BM25_K1 + 1) * weights[t] for t in rest) < LEXICAL_CUTOFF * best):
            break
    # A chunk that holds only the query's common words is no lexical evidence: it would otherwise add a second
    # vote to chunks the vector ranking already placed, crowding out the one chunk that holds the rare term.
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:depth]
    best = ranked[0][1] if ranked else 0.0
    return [chunk for chunk, score in ranked if score >= LEXICAL_CUTOFF * best]


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
    where, params = _SOURCE_MATCHES, _filter_params(filters or SearchFilters())
    depth = max(40, 8 * limit)
    with conn.transaction():
        # A search is a handful of small index lookups; compiling them with JIT took longer than running them.
        conn.execute("set local jit = off")
        rankings = []
        if mode in ("hybrid", "vector") and vector is not None:
            rankings.append(_vector_ranking(conn, vector, model_name, depth, where, params))
        if mode in ("hybrid", "text") and query.strip():
            rankings.append(_text_ranking(conn, query, depth, filters or SearchFilters()))
        fused = fuse(rankings)
        if not fused:
            return []
        # Only the chunks that can be shown are read whole: the first `limit`, or with distinct documents as many
        # as it takes (every fused one at most).
        ids = [chunk for chunk, _ in (fused if distinct_documents else fused[:limit])]
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
