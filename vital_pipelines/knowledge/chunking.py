"""Token-aware chunking: a document's blocks become chunks that fit the model's maximum sequence length.

Chunks never cross a heading; within a section paragraphs are packed whole, a paragraph too long for one chunk is
split at sentences, and a sentence too long at words. Consecutive chunks of a section share up to
`overlap_tokens` of trailing sentences. What the model embeds is the chunk's heading context followed by its
text; `token_count` and `sha256` are of exactly that text, so a renamed heading re-embeds its chunks.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby

from vital_pipelines.knowledge.documents import Block

TokenCounter = Callable[[list[str]], list[int]]
SPECIAL_TOKENS = 2
DEFAULT_OVERLAP_TOKENS = 32
CHUNKER_VERSION = "3"  # with the extraction: 3 reads PDF columns one after the other

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=[\"'(\[]?[A-Z0-9])")


@dataclass(frozen=True)
class Chunk:
    index: int
    heading_path: tuple[str, ...]
    content: str
    embed_text: str
    token_count: int
    sha256: str


@dataclass
class _Piece:
    text: str
    tokens: int
    paragraph: int


def heading_context(title: str, headings: tuple[str, ...]) -> str:
    trail = [title] + [h for h in headings if h != title]
    return " › ".join(t for t in trail if t)


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


def _split_words(text: str, budget: int, count: TokenCounter) -> list[str]:
    """Halve a run of words until every part fits `budget` tokens."""
    words = text.split()
    if len(words) <= 1 or count([text])[0] - SPECIAL_TOKENS <= budget:
        return [text]
    middle = len(words) // 2
    return _split_words(" ".join(words[:middle]), budget, count) + _split_words(" ".join(words[middle:]), budget, count)


def _pieces(paragraphs: list[str], budget: int, count: TokenCounter) -> list[_Piece]:
    pieces: list[_Piece] = []
    sizes = count(paragraphs)
    for number, (paragraph, size) in enumerate(zip(paragraphs, sizes)):
        if size - SPECIAL_TOKENS <= budget:
            pieces.append(_Piece(paragraph, size - SPECIAL_TOKENS, number))
            continue
        sentences = _sentences(paragraph)
        for sentence, sentence_size in zip(sentences, count(sentences)):
            parts = [sentence] if sentence_size - SPECIAL_TOKENS <= budget else _split_words(sentence, budget, count)
            part_sizes = [sentence_size] if len(parts) == 1 else count(parts)
            pieces.extend(_Piece(p, s - SPECIAL_TOKENS, number) for p, s in zip(parts, part_sizes))
    return pieces


def _join(pieces: list[_Piece]) -> str:
    text = ""
    for i, piece in enumerate(pieces):
        if i:
            text += "\n\n" if piece.paragraph != pieces[i - 1].paragraph else " "
        text += piece.text
    return text


def _overlap(previous: list[_Piece], limit: int, count: TokenCounter) -> list[_Piece]:
    """Trailing sentences of the previous chunk, at most `limit` tokens."""
    if limit <= 0 or not previous:
        return []
    last = previous[-1]
    sentences = _sentences(last.text)
    carried: list[_Piece] = []
    total = 0
    for sentence, size in zip(reversed(sentences), reversed(count(sentences))):
        size -= SPECIAL_TOKENS
        if total + size > limit:
            break
        carried.insert(0, _Piece(sentence, size, last.paragraph))
        total += size
    return carried


def _pack(pieces: list[_Piece], budget: int, overlap_tokens: int, count: TokenCounter) -> list[list[_Piece]]:
    groups: list[list[_Piece]] = []
    current: list[_Piece] = []
    fresh = 0  # pieces in `current` that are not overlap
    used = 0
    for piece in pieces:
        separator = 1 if current else 0
        if current and fresh and used + separator + piece.tokens > budget:
            groups.append(current)
            current = _overlap(current, min(overlap_tokens, budget - piece.tokens - 1), count)
            used = sum(p.tokens for p in current) + max(len(current) - 1, 0)
            fresh = 0
            separator = 1 if current else 0
        current.append(piece)
        used += separator + piece.tokens
        fresh += 1
    if current and fresh:
        groups.append(current)
    return groups


def _table_groups(rows: tuple[tuple[str, ...], ...], budget: int, count: TokenCounter) -> list[str]:
    """A table's rows in runs that fit `budget`, each run under the table's header row; a row too long for one
    chunk is split at words, each part under the header."""
    lines = [" | ".join(row) for row in rows]
    if len(lines) < 2:
        return [part for line in lines for part in _split_words(line, budget, count)]
    header, body = lines[0], lines[1:]
    header_tokens = count([header])[0] - SPECIAL_TOKENS
    if header_tokens > budget // 2:
        header = _split_words(header, budget // 2, count)[0]
        header_tokens = count([header])[0] - SPECIAL_TOKENS
    room = budget - header_tokens - 1
    groups: list[str] = []
    current: list[str] = []
    used = 0
    for line, size in zip(body, count(body)):
        size -= SPECIAL_TOKENS
        parts = [line] if size <= room else _split_words(line, room, count)
        for part, part_size in zip(parts, [size] if len(parts) == 1 else [s - SPECIAL_TOKENS for s in count(parts)]):
            if current and used + 1 + part_size > room:
                groups.append("\n".join([header, *current]))
                current, used = [], 0
            current.append(part)
            used += part_size + (1 if used else 0)
    if current:
        groups.append("\n".join([header, *current]))
    return groups


def chunk_blocks(title: str, blocks: list[Block], *, count_tokens: TokenCounter, max_tokens: int,
                 overlap_tokens: int = DEFAULT_OVERLAP_TOKENS) -> list[Chunk]:
    """Chunks of a document whose embedded text (heading context + content) is at most `max_tokens` tokens. A table
    is chunked by rows with its header row repeated in every chunk, never mixed with the prose around it."""
    drafts: list[tuple[tuple[str, ...], str, str]] = []
    for headings, section in groupby(blocks, key=lambda block: block.headings):
        context = heading_context(title, headings)
        context_tokens = count_tokens([context])[0] - SPECIAL_TOKENS
        if context_tokens > max_tokens // 3:
            context = _split_words(context, max_tokens // 3, count_tokens)[0]
            context_tokens = count_tokens([context])[0] - SPECIAL_TOKENS
        # One token for the line break between context and content, a small margin for tokenizer joins.
        budget = max_tokens - SPECIAL_TOKENS - context_tokens - 1 - 4
        for is_table, run in groupby(section, key=lambda block: block.kind == "table" and len(block.rows) > 1):
            if is_table:
                for table in run:
                    drafts.extend((headings, context, text) for text in _table_groups(table.rows, budget, count_tokens))
                continue
            paragraphs = [block.text for block in run]
            for group in _pack(_pieces(paragraphs, budget, count_tokens), budget, overlap_tokens, count_tokens):
                drafts.append((headings, context, _join(group)))
    return _fit(_make_chunks(drafts, count_tokens), max_tokens, count_tokens)


def _make_chunks(drafts: list[tuple[tuple[str, ...], str, str]], count: TokenCounter) -> list[Chunk]:
    """Chunks from (headings, context, content), their exact token counts taken in one tokenizer call."""
    texts = [f"{context}\n{content}" if context else content for _, context, content in drafts]
    return [Chunk(index=i, heading_path=headings, content=content, embed_text=text, token_count=tokens,
                  sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())
            for i, ((headings, _, content), text, tokens) in enumerate(zip(drafts, texts, count(texts)))]


def _fit(chunks: list[Chunk], max_tokens: int, count: TokenCounter) -> list[Chunk]:
    """The packing adds token counts of parts; the exact count of the joined text can differ by a token or two.
    Any chunk over the limit is split in two at words (rare), and indexes are renumbered."""
    fitted: list[Chunk] = []
    for chunk in chunks:
        if chunk.token_count <= max_tokens:
            fitted.append(chunk)
            continue
        context = chunk.embed_text[: len(chunk.embed_text) - len(chunk.content)].rstrip("\n")
        words = chunk.content.split()
        halves = [" ".join(words[: len(words) // 2]), " ".join(words[len(words) // 2:])]
        fitted.extend(_fit(_make_chunks([(chunk.heading_path, context, half) for half in halves if half], count),
                           max_tokens, count))
    return [Chunk(i, c.heading_path, c.content, c.embed_text, c.token_count, c.sha256) for i, c in enumerate(fitted)]
