"""Benchmark: knowledge search latency as the corpus grows (2k, 20k, 200k chunks by default), hybrid against
vector-only against text-only, in turn, in one run.

    .venv/bin/python bench/search_scale.py [--sizes 2000,20000,200000] [--queries 40]

The corpus is synthetic but made of the project's own prose: each chunk is ~12 sentences drawn (seeded) from the
documents in assets/knowledge/, so term frequencies look like the real ones; every vector is a random unit vector
(the lexical side needs none, and HNSW's cost does not depend on what the vectors mean). The corpus grows in place
(2k, then 18k more, ...); the HNSW index is rebuilt after each growth, as a backfill would. The queries are the
labelled questions of assets/evaluation/knowledge_questions.yaml, each run once to warm up and then timed, as the
loader (the operator's search) and as a signed-in member of the platform tenant (row-level security deciding).
Reported per size: p50 and p95 in milliseconds per mode and caller, and how each grows.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import statistics
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _results import publish  # noqa: E402
from vital_pipelines import config  # noqa: E402
from vital_pipelines.db import connect  # noqa: E402
from vital_pipelines.db.connection import use_vector_types  # noqa: E402
from vital_pipelines.db.scratch import loader_url, scratch_database, search_url  # noqa: E402
from vital_pipelines.knowledge.search import acting_as, search_chunks  # noqa: E402

PLATFORM_TENANT = "00000000-0000-0000-0000-000000000001"
MODEL = "bench-random"
DIMENSION = 384
CHUNKS_PER_DOCUMENT = 50
SENTENCES_PER_CHUNK = 12


def _sentences() -> list[str]:
    found: list[str] = []
    for path in sorted(config.KNOWLEDGE_DIR.glob("*")):
        if path.suffix not in (".md", ".txt"):
            continue
        text = re.sub(r"^---.*?---", "", path.read_text(encoding="utf-8"), flags=re.S)
        for line in text.splitlines():
            if line.startswith(("#", "|", "---")):
                continue
            found += [s.strip() for s in re.split(r"(?<=[.!?])\s+", line) if len(s.split()) >= 4]
    return found


def _grow(url: str, start: int, stop: int, sentences: list[str], rng: random.Random, vectors: np.random.Generator):
    with connect(url) as conn:
        use_vector_types(conn)
        conn.execute("drop index if exists idx_knowledge_chunks_embedding_hnsw")
        for first in range(start, stop, CHUNKS_PER_DOCUMENT):
            source = uuid.uuid5(uuid.NAMESPACE_URL, f"bench-source-{first}")
            conn.execute("insert into knowledge_sources (id, tenant_id, slug, title, source_type, visibility, status) "
                         "values (%s, %s, %s, %s, 'text', 'public', 'synced')",
                         (source, PLATFORM_TENANT, f"bench-{first}", f"Bench document {first}"))
            conn.execute("create temp table if not exists stage (like knowledge_chunks including defaults)")
            with conn.cursor().copy(
                    "copy stage (tenant_id, source_id, chunk_index, heading_path, content, token_count, "
                    "content_sha256, embedding, embedding_model, embedding_dimension) from stdin") as copy:
                copy.set_types(["uuid", "uuid", "int4", "text[]", "text", "int4", "text", "vector", "text", "int4"])
                for index in range(min(CHUNKS_PER_DOCUMENT, stop - first)):
                    content = " ".join(rng.choice(sentences) for _ in range(SENTENCES_PER_CHUNK))
                    vector = vectors.standard_normal(DIMENSION).astype(np.float32)
                    copy.write_row((uuid.UUID(PLATFORM_TENANT), source, index, [f"Section {index}"], content,
                                    len(content.split()), hashlib.sha256(content.encode()).hexdigest(),
                                    vector / np.linalg.norm(vector), MODEL, DIMENSION))
            conn.execute("insert into knowledge_chunks (tenant_id, source_id, chunk_index, heading_path, content, "
                         "token_count, content_sha256, embedding, embedding_model, embedding_dimension) "
                         "select tenant_id, source_id, chunk_index, heading_path, content, token_count, content_sha256, "
                         "embedding, embedding_model, embedding_dimension from stage")
            conn.execute("truncate stage")
            conn.commit()
        conn.execute("set maintenance_work_mem = '1GB'")
        conn.execute("create index idx_knowledge_chunks_embedding_hnsw on knowledge_chunks "
                     "using hnsw (embedding vector_cosine_ops)")
        conn.execute("update knowledge_sources set chunk_count = (select count(*) from knowledge_chunks c "
                      "where c.source_id = knowledge_sources.id)")
        conn.commit()
    with connect(url, autocommit=True) as conn:
        conn.execute("vacuum analyze knowledge_chunks")
        conn.execute("vacuum analyze knowledge_lexicon")
        conn.execute("analyze knowledge_sources")


def _time(conn, questions: list[str], query_vectors: list[np.ndarray], mode: str, user: str | None) -> list[float]:
    timings = []
    for question, vector in zip(questions, query_vectors):
        for attempt in range(2):
            started = time.perf_counter()
            if user is None:
                search_chunks(conn, question, vector, MODEL, limit=5, mode=mode)
            else:
                with acting_as(conn, user):
                    search_chunks(conn, question, vector, MODEL, limit=5, mode=mode)
            if attempt:
                timings.append((time.perf_counter() - started) * 1000)
    return timings


def _percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"p50_ms": round(statistics.median(ordered), 1),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2000,20000,200000")
    parser.add_argument("--queries", type=int, default=40)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    questions = [q["question"] for q in yaml.safe_load(
        (ROOT / "assets" / "evaluation" / "knowledge_questions.yaml").read_text())["questions"]][:args.queries]
    sentences = _sentences()
    rng, vectors = random.Random(7), np.random.default_rng(7)
    query_vectors = [v / np.linalg.norm(v) for v in vectors.standard_normal((len(questions), DIMENSION)).astype(np.float32)]
    result: dict = {"queries": len(questions), "sentences": len(sentences), "sizes": {}}
    with scratch_database(config.owner_database_url(), "vital_bench", schema_dir=config.SCHEMA_DIR) as url:
        user = str(uuid.uuid4())
        with connect(url) as conn:
            conn.execute("insert into auth.users (id, email) values (%s, 'bench@example.com')", (user,))
            conn.execute("insert into tenant_members (tenant_id, user_id, role) values (%s, %s, 'member')",
                         (PLATFORM_TENANT, user))
            conn.commit()
        built = 0
        for size in sizes:
            started = time.perf_counter()
            _grow(url, built, size, sentences, rng, vectors)
            built = size
            figures: dict = {"build_s": round(time.perf_counter() - started, 1)}
            with connect(loader_url(url)) as loader, connect(search_url(url)) as searcher:
                for caller, conn, who in (("loader", loader, None), ("member", searcher, user)):
                    for mode in ("vector", "hybrid", "text"):
                        figures[f"{caller}_{mode}"] = _percentiles(_time(conn, questions, query_vectors, mode, who))
            for caller in ("loader", "member"):
                figures[f"{caller}_hybrid_over_vector_p50"] = round(
                    figures[f"{caller}_hybrid"]["p50_ms"] / max(figures[f"{caller}_vector"]["p50_ms"], 0.01), 2)
            result["sizes"][str(size)] = figures
            print(size, figures, flush=True)
    publish("search_scale", result)


if __name__ == "__main__":
    main()
