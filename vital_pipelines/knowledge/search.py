"""Semantic search over the stored vectors: the closest knowledge chunks and the best-matching agents."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import psycopg

from vital_pipelines.db.connection import use_vector_types
from vital_pipelines.knowledge.embedding import Embedder


@dataclass(frozen=True)
class ChunkHit:
    document: str
    title: str
    heading_path: tuple[str, ...]
    content: str
    similarity: float


@dataclass(frozen=True)
class AgentHit:
    slug: str
    name: str
    tagline: str | None
    similarity: float


def embed_query(embedder: Embedder, query: str) -> np.ndarray:
    return embedder.encode([" ".join(query.split())])[0]


def search_chunks(conn: psycopg.Connection, vector: np.ndarray, model_name: str, *, limit: int = 5) -> list[ChunkHit]:
    use_vector_types(conn)
    rows = conn.execute(
        "select s.slug, s.title, c.heading_path, c.content, 1 - (c.embedding <=> %(q)s) "
        "from knowledge_chunks c join knowledge_sources s on s.id = c.source_id "
        "where c.embedding_model = %(model)s and s.deleted_at is null "
        "order by c.embedding <=> %(q)s limit %(limit)s",
        {"q": vector, "model": model_name, "limit": limit}).fetchall()
    return [ChunkHit(slug, title, tuple(headings), content, float(sim)) for slug, title, headings, content, sim in rows]


def search_agents(conn: psycopg.Connection, vector: np.ndarray, model_name: str, *, limit: int = 3) -> list[AgentHit]:
    use_vector_types(conn)
    rows = conn.execute(
        "select slug, name, tagline, 1 - (profile_embedding <=> %(q)s) from agents "
        "where deleted_at is null and embedding_model = %(model)s order by profile_embedding <=> %(q)s limit %(limit)s",
        {"q": vector, "model": model_name, "limit": limit}).fetchall()
    return [AgentHit(slug, name, tagline, float(sim)) for slug, name, tagline, sim in rows]
