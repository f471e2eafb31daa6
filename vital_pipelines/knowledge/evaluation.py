"""Retrieval quality on a labelled question set: recall@k of the right document (and section) among the
documents of the top-k chunks returned from the database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg
import yaml

from vital_pipelines.knowledge.embedding import Embedder
from vital_pipelines.knowledge.search import ChunkHit, search_chunks


@dataclass(frozen=True)
class Question:
    question: str
    document: str
    section: str | None = None


@dataclass
class Evaluation:
    questions: int
    recall_at_1: float
    recall_at_5: float
    section_recall_at_5: float
    misses: list[tuple[str, str, list[str]]]


def load_questions(path: Path) -> list[Question]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return [Question(q["question"], q["document"], q.get("section")) for q in data.get("questions", [])]


def _rank(hits: list[ChunkHit], question: Question) -> tuple[int | None, bool]:
    documents = [hit.document for hit in hits]
    rank = documents.index(question.document) + 1 if question.document in documents else None
    section_hit = any(hit.document == question.document and (question.section is None or question.section in hit.heading_path)
                      for hit in hits)
    return rank, section_hit


def evaluate(conn: psycopg.Connection, embedder: Embedder, questions: list[Question], *, k: int = 5) -> Evaluation:
    vectors = embedder.encode([q.question for q in questions])
    top1 = topk = sections = 0
    misses = []
    for question, vector in zip(questions, vectors):
        hits = search_chunks(conn, vector, embedder.info.name, limit=k)
        rank, section_hit = _rank(hits, question)
        top1 += rank == 1
        topk += rank is not None
        sections += section_hit
        if rank is None:
            misses.append((question.question, question.document, [h.document for h in hits]))
    n = len(questions) or 1
    return Evaluation(len(questions), top1 / n, topk / n, sections / n, misses)
