"""One question's vector without torch: the model's BERT encoder run in numpy, for callers that embed a few short
texts and must answer quickly (the `search` command).

Importing sentence-transformers takes about 4 s, torch alone 1 s; the question itself costs milliseconds. So the
search command reads the same weights (safetensors) and the same tokenizer (tokenizers, `tokenizer.json`) and runs
the forward pass in numpy: embeddings, self-attention and feed-forward layers with their layer norms, mean pooling
over the tokens, L2 normalisation. It serves folders that hold exactly that (a BERT encoder, mean pooling,
normalisation: all-MiniLM-L6-v2 and its kind); `QueryEncoder.fits` says whether one does, and the full model is used
otherwise. tests/test_query_encoder.py holds its vectors to sentence-transformers' own.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

_ERF = np.frompyfunc(math.erf, 1, 1)


def _modules(folder: Path) -> list[str]:
    return [m.get("type", "").rsplit(".", 1)[-1] for m in json.loads((folder / "modules.json").read_text())]


class QueryEncoder:
    """Mean-pooled, normalised vectors of a sentence-transformers BERT folder, computed in numpy."""

    @staticmethod
    def fits(folder: Path) -> bool:
        try:
            settings = json.loads((folder / "config.json").read_text())
            pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
            return (settings.get("model_type") == "bert" and settings.get("hidden_act") == "gelu"
                    and settings.get("position_embedding_type", "absolute") == "absolute"
                    and _modules(folder) == ["Transformer", "Pooling", "Normalize"]
                    and pooling.get("pooling_mode_mean_tokens") and not pooling.get("pooling_mode_cls_token")
                    and not pooling.get("pooling_mode_max_tokens")
                    and (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file())
        except (OSError, ValueError, AttributeError):
            return False

    def __init__(self, folder: Path):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        settings = json.loads((folder / "config.json").read_text())
        max_tokens = int(json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"])
        self.heads = int(settings["num_attention_heads"])
        self.layers = int(settings["num_hidden_layers"])
        self.eps = float(settings.get("layer_norm_eps", 1e-12))
        self.weights = {name.removeprefix("bert."): value for name, value in
                        load_file(str(folder / "model.safetensors")).items()}
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.dimension = int(settings["hidden_size"])

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mean = x.mean(axis=-1, keepdims=True)
        variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(variance + self.eps) * self.weights[f"{name}.weight"] + self.weights[f"{name}.bias"]

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.weights[f"{name}.weight"].T + self.weights[f"{name}.bias"]

    def _encode_one(self, text: str) -> np.ndarray:
        encoding = self.tokenizer.encode(text)
        ids, types = np.array(encoding.ids), np.array(encoding.type_ids)
        w = self.weights
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:len(ids)]
             + w["embeddings.token_type_embeddings.weight"][types])
        x = self._norm(x, "embeddings.LayerNorm")
        width = x.shape[1] // self.heads
        for n in range(self.layers):
            layer = f"encoder.layer.{n}"
            q, k, v = (self._dense(x, f"{layer}.attention.self.{part}").reshape(len(ids), self.heads, width)
                       .transpose(1, 0, 2) for part in ("query", "key", "value"))
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(width)
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            context = (scores / scores.sum(axis=-1, keepdims=True)) @ v
            context = context.transpose(1, 0, 2).reshape(len(ids), -1)
            x = self._norm(x + self._dense(context, f"{layer}.attention.output.dense"), f"{layer}.attention.output.LayerNorm")
            hidden = self._dense(x, f"{layer}.intermediate.dense")
            hidden = 0.5 * hidden * (1.0 + _ERF(hidden / math.sqrt(2.0)).astype(np.float32))
            x = self._norm(x + self._dense(hidden, f"{layer}.output.dense"), f"{layer}.output.LayerNorm")
        pooled = x.mean(axis=0)
        return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._encode_one(text) for text in texts])
