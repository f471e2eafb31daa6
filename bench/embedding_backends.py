"""Benchmark: the embedding backends (ONNX Runtime fp32 and int8) against a bare fp32 `model.encode`, on the
project's own corpus, for speed and for retrieval quality.

    .venv/bin/python bench/embedding_backends.py [--repeats 3]      # needs the onnx extra: pip install -e '.[onnx]'

Speed: every chunk of assets/knowledge/ (as the pipeline chunks it) is embedded by the bare sentence-transformers
model (torch, fp32) and by each ONNX backend, in turn, `--repeats` times; chunks/s of the medians. Quality: the
corpus is synced into a fresh database with each backend and assets/evaluation/knowledge_questions.yaml is evaluated
in vector mode (the embedding alone) and in hybrid mode (what users get): document and passage recall@1 and @5.
"""

from __future__ import annotations

import argparse
import statistics
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
from vital_pipelines.knowledge.evaluation import evaluate, load_questions  # noqa: E402
from vital_pipelines.knowledge.store import sync_documents  # noqa: E402

BACKENDS = ("torch", "onnx", "onnx-int8")


def _chunk_texts(embedder: Embedder, documents: dict[str, Path]) -> list[str]:
    texts = []
    for slug, path in documents.items():
        document = extract(path, slug)
        texts += [c.embed_text for c in chunk_blocks(document.title, document.blocks,
                                                     count_tokens=embedder.count_tokens,
                                                     max_tokens=embedder.info.max_tokens)]
    return texts


def _quality(embedder: Embedder, documents: dict[str, Path], questions) -> dict:
    with scratch_database(config.owner_database_url(), "vital_bench", schema_dir=config.SCHEMA_DIR) as url:
        sync_documents(lambda: connect(loader_url(url)), documents, embedder)
        scores = {}
        with connect(url) as conn:
            for mode in ("vector", "hybrid"):
                overall = evaluate(conn, embedder, questions, mode=mode).overall
                scores[mode] = {"document@1": round(overall.document_at_1, 3),
                                "document@5": round(overall.document_at_5, 3),
                                "passage@1": round(overall.passage_at_1, 3),
                                "passage@5": round(overall.passage_at_5, 3)}
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    documents = discover(config.KNOWLEDGE_DIR)
    questions = load_questions(config.ASSETS_DIR / "evaluation" / "knowledge_questions.yaml")
    embedders = {name: Embedder(backend=name) for name in BACKENDS}
    texts = _chunk_texts(embedders["torch"], documents)
    bare = embedders["torch"].model

    def run(name: str) -> None:
        if name == "torch":  # the bare library call, as a user of sentence-transformers would make it
            bare.encode(texts, batch_size=embedders["torch"].batch_size, normalize_embeddings=True,
                        convert_to_numpy=True, show_progress_bar=False)
        else:
            embedders[name].encode(texts)

    for name in BACKENDS:  # warm-up: loads weights, exports and quantises on first use
        embedders[name].encode(texts[:32])
    seconds: dict[str, list[float]] = {name: [] for name in BACKENDS}
    for _ in range(args.repeats):
        for name in BACKENDS:
            started = time.perf_counter()
            run(name)
            seconds[name].append(time.perf_counter() - started)
    result = {"chunks": len(texts), "questions": len(questions), "backends": {}}
    for name in BACKENDS:
        median = statistics.median(seconds[name])
        result["backends"][name] = {
            "seconds": round(median, 2), "chunks_per_s": round(len(texts) / median, 1),
            "speed_vs_bare_fp32": round(statistics.median(seconds["torch"]) / median, 2),
            "revision": embedders[name].info.revision,
            "retrieval": _quality(embedders[name], documents, questions),
        }
    publish("embedding_backends", result)


if __name__ == "__main__":
    main()
