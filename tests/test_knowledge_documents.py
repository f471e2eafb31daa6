"""Extraction and chunking of knowledge documents, with the real tokenizer: no database."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from vital_pipelines.knowledge.chunking import chunk_blocks
from vital_pipelines.knowledge.documents import Block, ExtractionError, clean_text, discover, document_slug, extract
from vital_pipelines.knowledge.rendering import render_docx, render_pdf

SOURCE = """---
title: Signal management in practice
domain: pharmacovigilance
visibility: public
---
# Signal management in practice

Signals come from spontaneous reports and studies.

## Validation

Validation checks whether the evidence justifies further analysis.

## Assessment

Assessment weighs all available evidence and recommends action.
"""


@pytest.fixture
def authored(tmp_path) -> Path:
    path = tmp_path / "signals.md"
    path.write_text(SOURCE, encoding="utf-8")
    return path


def test_clean_text_removes_what_postgres_and_readers_choke_on():
    dirty = "Pharmaco-\nvigilance\x00 team\u200b\u00a0reviews  \u00adcases\r\n"
    assert clean_text(dirty) == "Pharmacovigilance team reviews cases\n"


def test_markdown_blocks_carry_their_heading_path_and_front_matter(authored):
    document = extract(authored, "signals-md")
    assert document.title == "Signal management in practice"
    assert document.front_matter["domain"] == "pharmacovigilance"
    assert [b.headings for b in document.blocks] == [
        ("Signal management in practice",),
        ("Signal management in practice", "Validation"),
        ("Signal management in practice", "Assessment"),
    ]
    assert document.word_count == 7 + 8 + 8


@pytest.mark.parametrize("render", [render_pdf, render_docx], ids=["pdf", "docx"])
def test_rendered_pdf_and_docx_extract_to_the_same_sections(authored, tmp_path, render):
    target = render(authored, tmp_path / f"signals.{render.__name__.removeprefix('render_')}")
    document = extract(target, "x")
    assert document.title == "Signal management in practice"
    assert document.front_matter["domain"] == "pharmacovigilance"
    assert [(b.headings[-1], b.text) for b in document.blocks] == [
        (b.headings[-1], b.text) for b in extract(authored, "y").blocks]


def test_rendering_is_byte_for_byte_deterministic(authored, tmp_path):
    for render, suffix in ((render_pdf, "pdf"), (render_docx, "docx")):
        first = render(authored, tmp_path / f"a.{suffix}").read_bytes()
        assert render(authored, tmp_path / f"b.{suffix}").read_bytes() == first


def _encrypted_pdf(authored: Path, tmp_path: Path) -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(render_pdf(authored, tmp_path / "plain.pdf")))
    writer.encrypt(user_password="secret", algorithm="AES-256")
    target = tmp_path / "locked.pdf"
    with open(target, "wb") as stream:
        writer.write(stream)
    return target


def _image_only_pdf(tmp_path: Path) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60, style="F")
    target = tmp_path / "scan.pdf"
    target.write_bytes(bytes(pdf.output()))
    return target


def _corrupt_docx(tmp_path: Path) -> Path:
    target = tmp_path / "broken.docx"
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr("word/document.xml", "<not-closed")
    return target


def _zip_bomb_docx(tmp_path: Path) -> Path:
    target = tmp_path / "bomb.docx"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", "<w:document>" + " " * 50_000_000 + "</w:document>")
    return target


def _written(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("make, reason", [
    (lambda a, t: _encrypted_pdf(a, t), "encrypted"),
    (lambda a, t: _image_only_pdf(t), "no text layer"),
    (lambda a, t: _corrupt_docx(t), "DOCX"),
    (lambda a, t: _zip_bomb_docx(t), "zip bomb"),
    (lambda a, t: _written(t / "truncated.pdf", "%PDF-1.7\n1 0 obj <<"), "PDF"),
    (lambda a, t: _written(t / "empty.md", ""), "empty"),
    (lambda a, t: _written(t / "bad.md", "---\ntitle: [unclosed\n---\nText."), "front matter"),
], ids=["encrypted-pdf", "image-only-pdf", "corrupt-docx", "zip-bomb-docx", "truncated-pdf", "empty", "bad-front-matter"])
def test_unreadable_files_raise_with_path_and_reason(authored, tmp_path, make, reason):
    path = make(authored, tmp_path)
    with pytest.raises(ExtractionError) as raised:
        extract(path, "x")
    assert raised.value.path == path
    assert reason.lower() in raised.value.reason.lower()
    assert str(path) in str(raised.value)


def test_discover_keys_documents_by_slug_and_skips_hidden_and_unsupported(tmp_path):
    (tmp_path / "regulatory").mkdir()
    (tmp_path / "regulatory" / "fda-meetings.md").write_text("x")
    (tmp_path / "notes.md").write_text("x")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    (tmp_path / ".draft.md").write_text("x")
    (tmp_path / "image.png").write_bytes(b"x")
    assert sorted(discover(tmp_path)) == ["notes-md", "notes-pdf", "regulatory-fda-meetings-md"]


def test_files_whose_names_fold_together_stay_separate_documents_with_stable_keys(tmp_path):
    names = ["Neuro Spending.md", "Neuro_Spending.md", "neuro-spending.md", "报告.md", "資料.md", "a.b.md", "a-b.md"]
    for name in names:
        (tmp_path / name).write_text(f"# {name}\n\nText of {name}.", encoding="utf-8")
    collisions = []
    found = discover(tmp_path, collisions)
    assert len(found) == len(names)
    assert sorted(path.name for path in found.values()) == sorted(names)
    assert found["neuro-spending-md"].name == "neuro-spending.md"
    assert all(slug.startswith("neuro-spending-md-") for slug, path in found.items()
               if path.name in ("Neuro Spending.md", "Neuro_Spending.md"))
    assert {slug.rsplit("-", 1)[0] for slug, path in found.items() if path.suffix == ".md" and not path.name.isascii()} \
        == {"bao-gao-md", "zi-liao-md"}
    # Two readable names that still coincide are both keyed by their path's hash, and the case is reported.
    assert [(c.slug, c.files) for c in collisions] == [("a-b-md", ("a-b.md", "a.b.md"))]
    assert "a-b-md" not in found and len(set(collisions[0].resolved)) == 2
    # A key depends on the file's own path only: adding or removing other files never re-keys it.
    keys = {path.name: slug for slug, path in found.items()}
    (tmp_path / "neuro-spending.md").unlink()
    assert {path.name: slug for slug, path in discover(tmp_path).items()}.items() <= keys.items()
    assert document_slug("Médical/Ünicode file.md").startswith("medical-unicode-file-md-")


def _paragraph(n: int, words: int = 60) -> str:
    return " ".join(f"Sentence {n}.{i} explains pharmacovigilance obligations for marketing holders." for i in range(words // 6))


def test_chunks_fit_the_model_break_at_headings_and_overlap(embedder):
    blocks = [Block(("Guide", "Part A"), _paragraph(n, 120)) for n in range(8)] + \
             [Block(("Guide", "Part B"), "A short closing section.")]
    chunks = chunk_blocks("Guide", blocks, count_tokens=embedder.count_tokens, max_tokens=embedder.info.max_tokens)
    assert all(c.token_count <= embedder.info.max_tokens for c in chunks)
    assert [c.token_count for c in chunks] == embedder.count_tokens([c.embed_text for c in chunks])
    assert chunks[-1].heading_path == ("Guide", "Part B") and chunks[-1].content == "A short closing section."
    assert all("Part B" not in c.embed_text for c in chunks[:-1])
    part_a = chunks[:-1]
    assert len(part_a) > 2
    for previous, current in zip(part_a, part_a[1:]):
        last_sentence = previous.content.split(". ")[-1]
        assert current.content.startswith(last_sentence.split(" ")[0]) and last_sentence in current.content
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_a_sentence_longer_than_the_model_is_split_at_words(embedder):
    endless = " ".join(["pharmacoepidemiology"] * 600)
    chunks = chunk_blocks("T", [Block((), endless)], count_tokens=embedder.count_tokens, max_tokens=128)
    assert len(chunks) > 1 and all(c.token_count <= 128 for c in chunks)
    assert " ".join(c.content for c in chunks).split() == endless.split()
