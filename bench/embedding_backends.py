"""Benchmark: the embedding backends (ONNX Runtime fp32 and int8, OpenVINO bf16) against a bare fp32
`model.encode`, on the project's own corpus, for speed and for retrieval quality.

    .venv/bin/python bench/embedding_backends.py [--repeats 3]      # needs pip install -e '.[onnx,openvino]'

Speed: every chunk of assets/knowledge/ (as the pipeline chunks it) is embedded by the bare sentence-transformers
model (torch, fp32) and by each ONNX backend, in turn, `--repeats` times; chunks/s of the medians. Quality: the
corpus is synced into a fresh database with each backend and assets/evaluation/knowledge_questions.yaml is evaluated
in vector mode (the embedding alone) and in hybrid mode (what users get): document and passage recall@1 and @5.

The same ONNX export also runs through OpenVINO's CPU plugin as candidates that are not pipeline backends: in fp32,
and in int8 with activations too (ONNX Runtime's static QDQ quantisation of the MatMuls, calibrated on the corpus's first
128 chunks), timed after the backends in the same invocation: chunks/s against the bare fp32 median, and the
cosine of each vector to torch's.
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

BACKENDS = ("torch", "onnx", "onnx-int8", "openvino-bf16")


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


def _openvino_candidates(embedder: Embedder, texts: list[str], reference, bare_seconds: float, repeats: int) -> dict:
    """Speed and closeness to the fp32 vectors of OpenVINO runs of the ONNX export (see the module docstring)."""
    try:
        import openvino
    except ImportError:
        return {}
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from vital_pipelines.knowledge.embedding import _weights_revision
    from vital_pipelines.knowledge.onnx_backend import OnnxEncoder, exported_model, openvino_session

    fp32 = exported_model(Path(embedder.location), _weights_revision(embedder.location), "onnx")
    tokenizer = Embedder(backend="onnx").tokenizer
    inputs = OnnxEncoder(None, tokenizer, embedder.info.max_tokens, embedder.batch_size)

    class Calibration(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([inputs.feeds(texts[i:i + 16]) for i in range(0, min(128, len(texts)), 16)])

        def get_next(self):
            return next(self.batches, None)

    qdq = fp32.with_name("bench.int8-static-qdq.onnx")
    if not qdq.exists():
        quantize_static(str(fp32), str(qdq), Calibration(), quant_format=QuantFormat.QDQ, per_channel=True,
                        op_types_to_quantize=["MatMul"], activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    core = openvino.Core()
    found = {"cpu": core.get_property("CPU", "FULL_DEVICE_NAME"),
             "capabilities": core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")}
    for name, model, precision in (("openvino-fp32", fp32, "f32"), ("openvino-int8-static", qdq, None)):
        encoder = OnnxEncoder(openvino_session(model, precision), tokenizer, embedder.info.max_tokens,
                              embedder.batch_size)
        encoder.encode(texts[:32], embedder.info.dimension)
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            vectors = encoder.encode(texts, embedder.info.dimension)
            seconds.append(time.perf_counter() - started)
        cosine = (vectors * reference).sum(axis=1)
        median = statistics.median(seconds)
        found[name] = {"chunks_per_s": round(len(texts) / median, 1), "speed_vs_bare_fp32": round(bare_seconds / median, 2),
                       "cosine_to_fp32_min": round(float(cosine.min()), 4),
                       "cosine_to_fp32_mean": round(float(cosine.mean()), 4)}
    return found


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
    reference = embedders["torch"].encode(texts)
    result["openvino_candidates"] = _openvino_candidates(embedders["torch"], texts, reference,
                                                         statistics.median(seconds["torch"]), args.repeats)
    publish("embedding_backends", result)


if __name__ == "__main__":
    main()
