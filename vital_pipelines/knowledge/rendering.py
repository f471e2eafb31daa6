"""Rendering authored Markdown into the PDF (fpdf2, headings as outline entries) and DOCX (python-docx, heading
styles) documents of the sample corpus, so every format the pipeline reads is exercised by real files.

Output is deterministic: fixed creation dates and zip timestamps, so regenerating changes no bytes.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import frontmatter

FIXED_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)
_LATIN1 = {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-", "\u2022": "-",
           "\u00d7": "x", "\u2265": ">=", "\u2264": "<=", "\u2192": "->", "\u203a": ">", "\u2026": "..."}


def _sections(body: str) -> list[tuple[int, str]]:
    """(level, text) items: level > 0 for headings, 0 for paragraphs (list items one paragraph each)."""
    items: list[tuple[int, str]] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            items.append((0, " ".join(paragraph)))
            paragraph.clear()

    for line in body.splitlines():
        heading = re.match(r"^(#{1,6})\s+(.+)$", line)
        if heading:
            flush()
            items.append((len(heading.group(1)), heading.group(2).strip()))
        elif not line.strip():
            flush()
        elif re.match(r"^\s*([-*]|\d+[.)])\s+", line):
            flush()
            paragraph.append(line.strip())
        else:
            paragraph.append(line.strip())
    flush()
    return items


def _latin1(text: str) -> str:
    for char, replacement in _LATIN1.items():
        text = text.replace(char, replacement)
    return text.encode("latin-1", "replace").decode("latin-1")


def render_pdf(source: Path, target: Path) -> Path:
    from fpdf import FPDF

    post = frontmatter.load(source)
    pdf = FPDF(format="A4")
    pdf.set_creation_date(FIXED_DATE)
    if post.get("untitled"):
        pass  # a PDF whose metadata names no title: its title is read from the first page
    else:
        pdf.set_title(_latin1(str(post.get("title", source.stem))))
    if post.get("domain"):
        pdf.set_subject(str(post["domain"]))
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_page()
    if post.get("credit"):
        pdf.set_font("Helvetica", "B", 11)
        pdf.multi_cell(0, 6, _latin1(str(post["credit"])), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    if int(post.get("columns", 1)) > 1:
        _two_columns(pdf, _sections(post.content), int(post["columns"]))
        target.write_bytes(bytes(pdf.output()))
        return target
    for level, text in _sections(post.content):
        text = _latin1(text)
        if level:
            pdf.start_section(text, level=level - 1)
            pdf.set_font("Helvetica", "B", {1: 16, 2: 13}.get(level, 11))
            pdf.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
        else:
            pdf.set_font("Helvetica", "", 10.5)
            pdf.multi_cell(0, 5.5, text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
    target.write_bytes(bytes(pdf.output()))
    return target


def _two_columns(pdf, items: list[tuple[int, str]], columns: int) -> None:
    """The first heading across the page, everything after it in `columns` columns (a journal's layout)."""
    if items and items[0][0] == 1:
        pdf.set_font("Helvetica", "B", 18)
        pdf.multi_cell(0, 9, _latin1(items[0][1]), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
        items = items[1:]
    with pdf.text_columns(ncols=columns, gutter=8, text_align="LEFT", balance=True) as flow:
        for level, text in items:
            pdf.set_font("Helvetica", "B" if level else "", 13 if level else 10)
            with flow.paragraph(bottom_margin=3) as paragraph:
                paragraph.write(_latin1(text))


def render_docx(source: Path, target: Path) -> Path:
    import docx

    post = frontmatter.load(source)
    document = docx.Document()
    properties = document.core_properties
    properties.title = str(post.get("title", source.stem))
    properties.subject = str(post.get("domain", ""))
    properties.author = "VITAL.expert knowledge team"
    properties.created = properties.modified = FIXED_DATE.replace(tzinfo=None)
    properties.last_modified_by = "vital-pipelines"
    properties.revision = 1
    for level, text in _sections(post.content):
        if level:
            document.add_heading(text, level=min(level, 9))
        elif re.match(r"^[-*]\s+", text):
            document.add_paragraph(re.sub(r"^[-*]\s+", "", text), style="List Bullet")
        else:
            document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    target.write_bytes(_fixed_zip_times(buffer.getvalue()))
    return target


def _fixed_zip_times(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(2026, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(fixed, source.read(info.filename))
    return out.getvalue()


def render_corpus(authoring_dir: Path, knowledge_dir: Path) -> list[Path]:
    """Render every `*.pdf.md` / `*.docx.md` under `authoring_dir` into `knowledge_dir`."""
    written = []
    for source in sorted(authoring_dir.glob("*.md")):
        stem, _, fmt = source.name.removesuffix(".md").rpartition(".")
        if fmt == "pdf":
            written.append(render_pdf(source, knowledge_dir / f"{stem}.pdf"))
        elif fmt == "docx":
            written.append(render_docx(source, knowledge_dir / f"{stem}.docx"))
    return written
