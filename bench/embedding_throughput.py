"""Benchmark: the knowledge pipeline's embedding throughput against a bare `model.encode` of the same chunks.

    .venv/bin/python bench/embedding_throughput.py [--repeats 2]

Chunks the corpus in assets/knowledge/, then in the same process alternates (1) a bare
`SentenceTransformer.encode` of exactly those chunk texts and (2) a full pipeline sync of the corpus into a
fresh throw-away database (extract, chunk, plan, embed, COPY into pgvector). Reports chunks/s and tokens/s of
the pipeline's embedding stage and of the whole sync, and the ratio to the bare encode (best of the repeats).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _results import publish  # noqa: E402
from vital_pipelines import config  # noqa: E402
from vital_pipelines.db import connect  # noqa: E402
from vital_pipelines.db.scratch import loader_url, scratch_database  # noqa: E402
from vital_pipelines.knowledge.chunking import chunk_blocks  # noqa: E402
from vital_pipelines.knowledge.documents import discover, extract  # noqa: E402
from vital_pipelines.knowledge.embedding import Embedder  # noqa: E402
from vital_pipelines.knowledge.store import sync_documents  # noqa: E402


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

    bare, stage, whole = [], [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        embedder.model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True, convert_to_numpy=True)
        bare.append(time.perf_counter() - started)
        with scratch_database(config.owner_database_url(), "vital_bench", schema_dir=config.SCHEMA_DIR) as url:
            report = sync_documents(lambda: connect(loader_url(url)), documents, embedder)
            assert report.total("embedded") == len(texts), (report.total("embedded"), len(texts))
            stage.append(report.embed_seconds)
            whole.append(report.seconds)

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
    publish("embedding_throughput", result)


if __name__ == "__main__":
    main()
