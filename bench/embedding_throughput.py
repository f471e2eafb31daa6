"""Benchmark: the knowledge pipeline's embedding throughput against a bare `model.encode` of the same chunks.

    .venv/bin/python bench/embedding_throughput.py [--repeats 2]

Chunks the corpus in assets/knowledge/, then in the same process alternates (1) a bare
`SentenceTransformer.encode` of exactly those chunk texts and (2) a full pipeline sync of the corpus into a
fresh throw-away database (extract, chunk, plan, embed, COPY into pgvector). Reports chunks/s and tokens/s of
the pipeline's embedding stage and of the whole sync, and the ratio to the bare encode (best of the repeats).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import conninfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vital_pipelines import config  # noqa: E402
from vital_pipelines.db import apply_schema, connect  # noqa: E402
from vital_pipelines.knowledge.chunking import chunk_blocks  # noqa: E402
from vital_pipelines.knowledge.documents import discover, extract  # noqa: E402
from vital_pipelines.knowledge.embedding import Embedder  # noqa: E402
from vital_pipelines.knowledge.store import sync_documents  # noqa: E402


def _database(admin: str, server: dict) -> tuple[str, str]:
    name = f"vital_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'create database "{name}" template vital_template')
    url = conninfo.make_conninfo(**{**server, "dbname": name})
    with connect(url) as conn:
        apply_schema(conn, config.SCHEMA_DIR)
    return name, url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    embedder = Embedder()
    documents = discover(config.KNOWLEDGE_DIR)
    texts = []
    for slug, path in documents.items():
        document = extract(path, slug)
        texts += [c.embed_text for c in chunk_blocks(document.title, document.blocks, count_tokens=embedder.count_tokens,
                                                     max_tokens=embedder.info.max_tokens)]
    tokens = sum(embedder.count_tokens(texts))
    embedder.model.encode(texts[:64], batch_size=embedder.batch_size)

    server = conninfo.conninfo_to_dict(config.database_url())
    admin = conninfo.make_conninfo(**{**server, "dbname": "postgres"})
    bare, stage, whole = [], [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        embedder.model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        bare.append(time.perf_counter() - started)
        name, url = _database(admin, server)
        try:
            report = sync_documents(lambda: connect(url), documents, embedder)
            assert report.total("embedded") == len(texts), (report.total("embedded"), len(texts))
            stage.append(report.embed_seconds)
            whole.append(report.seconds)
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'drop database "{name}" with (force)')

    def rates(seconds: float) -> dict:
        return {"seconds": round(seconds, 2), "chunks_per_s": round(len(texts) / seconds, 1),
                "tokens_per_s": round(tokens / seconds)}

    result = {
        "documents": len(documents), "chunks": len(texts), "tokens": tokens, "model": embedder.info.name,
        "bare_model_encode": rates(min(bare)),
        "pipeline_embedding_stage": rates(min(stage)),
        "pipeline_end_to_end": rates(min(whole)),
        "embedding_stage_vs_bare": round(min(bare) / min(stage), 3),
        "end_to_end_vs_bare": round(min(bare) / min(whole), 3),
    }
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "embedding_throughput.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
