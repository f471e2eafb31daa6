"""The ONNX Runtime and OpenVINO backends against the torch model they are exported from: same tokens, vectors within a small
angle, the export made once and cached, and the backend part of the model revision (so switching re-embeds)."""

from __future__ import annotations

import numpy as np
import pytest

from vital_pipelines.db import connect
from vital_pipelines.knowledge.documents import discover
from vital_pipelines.knowledge.embedding import Embedder
from vital_pipelines.knowledge.onnx_backend import EXPORT_VERSION, BackendUnavailable
from vital_pipelines.knowledge.store import sync_documents

TEXTS = ["What is IQWiG's role in the AMNOG benefit assessment?",
         "Signals arise from spontaneous reports, studies and the literature.",
         "Launch readiness", "pharmacovigilance " * 300]


def _computes_bf16() -> bool:
    import openvino

    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


# int8 kernels differ by CPU (VNNI, AMX, AVX2): measured 0.973-0.992 per vector for these texts on this project's
# machines, so the floor leaves room; what must hold everywhere is that each vector still points at its own text.
@pytest.mark.parametrize("backend, floor", [("onnx", 0.9999), ("onnx-int8", 0.95), ("openvino-bf16", 0.999)])
def test_onnx_backends_reproduce_the_torch_vectors(embedder, cache, backend, floor):
    onnx = Embedder(backend=backend, cache_dir=cache)
    assert onnx.info.revision == f"{embedder.info.revision}+{backend}.{EXPORT_VERSION}"
    assert (onnx.info.dimension, onnx.info.max_tokens) == (embedder.info.dimension, embedder.info.max_tokens)
    assert onnx.count_tokens(TEXTS) == embedder.count_tokens(TEXTS)
    if backend == "openvino-bf16" and not _computes_bf16():  # refused, not silently fp32 under a bf16 revision
        with pytest.raises(BackendUnavailable, match="does not compute bf16"):
            onnx.encode(TEXTS)
        return
    vectors, reference = onnx.encode(TEXTS), embedder.encode(TEXTS)
    assert vectors.dtype == np.float32 and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ reference.T
    assert similarity.diagonal().min() >= floor
    assert (similarity.argmax(axis=1) == np.arange(len(TEXTS))).all()


def test_the_export_is_made_once_and_kept(cache):
    first = Embedder(backend="onnx-int8", cache_dir=cache)
    first.encode(["warm"])
    files = {p: p.stat().st_mtime_ns for p in cache.rglob("*.onnx")}
    assert {p.name for p in files} == {"model.onnx", "model.int8.onnx"}
    Embedder(backend="onnx-int8", cache_dir=cache).encode(["again"])
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.onnx")} == files
    with pytest.raises(ValueError):
        Embedder(backend="tensorrt")


def test_switching_the_backend_re_embeds_the_corpus(fresh_url, tmp_path, embedder, cache):
    folder = tmp_path / "knowledge"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nSignals need validation.\n\n## B\n\nValidated signals are prioritised.\n")
    first = sync_documents(lambda: connect(fresh_url), discover(folder), embedder)
    again = sync_documents(lambda: connect(fresh_url), discover(folder), embedder)
    switched = sync_documents(lambda: connect(fresh_url), discover(folder), Embedder(backend="onnx-int8", cache_dir=cache))
    assert first.total("embedded") == 2 and again.total("embedded") == 0 and switched.total("embedded") == 2
    with connect(fresh_url) as conn:
        assert conn.execute("select distinct embedding_model_revision from knowledge_chunks").fetchall() == [
            (f"{embedder.info.revision}+onnx-int8.{EXPORT_VERSION}",)]
