"""Agent profiles as vectors: each live agent's name, tagline, description, capabilities and domains embedded into
`agents.profile_embedding`, refreshed only where the profile text (or the model) changed."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from vital_pipelines.db.connection import use_vector_types
from vital_pipelines.db.locks import lock_for_transaction, workbook_lock
from vital_pipelines.knowledge.embedding import Embedder, ModelInfo


@dataclass
class ProfileSync:
    embedded: int
    unchanged: int
    seconds: float = 0.0


def profile_text(name: str, tagline: str | None, description: str, domain: str, capabilities: list[str],
                 specializations: list[str], therapeutic_areas: list[str]) -> str:
    parts = [f"{name}. {tagline}." if tagline else f"{name}.", description.strip(),
             f"Domain: {domain.replace('_', ' ')}."]
    for label, values in (("Capabilities", capabilities), ("Specializations", specializations),
                          ("Therapeutic areas", therapeutic_areas)):
        if values:
            parts.append(f"{label}: {', '.join(values)}.")
    return " ".join(parts)


def profile_sha256(text: str, model: ModelInfo) -> str:
    """Hash of the embedded text and the model revision that embedded it."""
    return hashlib.sha256(f"{model.name}@{model.revision}\n{text}".encode("utf-8")).hexdigest()


_PROFILE_QUERY = ("select id, name, tagline, description, domain_expertise::text, capabilities, specializations, "
                  "therapeutic_areas, profile_sha256, embedding_model from agents where deleted_at is null order by id")


def _stale(rows, model: ModelInfo) -> list[tuple]:
    stale = []
    for agent_id, name, tagline, description, domain, caps, specs, areas, stored_sha, stored_model in rows:
        text = profile_text(name, tagline, description, domain, caps, specs, areas)
        sha = profile_sha256(text, model)
        if sha != stored_sha or stored_model != model.name:
            stale.append((agent_id, text, sha))
    return stale


def embed_agent_profiles(conn: psycopg.Connection, embedder: Embedder) -> ProfileSync:
    """Embed the profiles of live agents whose text or model changed. The embedding runs outside any transaction
    (no session sits idle in one, holding locks, while the model works); the write then takes the agents load's
    lock and stores only the vectors whose profile text is still the one embedded."""
    started = time.perf_counter()
    use_vector_types(conn)
    model = embedder.info
    with conn.transaction():
        rows = conn.execute(_PROFILE_QUERY).fetchall()
    stale = _stale(rows, model)
    if not stale:
        return ProfileSync(embedded=0, unchanged=len(rows), seconds=time.perf_counter() - started)
    vectors = dict(zip((sha for _, _, sha in stale), embedder.encode([text for _, text, _ in stale])))
    with conn.transaction():
        # The agents' own load rewrites the profile text: one at a time.
        lock_for_transaction(conn, workbook_lock("agents.xlsx"))
        current = _stale(conn.execute(_PROFILE_QUERY).fetchall(), model)
        writes = [(agent_id, sha) for agent_id, _, sha in current if sha in vectors]
        with conn.cursor() as cursor:
            # The table has a column for the model's name; revision and dimension go beside it in metadata.
            provenance = Jsonb({"profile_embedding": {"model": model.name, "revision": model.revision,
                                                      "dimension": model.dimension}})
            cursor.executemany(
                "update agents set profile_embedding = %s, embedding_model = %s, profile_sha256 = %s, "
                "embedded_at = now(), metadata = metadata || %s where id = %s",
                [(vectors[sha], model.name, sha, provenance, agent_id) for agent_id, sha in writes])
    return ProfileSync(embedded=len(writes), unchanged=len(rows) - len(stale), seconds=time.perf_counter() - started)
