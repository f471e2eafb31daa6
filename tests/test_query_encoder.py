"""The numpy query encoder gives the model's own vectors (sentence-transformers, torch), so a search that embeds its
question without torch finds what the stored vectors say."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vital_pipelines import config
from vital_pipelines.knowledge.embedding import resolve_model_path, DEFAULT_MODEL
from vital_pipelines.knowledge.evaluation import load_questions
from vital_pipelines.knowledge.query_encoder import QueryEncoder


def test_numpy_vectors_equal_the_models_own(embedder):
    folder = Path(resolve_model_path(DEFAULT_MODEL))
    assert QueryEncoder.fits(folder)
    questions = [q.question for q in load_questions(config.ASSETS_DIR / "evaluation" / "knowledge_questions.yaml")]
    texts = questions[:20] + ["£20m", "ICH E6(R3)", "x", "word " * 400, "Ünïcödé — naïve café ✓"]
    ours = QueryEncoder(folder).encode(texts)
    theirs = embedder.encode(texts)
    cosine = (ours * theirs).sum(axis=1)
    assert ours.shape == theirs.shape and ours.dtype == np.float32
    assert cosine.min() > 0.99999, cosine.min()
    # Each question's nearest neighbour among the model's vectors is its own.
    assert (np.argmax(ours @ theirs.T, axis=1) == np.arange(len(texts))).all()


def test_other_folders_are_not_claimed(tmp_path):
    assert not QueryEncoder.fits(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "roberta", "hidden_act": "gelu"}')
    assert not QueryEncoder.fits(tmp_path)
