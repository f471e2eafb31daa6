"""The embedding model (loaded once per process) and the folder of knowledge documents."""

from pathlib import Path

import dagster as dg
from pydantic import Field, PrivateAttr

from vital_pipelines import config
from vital_pipelines.knowledge.documents import KeyCollision, discover
from vital_pipelines.knowledge.embedding import DEFAULT_BATCH_SIZE, DEFAULT_MODEL, Embedder


class EmbeddingModel(dg.ConfigurableResource):
    """A sentence-transformers model, described when a run starts and shared by every step of that process; its
    weights are loaded only when something is tokenised or embedded."""

    model_name: str = Field(default=DEFAULT_MODEL,
                            description="A sentence-transformers model name or a local model folder.")
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, description="Texts per forward pass.")
    backend: str = Field(default="torch", description="torch (sentence-transformers, fp32), onnx (ONNX Runtime, fp32), "
                                                       "onnx-int8 (ONNX Runtime, int8 weights) or openvino-bf16 "
                                                       "(OpenVINO, bf16, on CPUs that compute it): the backend is "
                                                       "part of each vector's model revision, so switching it "
                                                       "re-embeds the corpus.")
    _embedder: Embedder | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._embedder = _load(self.model_name, self.batch_size, self.backend)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = _load(self.model_name, self.batch_size, self.backend)
        return self._embedder


_LOADED: dict[tuple[str, int, str], Embedder] = {}


def models_loaded() -> list[str]:
    """The models whose weights this process has loaded (describing a model does not load it)."""
    return [name for (name, _batch, _backend), embedder in _LOADED.items() if embedder.loaded]


def _load(model_name: str, batch_size: int, backend: str = "torch") -> Embedder:
    # Several runs in one process (tests, in-process executors) share one copy of the weights.
    key = (model_name, batch_size, backend)
    if key not in _LOADED:
        _LOADED[key] = Embedder(model_name, batch_size=batch_size, backend=backend)
    return _LOADED[key]


class KnowledgeSource(dg.ConfigurableResource):
    """The folder whose documents the knowledge base mirrors."""

    knowledge_dir: str = Field(default=str(config.KNOWLEDGE_DIR), description="Folder of knowledge documents.")

    def documents(self, collisions: list[KeyCollision] | None = None) -> dict[str, Path]:
        """The documents by key; files whose readable keys coincide are appended to `collisions`."""
        folder = Path(self.knowledge_dir)
        return discover(folder, collisions) if folder.is_dir() else {}


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"embedding_model": EmbeddingModel(), "knowledge_source": KnowledgeSource()})
