"""Every word of a real-world document reaches the chunks: DOCX tables, headers and footers, PDFs without an outline
or a title, ligatures and soft hyphens, Markdown tables larger than a chunk, diagrams, plain-text headings. Fixtures
are made here, with the libraries that write these formats; each test asserts the extracted text or the chunks."""

from __future__ import annotations

from pathlib import Path

import pytest

from vital_pipelines.knowledge.chunking import chunk_blocks
from vital_pipelines.knowledge.documents import clean_text, extract, title_from_name

QUESTIONNAIRE = [
    ("Domain", "Question", "Evidence expected"),
    ("Governance", "Is there a named owner for every AI system in production?", "RACI chart signed by the CIO"),
    ("Data", "Are training datasets versioned with their lineage?", "Dataset register extract"),
    ("Validation", "Was the model revalidated after the last retraining?", "Validation summary report VSR-17"),
]


def _docx_with_tables(target: Path) -> Path:
    import docx

    document = docx.Document()
    document.sections[0].header.paragraphs[0].text = "Confidential: readiness assessment v3"
    document.sections[0].footer.paragraphs[0].text = "Prepared by the Quality Innovation Office"
    document.add_heading("AI readiness assessment", level=1)
    document.add_paragraph("Answer every question in the table below.")
    table = document.add_table(rows=len(QUESTIONNAIRE), cols=3)
    for row, values in zip(table.rows, QUESTIONNAIRE):
        for cell, value in zip(row.cells, values):
            cell.text = value
    nested = table.rows[3].cells[2].add_table(rows=2, cols=2)
    nested.rows[0].cells[0].text = "Reviewer"
    nested.rows[0].cells[1].text = "Dr Okonkwo"
    nested.rows[1].cells[0].text = "Due"
    nested.rows[1].cells[1].text = "Q3 2027"
    merged = document.add_table(rows=2, cols=3)
    merged.rows[0].cells[0].merge(merged.rows[0].cells[2]).text = "Scoring"
    for cell, value in zip(merged.rows[1].cells, ("0 = absent", "1 = partial", "2 = complete")):
        cell.text = value
    document.add_heading("Next steps", level=1)
    document.add_paragraph("Submit the completed assessment to the steering group.")
    document.save(target)
    return target


def test_a_docx_answer_that_sits_only_in_a_table_reaches_the_blocks_row_by_row(tmp_path, embedder):
    document = extract(_docx_with_tables(tmp_path / "readiness.docx"), "readiness-docx")
    tables = [b for b in document.blocks if b.kind == "table"]
    assert tables[0].rows[0] == QUESTIONNAIRE[0]
    assert tables[0].rows[2] == QUESTIONNAIRE[2]
    # A nested table stays inside its cell, row by row; a merged cell is read once.
    assert tables[0].rows[3][2] == "Validation summary report VSR-17 Reviewer; Dr Okonkwo Due; Q3 2027"
    assert tables[1].rows == (("Scoring", "", ""), ("0 = absent", "1 = partial", "2 = complete"))
    assert tables[0].headings == ("AI readiness assessment",)
    # Body order kept: the prose before the table, the heading after it.
    texts = [b.text for b in document.blocks]
    assert texts.index("Answer every question in the table below.") < texts.index(tables[0].text)
    assert document.blocks[-3].headings == ("Next steps",)
    # Headers and footers carry content, and it is kept once.
    assert texts[-2:] == ["Confidential: readiness assessment v3", "Prepared by the Quality Innovation Office"]
    chunks = chunk_blocks(document.title, document.blocks, count_tokens=embedder.count_tokens, max_tokens=256)
    assert any("Dataset register extract" in c.content and c.content.startswith("Domain | Question") for c in chunks)


def _long_table(rows: int) -> str:
    header = "| Country | HTA body | Timeline | Notes |\n|---|---|:---:|---|\n"
    body = "".join(f"| Country {n} | Agency {n} | {n * 10} days | Submission route {n} with a dossier and a "
                   f"price negotiation after the appraisal |\n" for n in range(rows))
    return f"# Access\n\nIntro paragraph.\n\n{header}{body}\nClosing paragraph.\n"


def test_a_markdown_table_larger_than_a_chunk_is_chunked_by_rows_under_its_header(tmp_path, embedder):
    path = tmp_path / "access.md"
    path.write_text(_long_table(40), encoding="utf-8")
    document = extract(path, "access-md")
    [table] = [b for b in document.blocks if b.kind == "table"]
    assert len(table.rows) == 41 and table.rows[0] == ("Country", "HTA body", "Timeline", "Notes")
    chunks = chunk_blocks(document.title, document.blocks, count_tokens=embedder.count_tokens, max_tokens=128)
    table_chunks = [c for c in chunks if "Country 0" in c.content or c.content.startswith("Country | HTA body")]
    assert len(table_chunks) > 3
    assert all(c.content.split("\n")[0] == "Country | HTA body | Timeline | Notes" for c in table_chunks)
    # Every row in exactly one chunk, whole, and never mixed with the prose around the table.
    rows = [line for c in table_chunks for line in c.content.split("\n")[1:]]
    assert rows == [" | ".join(row) for row in table.rows[1:]]
    assert not any("Intro paragraph" in c.content or "Closing paragraph" in c.content for c in table_chunks)
    assert all(c.token_count <= 128 for c in chunks)


DIAGRAM = """```
┌──────────────┐      ┌───────────────┐
│ Case intake  │ ───▶ │ Medical review │
└──────────────┘      └───────────────┘
```"""


def test_diagrams_keep_their_labels_and_rules_are_dropped(tmp_path, embedder):
    path = tmp_path / "flow.md"
    path.write_text(f"# Flow\n\nCases move as shown.\n\n{DIAGRAM}\n\n---\n\n***\n\nThe end.\n", encoding="utf-8")
    document = extract(path, "flow-md")
    assert [(b.kind, b.text) for b in document.blocks] == [
        ("text", "Cases move as shown."), ("diagram", "Diagram: Case intake · Medical review"), ("text", "The end.")]
    chunks = chunk_blocks(document.title, document.blocks, count_tokens=embedder.count_tokens, max_tokens=256)
    assert not any(ch in c.embed_text for c in chunks for ch in "│─┌▶")
    assert not any(c.content.strip() in ("---", "***") for c in chunks)


def test_ligatures_full_width_forms_and_soft_hyphens_become_the_text_a_reader_sees():
    assert clean_text("e\ufb03cient \ufb01ling, \uff21\uff22\uff23 ﬂow") == "efficient filing, ABC flow"
    # Superscripts, fractions and the like keep their meaning.
    assert clean_text("10 m² and ½ dose") == "10 m² and ½ dose"
    # A single soft hyphen between two words stands for a hyphen; several in one word are hyphenation hints;
    # one at a line's end joins the word.
    assert clean_text("patient\u00adprovider communication") == "patient-provider communication"
    assert clean_text("hy\u00adphen\u00adation") == "hyphenation"
    assert clean_text("pharmaco\u00ad\nvigilance") == "pharmacovigilance"


def _pdf_without_outline(target: Path) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 20)
    pdf.multi_cell(0, 10, "Real-world evidence for payers")
    pdf.ln(4)
    pdf.set_font("Helvetica", "", 10)
    pdf.multi_cell(0, 5, "Payers ask for evidence from routine care. " * 6)
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 14)
    pdf.multi_cell(0, 8, "SECTION II. DATA SOURCES")
    pdf.ln(2)
    pdf.set_font("Helvetica", "", 10)
    pdf.multi_cell(0, 5, "Registries and claims databases are the usual sources; their linkage is the hard part. " * 4)
    target.write_bytes(bytes(pdf.output()))
    return target


def test_a_pdf_without_outline_or_title_gets_headings_from_font_sizes_and_its_first_page_title(tmp_path):
    document = extract(_pdf_without_outline(tmp_path / "Neuro Spending.pdf"), "x")
    assert document.title == "Real-world evidence for payers"
    assert [b.headings for b in document.blocks] == [
        ("Real-world evidence for payers",), ("Real-world evidence for payers", "SECTION II. DATA SOURCES")]
    assert document.blocks[1].text.startswith("Registries and claims databases are the usual sources;")
    # No line breaks or double spaces left inside a paragraph.
    assert all("\n" not in b.text and "  " not in b.text for b in document.blocks)


def test_a_document_without_a_title_or_an_opening_heading_is_named_after_its_file(tmp_path):
    path = tmp_path / "Neuro Spending.pdf.md"
    path.write_text("Spending on neurology grew.\n\n## Later section\n\nMore text.\n", encoding="utf-8")
    assert extract(path, "x").title == "Neuro Spending"
    assert title_from_name(Path("Q3_report.final.docx")) == "Q3 report.final"


def test_plain_text_headings_are_detected_by_underline_numbering_and_capitals(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("Market access notes\n===================\n\nOpening paragraph about access.\n\n"
                    "1. Scope\n\nThe scope covers Europe.\n\n1.1 Exclusions\n\nVaccines are excluded.\n\n"
                    "PRICING AND REIMBURSEMENT\n\nPrices are negotiated after appraisal.\n", encoding="utf-8")
    document = extract(path, "notes-txt")
    assert document.title == "Market access notes"
    assert [(b.headings, b.text) for b in document.blocks] == [
        (("Market access notes",), "Opening paragraph about access."),
        (("Market access notes", "1. Scope"), "The scope covers Europe."),
        (("Market access notes", "1. Scope", "1.1 Exclusions"), "Vaccines are excluded."),
        (("Market access notes", "PRICING AND REIMBURSEMENT"), "Prices are negotiated after appraisal."),
    ]


@pytest.mark.parametrize("name", ["a.md", "a.txt"])
def test_running_text_is_not_mistaken_for_headings(tmp_path, name):
    path = tmp_path / name
    path.write_text("Sources of requests. Requests arrive by phone.\n\nThey are triaged within one day.\n",
                    encoding="utf-8")
    assert all(not b.headings or b.headings == () for b in extract(path, "x").blocks)


def test_an_outline_whose_titles_are_not_in_the_text_gives_way_to_font_sizes(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_title("Microsoft Word - draft_v2.docx")
    for size, style, text, section in ((18, "B", "1. Scope of the review", "Scope"),
                                       (10, "", "The review covers every market. " * 5, None),
                                       (18, "B", "2. Method", "Method"),
                                       (10, "", "Dossiers were compared line by line. " * 5, None)):
        if section:
            pdf.start_section(section)
        pdf.set_font("Helvetica", style, size)
        pdf.multi_cell(0, size / 2, text)
        pdf.ln(3)
    path = tmp_path / "review.pdf"
    path.write_bytes(bytes(pdf.output()))
    document = extract(path, "review-pdf")
    # A junk metadata title is ignored in favour of the first page's first heading.
    assert document.title == "1. Scope of the review"
    assert [b.headings[-1] for b in document.blocks] == ["1. Scope of the review", "2. Method"]


def _two_column_pdf(target: Path) -> Path:
    """A credit line in bold above a larger title, then two columns whose boxes sit at different heights (pdfminer's
    own order reads them alternately), and a sentence broken between two boxes of the left column."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 6, "In collaboration with AI Commons", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 18)
    pdf.multi_cell(0, 9, "Diversity in clinical trials", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    top = pdf.get_y() + 4
    for x, y, text in ((10, 0, "Sponsors reported the share of participants from under-represented groups. " * 3),
                       (10, 70, "Over the decade of use in trials for"),
                       (10, 90, "the focal conditions the share increased from 0.7% to 2.1% as sites grew. " * 3),
                       (110, 0, "Regulators now ask for a diversity plan before the pivotal trial begins. " * 2),
                       (110, 45, "Community sites and decentralised visits widen access for rural patients. " * 3),
                       (110, 85, "Registries follow patients after the trial ends and report outcomes. " * 3)):
        pdf.set_xy(x, top + y)
        pdf.multi_cell(85, 5, text, align="L")
    target.write_bytes(bytes(pdf.output()))
    return target


def test_a_two_column_pdf_is_read_column_after_column_with_broken_sentences_joined(tmp_path):
    document = extract(_two_column_pdf(tmp_path / "s41746.pdf"), "x")
    assert document.title == "Diversity in clinical trials"
    texts = [block.text for block in document.blocks]
    starts = [next(n for n, text in enumerate(texts) if text.startswith(words))
              for words in ("Sponsors reported", "Over the decade", "Regulators now ask", "Community sites",
                            "Registries follow")]
    assert starts == sorted(starts)
    joined = texts[starts[1]]
    assert joined.startswith("Over the decade of use in trials for the focal conditions the share increased from 0.7%")
    assert "Community" not in joined and "Regulators" not in joined


def test_reading_order_takes_bands_then_columns():
    from types import SimpleNamespace as Box

    from vital_pipelines.knowledge.documents import reading_order

    boxes = {"title": Box(x0=50, x1=550, y1=800), "left-top": Box(x0=50, x1=280, y1=700),
             "right-top": Box(x0=320, x1=550, y1=700), "right-mid": Box(x0=320, x1=550, y1=500),
             "left-low": Box(x0=50, x1=280, y1=400), "figure": Box(x0=50, x1=550, y1=300),
             "left-after": Box(x0=50, x1=280, y1=200), "right-after": Box(x0=320, x1=550, y1=250)}
    names = {id(box): name for name, box in boxes.items()}
    assert [names[id(b)] for b in reading_order(list(boxes.values()), 600)] == [
        "title", "left-top", "left-low", "right-top", "right-mid", "figure", "left-after", "right-after"]
