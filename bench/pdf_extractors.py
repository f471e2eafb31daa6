"""Benchmark: PDF text extraction, pypdf against pdfminer.six (the pipeline's choice), on the same files.

    .venv/bin/python bench/pdf_extractors.py [--repeats 5]

For each PDF in assets/knowledge/ whose authored source is in assets/authoring/ (NAME.pdf.md), and for a PDF made
here without an outline or a title, reports: the share of the source's words each extractor recovers (multiset
recall), the headings the pipeline finds (outline, else font sizes), and milliseconds per document (median of the
repeats, both run in turn in one process). pypdf returns a page's text as lines with no paragraph or heading
structure; pdfminer.six groups lines into text boxes and reports every character's font size, which the pipeline
needs for PDFs without an outline.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vital_pipelines import config  # noqa: E402
from vital_pipelines.knowledge.documents import extract  # noqa: E402


def _words(text: str) -> Counter:
    return Counter(re.findall(r"[A-Za-z0-9]+", text.lower()))


def _recall(truth: Counter, got: Counter) -> float:
    return sum((truth & got).values()) / max(1, sum(truth.values()))


def _pypdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


def _pdfminer_text(path: Path) -> str:
    from pdfminer.high_level import extract_text

    return extract_text(path)


def _no_outline_pdf(folder: Path) -> tuple[Path, str]:
    from fpdf import FPDF

    body = "Payers ask for evidence from routine care, and registries supply it. " * 8
    pdf = FPDF()
    pdf.add_page()
    for size, style, text in ((20, "B", "Real-world evidence for payers"), (10, "", body),
                              (14, "B", "Data sources"), (10, "", body)):
        pdf.set_font("Helvetica", style, size)
        pdf.multi_cell(0, size / 2, text)
        pdf.ln(3)
    path = folder / "no-outline.pdf"
    path.write_bytes(bytes(pdf.output()))
    return path, f"Real-world evidence for payers {body} Data sources {body}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cases: list[tuple[Path, str]] = []
    for pdf in sorted(config.KNOWLEDGE_DIR.glob("*.pdf")):
        source = config.ASSETS_DIR / "authoring" / f"{pdf.name}.md"
        if source.exists():
            text = source.read_text(encoding="utf-8").split("---", 2)[-1]
            cases.append((pdf, re.sub(r"[#*_`>|-]", " ", text)))
    with tempfile.TemporaryDirectory() as folder:
        cases.append(_no_outline_pdf(Path(folder)))
        print(f"{'document':<40}{'pypdf words':>12}{'pdfminer words':>15}{'pypdf ms':>10}{'pipeline ms':>12}  headings")
        for path, source in cases:
            truth = _words(source)
            timings: dict[str, list[float]] = {"pypdf": [], "pipeline": []}
            for _ in range(args.repeats):
                started = time.perf_counter()
                plain = _pypdf_text(path)
                timings["pypdf"].append(time.perf_counter() - started)
                started = time.perf_counter()
                document = extract(path, "bench")
                timings["pipeline"].append(time.perf_counter() - started)
            headings = sorted({h for block in document.blocks for h in block.headings})
            print(f"{path.name:<40}{_recall(truth, _words(plain)):>12.1%}"
                  f"{_recall(truth, _words(_pdfminer_text(path))):>15.1%}"
                  f"{statistics.median(timings['pypdf']) * 1000:>10.1f}"
                  f"{statistics.median(timings['pipeline']) * 1000:>12.1f}  {len(headings)}: {headings[:3]}")


if __name__ == "__main__":
    main()
