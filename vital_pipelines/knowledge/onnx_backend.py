"""ONNX backends for the embedding model: exported once from the model folder's own weights (offline, with torch's
ONNX exporter), cached on disk, then run without torch, by ONNX Runtime in fp32 or int8 (dynamic quantisation), or by
OpenVINO's CPU plugin in bf16 on CPUs that compute bf16 (AMX, AVX-512 BF16): there the matrix multiplications run
at twice fp32's rate, with vectors within 1e-4 of cosine of fp32's (see bench/embedding_backends.py).

Quantisation is applied to the matrix multiplications only, per output channel, with signed weights in 7 bits:
quantising the embedding tables too (ONNX Runtime's default) cost a tenth of the cosine similarity to the fp32
vectors on this model (0.93), MatMul-only per-channel keeps 0.99 (see bench/embedding_backends.py). The 7-bit range
(`reduce_range`) is ONNX Runtime's remedy for CPUs without VNNI, whose u8×s8 kernels saturate 16-bit sums: full 8-bit
weights gave 0.987 on one machine and 0.973 on another for the same text; 7 bits cost 0.001 where VNNI is present.
Pooling is the model's mean pooling over the attention mask, then L2 normalisation, as sentence-transformers does.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

BACKENDS = ("torch", "onnx", "onnx-int8", "openvino-bf16")
EXPORT_VERSION = "2"  # bump when the export or the quantisation recipe changes: it is part of the model revision
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class BackendUnavailable(RuntimeError):
    """The backend cannot run this model (its pooling, a missing package); the message says why."""


def default_cache_dir() -> Path:
    from vital_pipelines import config

    return Path(os.environ.get("VITAL_MODEL_CACHE") or config.PROJECT_ROOT / ".models")


def _check_pooling(folder: Path) -> None:
    pooling = folder / "1_Pooling" / "config.json"
    if pooling.exists():
        settings = json.loads(pooling.read_text(encoding="utf-8"))
        if not settings.get("pooling_mode_mean_tokens"):
            raise BackendUnavailable(f"the ONNX backend implements mean pooling; {folder.name} pools otherwise: use "
                                     f"the torch backend")


def _export_fp32(folder: Path, target: Path) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)

    class Encoder(torch.nn.Module):
        def __init__(self, transformer):
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                    token_type_ids=token_type_ids).last_hidden_state

    sample = model.tokenizer(["an example sentence", "another"], padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.onnx.export(Encoder(model[0].auto_model.eval()), tuple(sample[name] for name in _INPUTS), str(target),
                          input_names=list(_INPUTS), output_names=["last_hidden_state"],
                          dynamic_axes={name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "last_hidden_state")},
                          opset_version=17, dynamo=False)


def exported_model(folder: Path, revision: str, backend: str, cache_dir: Path | None = None) -> Path:
    """The ONNX file for `backend`, exported (and quantised) on first use and kept under the cache folder, keyed by
    the weights' revision; written to a temporary name and renamed, so a crash leaves no half file."""
    if backend not in BACKENDS[1:]:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS[1:])}; got {backend!r}")
    _check_pooling(folder)
    target_dir = (cache_dir or default_cache_dir()) / f"{folder.name}-{revision[:16]}-v{EXPORT_VERSION}"
    target_dir.mkdir(parents=True, exist_ok=True)
    fp32 = target_dir / "model.onnx"
    if not fp32.exists():
        with tempfile.TemporaryDirectory(dir=target_dir) as scratch:
            partial = Path(scratch) / "model.onnx"
            _export_fp32(folder, partial)
            os.replace(partial, fp32)
    if backend in ("onnx", "openvino-bf16"):
        return fp32
    int8 = target_dir / "model.int8.onnx"
    if not int8.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with tempfile.TemporaryDirectory(dir=target_dir) as scratch:
            partial = Path(scratch) / "model.int8.onnx"
            quantize_dynamic(str(fp32), str(partial), op_types_to_quantize=["MatMul"], per_channel=True,
                             reduce_range=True, weight_type=QuantType.QInt8)
            os.replace(partial, int8)
    return int8


def onnx_runtime_session(model_file: Path):
    """An ONNX Runtime session on the CPU, one intra-op thread per core."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise BackendUnavailable("the ONNX backend needs the `onnx` extra: pip install -e '.[onnx]'") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, os.cpu_count() or 1)
    return ort.InferenceSession(str(model_file), sess_options=options, providers=["CPUExecutionProvider"])


class _CompiledModel:
    """An OpenVINO compiled model answering the one call `OnnxEncoder` makes of an ONNX Runtime session."""

    def __init__(self, compiled):
        self.compiled = compiled

    def run(self, _outputs, inputs: dict) -> list:
        return [self.compiled(inputs)[0]]


def openvino_session(model_file: Path, precision: str | None = "bf16") -> _CompiledModel:
    """`model_file` compiled by OpenVINO for the CPU with `precision` ("bf16", "f32", or None for the plugin's
    choice); bf16 is refused on a CPU that would compute it in fp32 (the revision recorded with each vector says
    bf16)."""
    try:
        import openvino
    except ImportError:
        raise BackendUnavailable("the openvino-bf16 backend needs the `openvino` extra: "
                                 "pip install -e '.[openvino]'") from None
    core = openvino.Core()
    if precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        raise BackendUnavailable(f"this CPU ({core.get_property('CPU', 'FULL_DEVICE_NAME')}) does not compute bf16; "
                                 "use the onnx-int8 or torch backend")
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": max(1, os.cpu_count() or 1),
              **({"INFERENCE_PRECISION_HINT": precision} if precision else {})}
    return _CompiledModel(core.compile_model(core.read_model(str(model_file)), "CPU", config))


class OnnxEncoder:
    """Mean-pooled, L2-normalised sentence vectors from an exported model, run by `session` (ONNX Runtime's, or
    OpenVINO's through `openvino_session`)."""

    def __init__(self, session, tokenizer, max_tokens: int, batch_size: int):
        self.session = session
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.batch_size = batch_size

    def feeds(self, texts: list[str]) -> dict:
        """The model's inputs for `texts`, padded to the longest."""
        encoded = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="np")
        found = {name: encoded[name].astype(np.int64) for name in _INPUTS if name in encoded}
        found.setdefault("token_type_ids", np.zeros_like(found["input_ids"]))
        return found

    def encode(self, texts: list[str], dimension: int) -> np.ndarray:
        vectors = np.zeros((len(texts), dimension), dtype=np.float32)
        # Similar lengths batched together: less padding to compute.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            feeds = self.feeds([texts[i] for i in batch])
            hidden = self.session.run(None, feeds)[0]
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            vectors[batch] = pooled
        return vectors
