"""Retrieval quality on a labelled question set, measured on documents and on passages.

Each question names the document that answers it and, optionally, the section (a heading on the chunk's path)
and an `answer`: words the answering passage holds. A chunk is the answer passage when it belongs to that document,
lies under that section and holds those words (compared case- and space-insensitively). Reported: recall@1 and
recall@5 of the document and of the passage among the top chunks, the passage's mean reciprocal rank (top 10), by
question kind (`paraphrase`, `exact-term`, `table`, ...).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import yaml

from vital_pipelines.knowledge.embedding import Embedder
from vital_pipelines.knowledge.search import ChunkHit, SearchFilters, search_chunks

DEPTH = 10


@dataclass(frozen=True)
class Question:
    question: str
    document: str
    section: str | None = None
    answer: str | None = None
    kind: str = "paraphrase"


@dataclass
class Scores:
    questions: int = 0
    document_at_1: float = 0.0
    document_at_5: float = 0.0
    passage_at_1: float = 0.0
    passage_at_5: float = 0.0
    passage_mrr: float = 0.0


@dataclass
class Evaluation:
    overall: Scores
    by_kind: dict[str, Scores]
    misses: list[tuple[str, str, list[str]]] = field(default_factory=list)

    # The names earlier callers read.
    @property
    def questions(self) -> int:
        return self.overall.questions

    @property
    def recall_at_1(self) -> float:
        return self.overall.document_at_1

    @property
    def recall_at_5(self) -> float:
        return self.overall.document_at_5


def load_questions(path: Path) -> list[Question]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return [Question(q["question"], q["document"], q.get("section"), q.get("answer"), q.get("kind", "paraphrase"))
            for q in data.get("questions", [])]


def _folded(text: str) -> str:
    return " ".join(text.casefold().split())


def is_answer(hit: ChunkHit, question: Question) -> bool:
    return (hit.document == question.document
            and (question.section is None or question.section in hit.heading_path)
            and (question.answer is None or _folded(question.answer) in _folded(hit.content)))


def _score(rows: list[tuple[int | None, int | None]]) -> Scores:
    """Scores from (document rank, passage rank) per question; None where not found in the top DEPTH."""
    n = len(rows) or 1
    return Scores(
        questions=len(rows),
        document_at_1=sum(d == 1 for d, _ in rows) / n,
        document_at_5=sum(d is not None and d <= 5 for d, _ in rows) / n,
        passage_at_1=sum(p == 1 for _, p in rows) / n,
        passage_at_5=sum(p is not None and p <= 5 for _, p in rows) / n,
        passage_mrr=sum(1 / p for _, p in rows if p) / n,
    )


def evaluate(conn: psycopg.Connection, embedder: Embedder, questions: list[Question], *,
             filters: SearchFilters | None = None, mode: str = "hybrid") -> Evaluation:
    vectors = embedder.encode([q.question for q in questions])
    ranks: list[tuple[int | None, int | None]] = []
    kinds: dict[str, list[tuple[int | None, int | None]]] = defaultdict(list)
    misses = []
    for question, vector in zip(questions, vectors):
        hits = search_chunks(conn, question.question, vector, embedder.info.name, limit=DEPTH, filters=filters,
                             mode=mode)
        document = next((n for n, hit in enumerate(hits, 1) if hit.document == question.document), None)
        passage = next((n for n, hit in enumerate(hits, 1) if is_answer(hit, question)), None)
        ranks.append((document, passage))
        kinds[question.kind].append((document, passage))
        if passage is None or passage > 5:
            misses.append((question.question, question.document, [h.document for h in hits[:5]]))
    return Evaluation(_score(ranks), {kind: _score(rows) for kind, rows in sorted(kinds.items())}, misses)
