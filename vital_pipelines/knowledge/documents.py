"""Finding knowledge documents and turning each into clean text blocks with their heading path.

Markdown and plain text (with optional YAML front matter), PDF (pypdf; headings from the document outline) and
DOCX (python-docx; headings from the paragraph styles). A file that cannot be read raises `ExtractionError`
with its path and the reason; callers report it and carry on with the rest of the corpus.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import frontmatter
import yaml

from vital_pipelines.files import file_sha256

SOURCE_TYPES = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".pdf": "pdf", ".docx": "docx"}
FRONT_MATTER_FIELDS = ("title", "domain", "solution", "visibility", "tenant")
MAX_FILE_BYTES = 50 * 1024 * 1024
_NAME_EXTENSIONS = {".md", ".markdown", ".txt", ".pdf", ".docx", ".doc", ".htm", ".html", ".rtf", ".odt"}


class ExtractionError(RuntimeError):
    """A document that cannot be read; the message names the file and the reason."""

    def __init__(self, path: Path, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class Block:
    """One paragraph of text under its heading path (outermost heading first). A table keeps its rows (the first
    is its header), so chunks can repeat the header; `text` is then the rows, one line each."""

    headings: tuple[str, ...]
    text: str
    kind: str = "text"  # text | table | diagram
    rows: tuple[tuple[str, ...], ...] = ()


@dataclass
class Document:
    slug: str
    path: Path
    source_type: str
    title: str
    front_matter: dict
    blocks: list[Block]
    file_sha256: str
    byte_size: int
    word_count: int = field(init=False)

    def __post_init__(self) -> None:
        self.word_count = sum(len(block.text.split()) for block in self.blocks)


def table_block(headings: tuple[str, ...], rows: list[list[str]]) -> Block | None:
    """A table block from rows of cell texts; empty rows and columns dropped; None when nothing is left."""
    rows = [[" ".join(cell.split()) for cell in row] for row in rows]
    rows = [row for row in rows if any(row)]
    if not rows:
        return None
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]
    kept = [c for c in range(width) if any(row[c] for row in rows)]
    cells = tuple(tuple(row[c] for c in kept) for row in rows)
    return Block(headings, "\n".join(" | ".join(row) for row in cells), "table", cells)


_CLEAN_NAME = re.compile(r"^[a-z0-9]+(?:[-._/][a-z0-9]+)*$")


def document_slug(relative_path: str) -> str:
    """A stable partition key for a file, from its path relative to the corpus (extension kept, so `guide.md` and
    `guide.pdf` never collide). A name that is already lowercase ASCII words keeps its readable slug; any other
    name (spaces, capitals, underscores, accents, non-Latin script) is transliterated and gets 8 hex digits of its
    exact path's hash, so "Neuro Spending.md", "Neuro_Spending.md" and "neuro-spending.md" stay three documents,
    and a key never depends on which other files exist."""
    from slugify import slugify

    relative = unicodedata.normalize("NFC", relative_path)
    slug = slugify(relative, max_length=180, word_boundary=False) or "document"
    if _CLEAN_NAME.match(relative) and slug == re.sub(r"[._/]", "-", relative):
        return slug
    return f"{slug}-{_path_hash(relative)}"


def _path_hash(relative: str) -> str:
    return hashlib.sha256(relative.encode("utf-8")).hexdigest()[:8]


@dataclass(frozen=True)
class KeyCollision:
    slug: str
    files: tuple[str, ...]
    resolved: tuple[str, ...]


def discover(folder: Path, collisions: list[KeyCollision] | None = None) -> dict[str, Path]:
    """Every supported document under `folder` (hidden files and folders skipped), by slug. Two files whose
    readable slugs coincide (`a.b.md`, `a-b.md`) are both keyed with their path's hash; each such case is
    appended to `collisions`, never merged."""
    by_slug: dict[str, list[tuple[str, Path]]] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() in SOURCE_TYPES:
            name = relative.as_posix()
            by_slug.setdefault(document_slug(name), []).append((name, path))
    found: dict[str, Path] = {}
    for slug, files in by_slug.items():
        if len(files) == 1:
            found[slug] = files[0][1]
            continue
        resolved = tuple(f"{slug}-{_path_hash(unicodedata.normalize('NFC', name))}" for name, _ in files)
        found.update((key, path) for key, (_, path) in zip(resolved, files))
        if collisions is not None:
            collisions.append(KeyCollision(slug, tuple(name for name, _ in files), resolved))
    return dict(sorted(found.items()))


# Compatibility characters a reader sees as plain letters (ligatures, full-width and narrow forms, Arabic
# presentation forms, mathematical letters, no-break variants) are folded; superscripts, subscripts, fractions and
# circled numbers keep their meaning ("m²", "½") and stay.
_FOLDED_TAGS = {"<compat>", "<wide>", "<narrow>", "<font>", "<noBreak>", "<isolated>", "<initial>", "<medial>",
                "<final>", "<small>", "<vertical>"}


class _CompatibilityFold(dict):
    def __missing__(self, code: int) -> str | int:
        char = chr(code)
        decomposition = unicodedata.decomposition(char)
        tag = decomposition.split(" ", 1)[0] if decomposition.startswith("<") else ""
        folded = unicodedata.normalize("NFKC", char) if tag in _FOLDED_TAGS else code
        self[code] = folded
        return folded


_COMPATIBILITY = _CompatibilityFold()
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
_HYPHENATED_BREAK = re.compile(r"(\w)[-\u00ad]\n(?=[a-z])")
_SOFT_HYPHEN_WORD = re.compile(r"\S*\u00ad\S*")


def _soft_hyphens(match: re.Match) -> str:
    """A word with soft hyphens: several are hyphenation hints (dropped); one between two letters stands for the
    hyphen it was extracted from ("patient\u00adprovider" → "patient-provider"); elsewhere it is dropped."""
    word = match.group(0)
    if word.count("\u00ad") == 1:
        head, tail = word.split("\u00ad")
        if head[-1:].isalnum() and tail[:1].isalnum():
            return f"{head}-{tail}"
    return word.replace("\u00ad", "")


def clean_text(text: str) -> str:
    """NUL and other control characters and zero-width characters removed; compatibility characters folded
    (ligatures, full-width forms); soft hyphens resolved by context; words hyphenated across a line break joined;
    runs of spaces collapsed; Unicode in NFC."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text.translate(_COMPATIBILITY))
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C" or ch == "\u00ad")
    text = _HYPHENATED_BREAK.sub(r"\1", text)
    text = re.sub(r"\u00ad[ \t]*\n", "", text)
    if "\u00ad" in text:
        text = _SOFT_HYPHEN_WORD.sub(_soft_hyphens, text)
    text = text.replace("\u00a0", " ").replace("\t", " ")
    return re.sub(r"[ ]{2,}", " ", text)


_DRAWING = re.compile(r"[\u2190-\u21ff\u2500-\u25ff\u2794-\u27bf]")
_ASCII_DRAWING = set("-+|=<>^_/\\*~.:")
_RULE_ONLY = re.compile(r"^\s*([-*_=~]\s*){3,}$")


def is_diagram(text: str) -> bool:
    """Box-drawing or ASCII art: lines mostly drawn, not written."""
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) < 2:
        return bool(lines) and len(_DRAWING.findall(lines[0])) >= 3
    drawn = sum(1 for line in lines if _DRAWING.search(line)
                or sum(ch in _ASCII_DRAWING for ch in line.strip()) >= 0.5 * len(line.strip()))
    return drawn >= 0.5 * len(lines)


def diagram_block(headings: tuple[str, ...], text: str) -> Block | None:
    """A diagram keeps its labels, in reading order, for the index: not its lines and arrows."""
    labels = []
    for line in text.split("\n"):
        for part in re.split(r"[\u2190-\u21ff\u2500-\u25ff\u2794-\u27bf|+]+|-{2,}|={2,}|[<>]{1}-+|-+[<>]", line):
            words = " ".join(part.split()).strip(" -_=*~.:/\\")
            if re.search(r"\w", words):
                labels.append(words)
    return Block(headings, "Diagram: " + " · ".join(labels), "diagram") if labels else None


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", clean_text(text)) if p.strip()]


def _enter_heading(path: list[tuple[int, str]], level: int, title: str) -> None:
    """A heading closes every open heading at its level or deeper, then opens itself."""
    path[:] = [(lvl, t) for lvl, t in path if lvl < level] + [(level, title)]


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_LIST_ITEM = re.compile(r"^\s*([-*+]|\d+[.)])\s+")
_SETEXT = re.compile(r"^\s*(=+|-+)\s*$")


def _table_cells(line: str) -> list[str]:
    line = line.strip()
    line = line[1:] if line.startswith("|") else line
    line = line[:-1] if line.endswith("|") and not line.endswith("\\|") else line
    return [cell.replace("\\|", "|").strip() for cell in re.split(r"(?<!\\)\|", line)]


class _Sections:
    """Collects blocks under a heading path while a text is walked line by line."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.path: list[tuple[int, str]] = []
        self.buffer: list[str] = []

    @property
    def headings(self) -> tuple[str, ...]:
        return tuple(title for _, title in self.path)

    def flush(self) -> None:
        if self.buffer:
            self.add_text("\n".join(self.buffer))
        self.buffer.clear()

    def add_text(self, text: str) -> None:
        for raw in re.split(r"\n\s*\n", text):
            if not raw.strip() or _RULE_ONLY.match(raw):
                continue
            if is_diagram(raw):
                block = diagram_block(self.headings, raw)
            else:
                block = Block(self.headings, " ".join(raw.split()))
            if block is not None:
                self.blocks.append(block)

    def continue_text(self, text: str) -> None:
        """`add_text` for a text that may carry on the last paragraph's sentence (a PDF paragraph broken across a
        column or page): a last paragraph that ends without a sentence's end, followed by a lower-case start."""
        last = self.blocks[-1] if self.blocks else None
        first, _, rest = text.lstrip().partition("\n\n")
        if (last is not None and last.kind == "text" and last.headings == self.headings and first[:1].islower()
                and not re.search(r"[.!?:;\"'”’)\]]$", last.text)):
            self.blocks[-1] = Block(last.headings, f"{last.text} {' '.join(first.split())}")
            text = rest
        self.add_text(text)

    def heading(self, level: int, title: str) -> None:
        self.flush()
        _enter_heading(self.path, level, " ".join(title.split()))

    def table(self, rows: list[list[str]]) -> None:
        self.flush()
        block = table_block(self.headings, rows)
        if block is not None:
            self.blocks.append(block)


def _markdown_blocks(body: str) -> list[Block]:
    """Blocks of a Markdown body: ATX and setext headings set the path; tables keep their rows; fenced code stays
    one block (a diagram in it keeps only its labels); thematic breaks are dropped."""
    sections = _Sections()
    lines = clean_text(body).split("\n")
    fence: list[str] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith(("```", "~~~")):
            if fence is None:
                sections.flush()
                fence = []
            else:
                sections.add_text("\n".join(fence))
                fence = None
            i += 1
            continue
        if fence is not None:
            fence.append(line)
            i += 1
            continue
        heading = _MD_HEADING.match(line)
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if heading:
            sections.heading(len(heading.group(1)), heading.group(2).strip())
        elif ("|" in line and _TABLE_SEPARATOR.match(following)
              and len(_table_cells(following)) == len(_table_cells(line))):
            rows = [_table_cells(line)]
            i += 2
            while i < len(lines) and "|" in lines[i] and lines[i].strip():
                rows.append(_table_cells(lines[i]))
                i += 1
            sections.table(rows)
            continue
        elif (line.strip() and _SETEXT.match(following) and not _LIST_ITEM.match(line)
              and (not sections.buffer or not sections.buffer[-1].strip()) and len(line) <= 200):
            sections.heading(1 if following.strip().startswith("=") else 2, line.strip())
            i += 2
            continue
        elif _LIST_ITEM.match(line) and sections.buffer and sections.buffer[-1].strip():
            sections.buffer.append("\n" + line)
        else:
            sections.buffer.append(line)
        i += 1
    if fence is not None:
        sections.add_text("\n".join(fence))
    sections.flush()
    return sections.blocks


_NUMBERED_HEADING = re.compile(r"^(?:(?:section|chapter|part|appendix|annex)\s+[\divxlc]+[.:]?|(\d+(?:\.\d+)*)[.)]?)\s+\S",
                               re.IGNORECASE)


def _plain_heading_level(paragraph: str) -> int | None:
    """The level of a one-line paragraph that reads as a heading in plain text: numbered ("2.1 Scope", "SECTION II.
    DOMAINS", by depth), ALL CAPS, or Title Case; None for running text (long lines, sentences ending in a full
    stop). Level 1 is left to the document's title (its first line or an underlined heading)."""
    sectioned = re.match(r"^(section|chapter|part)\s", paragraph, re.IGNORECASE)
    sentence_like = "\n" in paragraph.strip() or paragraph.rstrip().endswith((".", ",", ";", ":"))
    if len(paragraph) > 100 or (sentence_like and not sectioned):
        return None
    numbered = _NUMBERED_HEADING.match(paragraph)
    if numbered:  # below the document's title, which is level 1
        return numbered.group(1).count(".") + 2 if numbered.group(1) else 2
    letters = [ch for ch in paragraph if ch.isalpha()]
    if len(letters) >= 4 and sum(ch.isupper() for ch in letters) >= 0.9 * len(letters) and len(paragraph.split()) <= 12:
        return 2
    words = [w for w in re.findall(r"[^\W\d_]+", paragraph) if len(w) > 3]
    if (words and len(paragraph.split()) <= 12 and not paragraph.rstrip().endswith(("?", "!"))
            and sum(w[0].isupper() for w in words) >= 0.75 * len(words)):
        return 3  # a Title Case line standing alone
    return None


def _plain_text_blocks(body: str) -> list[Block]:
    """Plain text: paragraphs between blank lines; underlined lines, numbered lines and ALL-CAPS lines standing
    alone are headings."""
    sections = _Sections()
    raw_paragraphs = [p for p in re.split(r"\n\s*\n", clean_text(body)) if p.strip()]
    for paragraph in raw_paragraphs:
        lines = [line for line in paragraph.split("\n") if line.strip()]
        if len(lines) == 2 and _SETEXT.match(lines[1]) and len(lines[0]) <= 100:
            sections.heading(1 if lines[1].strip().startswith("=") else 2, lines[0].strip())
            continue
        if len(lines) == 1 and (level := _plain_heading_level(lines[0].strip())) is not None:
            sections.heading(1 if not sections.blocks and not sections.path else level, lines[0].strip())
            continue
        sections.add_text(paragraph)
    return sections.blocks


def _split_front_matter(raw: str, path: Path) -> tuple[dict, str]:
    try:
        post = frontmatter.loads(raw)
    except yaml.YAMLError as error:
        raise ExtractionError(path, f"the front matter is not valid YAML ({error.__class__.__name__})") from None
    if not isinstance(post.metadata, dict):
        raise ExtractionError(path, "the front matter must be a mapping of fields")
    return {k: v for k, v in post.metadata.items() if v is not None}, post.content


def _read_text_file(path: Path) -> str:
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            if encoding == "utf-16" and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
                continue
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        raise ExtractionError(path, "the file is neither UTF-8, UTF-16 nor Windows-1252 text") from None


def _pdf_blocks(path: Path) -> tuple[dict, list[Block], str | None]:
    """pypdf checks the file (encryption) and reads its metadata and outline; pdfminer.six lays the text out into
    text boxes (its layout analysis joins a paragraph's lines and keeps columns apart) with each line's font size,
    from which documents without an outline get their headings."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError(path, "the PDF is encrypted with a password")
        outline = _pdf_outline(reader)
        info = reader.metadata or {}
        lines = _pdf_lines(path)
    except ExtractionError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as error:
        raise ExtractionError(path, f"the PDF cannot be read ({error.__class__.__name__}: {error})") from None
    except Exception as error:  # pypdf and pdfminer raise many internal types on damaged files
        if "encrypt" in str(error).lower() or "crypt" in error.__class__.__name__.lower():
            raise ExtractionError(path, "the PDF is encrypted and cannot be decrypted") from None
        raise ExtractionError(path, f"the PDF cannot be read ({error.__class__.__name__}: {error})") from None
    if not any(line.text.strip() for line in lines):
        raise ExtractionError(path, "the PDF has no text layer (image-only or scanned; OCR is not supported)")
    meta = {key: str(info.get(field)) for key, field in (("title", "/Title"), ("domain", "/Subject")) if info.get(field)}
    if outline and len(_outline_titles_found(lines, outline)) < len(outline) / 2:
        outline = {}  # an outline whose titles are not the text's lines ("1. Scope" vs "Scope") says nothing
    blocks, first_page_heading = _pdf_layout_blocks(lines, outline)
    return meta, blocks, first_page_heading


def _outline_titles_found(lines: list[_PdfLine], outline: dict[str, int]) -> set[str]:
    boxes: dict[int, list[str]] = {}
    for line in lines:
        boxes.setdefault(line.box, []).append(" ".join(line.text.split()))
    candidates = {" ".join(texts) for texts in boxes.values()} | {texts[0] for texts in boxes.values()}
    return set(outline) & candidates


@dataclass(frozen=True)
class _PdfLine:
    page: int
    box: int
    text: str
    size: float
    bold: bool


def _pdf_lines(path: Path) -> list[_PdfLine]:
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTChar, LTTextContainer, LTTextLine

    lines: list[_PdfLine] = []
    box_number = 0
    for page_number, page in enumerate(extract_pages(path, laparams=LAParams()), 1):
        boxes = [element for element in page if isinstance(element, LTTextContainer)]
        for element in reading_order(boxes, page.width):
            box_number += 1
            for line in element:
                if not isinstance(line, LTTextLine):
                    continue
                chars = [ch for ch in line if isinstance(ch, LTChar) and not ch.get_text().isspace()]
                if not chars:
                    continue
                sizes = sorted(round(ch.size, 1) for ch in chars)
                bold = sum("bold" in ch.fontname.lower() for ch in chars) >= 0.8 * len(chars)
                lines.append(_PdfLine(page_number, box_number, clean_text(line.get_text()).rstrip("\n"),
                                      sizes[len(sizes) // 2], bold))
    return lines


def reading_order(boxes: list, page_width: float) -> list:
    """Text boxes (anything with x0, x1, y1) in the order a reader takes them: down the page in bands separated by
    boxes that cross the page's middle (titles, full-width paragraphs, figures' captions); inside a band, the left
    column top to bottom, then the right column. pdfminer's own order mixes columns when their boxes sit at
    different heights, which put one column's paragraph inside the other's sentence."""
    middle, gutter = page_width / 2, page_width * 0.02
    ordered: list = []
    band: list = []

    def close_band() -> None:
        ordered.extend(sorted(band, key=lambda b: (b.x0 >= middle - gutter, -b.y1, b.x0)))
        band.clear()

    for box in sorted(boxes, key=lambda b: (-b.y1, b.x0)):
        if box.x0 < middle - gutter and box.x1 > middle + gutter:
            close_band()
            ordered.append(box)
        else:
            band.append(box)
    close_band()
    return ordered


def _pdf_layout_blocks(lines: list[_PdfLine], outline: dict[str, int]) -> tuple[list[Block], str | None]:
    """Text boxes become paragraphs. Headings: the outline's titles where the PDF has an outline; otherwise short
    lines set larger than the body text (levels by size, largest first) or bold lines standing alone."""
    from collections import Counter

    weights = Counter()
    for line in lines:
        weights[line.size] += len(line.text)
    body = weights.most_common(1)[0][0] if weights else 0.0
    boxes: dict[int, list[_PdfLine]] = {}
    for line in lines:
        boxes.setdefault(line.box, []).append(line)
    heading_sizes = sorted({line.size for box in boxes.values() for line in box
                            if _looks_like_heading(box, body)}, reverse=True)
    sections = _Sections()
    first_page_heading = None
    page_texts = Counter(" ".join(l.text.split()) for box in boxes.values() for l in box if len(box) == 1)
    pages = len({line.page for line in lines})
    for box in boxes.values():
        text = "\n".join(line.text for line in box)
        joined = " ".join(text.split())
        if not joined or re.fullmatch(r"(page\s*)?\d+(\s*(of|/)\s*\d+)?", joined, re.IGNORECASE):
            continue  # page numbers
        if pages >= 3 and len(box) == 1 and page_texts[joined] >= max(3, pages // 2):
            continue  # running headers and footers repeated on most pages
        if outline:
            level = outline.get(joined)
            if level is None:
                # An outline title may share its text box with the paragraph that follows it.
                head = " ".join(box[0].text.split())
                if head in outline and len(box) > 1:
                    sections.heading(outline[head], head)
                    sections.add_text(_join_lines([line.text for line in box[1:]]))
                    continue
                sections.continue_text(_join_lines([line.text for line in box]))
                continue
            sections.heading(level, joined)
            if first_page_heading is None and box[0].page == 1:
                first_page_heading = joined
        elif _looks_like_heading(box, body):
            level = heading_sizes.index(box[0].size) + 1 if box[0].size in heading_sizes else len(heading_sizes)
            sections.heading(max(1, level), joined)
            if first_page_heading is None and box[0].page == 1:
                first_page_heading = joined
        else:
            sections.continue_text(_join_lines([line.text for line in box]))
    sections.flush()
    return sections.blocks, _largest_first_page_line(lines) or first_page_heading


def _largest_first_page_line(lines: list[_PdfLine]) -> str | None:
    """The first page's text set in its largest type (consecutive lines of one box joined): a PDF's title where its
    metadata has none, rather than whatever small line (a partner's credit, a journal's name) comes first."""
    first_page = [line for line in lines if line.page == 1 and re.search(r"[A-Za-z]{2}", line.text)]
    if not first_page:
        return None
    largest = max(line.size for line in first_page)
    box = next(line.box for line in first_page if line.size == largest)
    title = " ".join(" ".join(line.text for line in first_page if line.box == box and line.size == largest).split())
    return title[:300] or None





def _looks_like_heading(box: list[_PdfLine], body: float) -> bool:
    text = " ".join(" ".join(line.text for line in box).split())
    if len(box) > 3 or not text or len(text) > 150 or text.endswith((".", ",", ";")) or not re.search(r"[A-Za-z]", text):
        return False
    larger = all(line.size >= body * 1.15 for line in box)
    bold_alone = all(line.bold for line in box) and all(line.size >= body * 0.99 for line in box) and len(text) <= 100
    return larger or bold_alone


def _join_lines(lines: list[str]) -> str:
    """A text box's lines as one paragraph: a word hyphenated at a line's end joined, other lines joined by a space;
    a list item starting a line starts its own paragraph."""
    paragraphs: list[str] = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if paragraphs and not re.match(r"^([-•▪◦*]|\d+[.)])\s", line):
            previous = paragraphs[-1]
            if re.search(r"\w-$", previous) and line[:1].islower():
                paragraphs[-1] = previous[:-1] + line
            else:
                paragraphs[-1] = f"{previous} {line}"
        else:
            paragraphs.append(line)
    return "\n\n".join(paragraphs)


def _pdf_outline(reader) -> dict[str, int]:
    levels: dict[str, int] = {}

    def walk(items, depth: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
            else:
                levels[" ".join(clean_text(str(item.title)).split())] = depth

    try:
        walk(reader.outline, 1)
    except Exception:  # a damaged outline costs the headings, not the text
        return {}
    return levels


def _docx_blocks(path: Path) -> tuple[dict, list[Block], str | None]:
    """Body paragraphs and tables in reading order (nested tables inside their cell, merged cells once), then the
    distinct text of the headers and footers; headings from the paragraph styles."""
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    from vital_pipelines.spreadsheets.safety import UnsafeWorkbookError, check_zip_package

    try:
        with zipfile.ZipFile(path) as archive:
            check_zip_package(path, archive, kind="document")
    except zipfile.BadZipFile:
        raise ExtractionError(path, "the DOCX is damaged or not a Word document (not a zip package)") from None
    except UnsafeWorkbookError as error:
        raise ExtractionError(path, str(error).removeprefix(f"{path.name}: ")) from None
    try:
        document = docx.Document(str(path))
        sections = _Sections()
        first_heading = None
        words_before = 0
        for item in document.iter_inner_content():
            if hasattr(item, "rows"):
                sections.table(_docx_rows(item))
                continue
            text = " ".join(clean_text(item.text).split())
            if not text:
                continue
            style = (item.style.name if item.style is not None else "") or ""
            match = re.match(r"Heading (\d)", style)
            if match or style == "Title":
                sections.heading(int(match.group(1)) if match else 1, text)
                if first_heading is None and words_before < 200:
                    first_heading = text
            else:
                sections.add_text(text)
                words_before += len(text.split())
        sections.flush()
        seen: set[str] = set()
        sections.path.clear()
        for section in document.sections:
            for part in (section.header, section.footer, section.first_page_header, section.first_page_footer):
                if part.is_linked_to_previous and part is not section.header:
                    continue
                for item in part.iter_inner_content():
                    rows = _docx_rows(item) if hasattr(item, "rows") else [[item.text]]
                    text = " ".join(" ".join(clean_text(cell).split()) for row in rows for cell in row).strip()
                    if text and text not in seen and not re.fullmatch(r"(page\s*)?\d+(\s*(of|/)\s*\d+)?", text, re.I):
                        seen.add(text)
                        sections.add_text(text)
        properties = document.core_properties
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as error:
        raise ExtractionError(path, f"the DOCX is damaged or not a Word document ({error.__class__.__name__})") from None
    except Exception as error:  # lxml and zipfile raise their own types on damaged packages
        raise ExtractionError(path, f"the DOCX cannot be read ({error.__class__.__name__}: {error})") from None
    meta = {key: value for key, value in (("title", properties.title), ("domain", properties.subject)) if value}
    return meta, sections.blocks, first_heading


def _docx_rows(table) -> list[list[str]]:
    """A table's rows of cell texts; a horizontally merged cell counted once; a cell's nested tables follow its
    paragraphs, row by row."""
    rows: list[list[str]] = []
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if cell._tc is previous:
                continue
            previous = cell._tc
            parts: list[str] = []
            for item in cell.iter_inner_content():
                if hasattr(item, "rows"):
                    parts.extend("; ".join(c for c in nested if c) for nested in _docx_rows(item))
                elif item.text.strip():
                    parts.append(item.text)
            cells.append(" ".join(clean_text(" ".join(parts)).split()))
        rows.append(cells)
    return rows


_JUNK_TITLE = re.compile(r"^(untitled|document\d*|microsoft (word|powerpoint) - .*|.*\.(docx?|pdf|md|txt|pptx?))$",
                         re.IGNORECASE)


def title_from_name(path: Path) -> str:
    """The file name without its extensions ("Neuro Spending.pdf.md" → "Neuro Spending"), separators as spaces."""
    name = path.name
    while Path(name).suffix.lower() in _NAME_EXTENSIONS and Path(name).stem:
        name = Path(name).stem
    return " ".join(name.replace("_", " ").split()) or path.name


def extract(path: Path, slug: str, *, sha256: str | None = None) -> Document:
    """Read one document into clean blocks; raises `ExtractionError` when it cannot be read. `sha256`: the file's
    hash when the caller has already computed it. The title: the front matter's or the file's metadata, else the
    first heading of the first page (the first heading before any text, for Markdown and plain text), else the
    file name without its extensions."""
    source_type = SOURCE_TYPES.get(path.suffix.lower())
    if source_type is None:
        raise ExtractionError(path, f"unsupported file type {path.suffix!r} (supported: {', '.join(sorted(SOURCE_TYPES))})")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ExtractionError(path, f"the file is {size / 1e6:.0f} MB, over the {MAX_FILE_BYTES / 1e6:.0f} MB limit")
    if size == 0:
        raise ExtractionError(path, "the file is empty")
    if source_type in ("markdown", "text"):
        meta, body = _split_front_matter(_read_text_file(path), path)
        blocks = _markdown_blocks(body) if source_type == "markdown" else _plain_text_blocks(body)
        first_heading = blocks[0].headings[0] if blocks and blocks[0].headings else None
    elif source_type == "pdf":
        meta, blocks, first_heading = _pdf_blocks(path)
    else:
        meta, blocks, first_heading = _docx_blocks(path)
    if not blocks:
        raise ExtractionError(path, "the document has no text")
    stated = " ".join(clean_text(str(meta.get("title") or "")).split())
    title = (stated if stated and not _JUNK_TITLE.match(stated) else None) or first_heading or title_from_name(path)
    front = {k: (str(v) if k in FRONT_MATTER_FIELDS else v) for k, v in meta.items()}
    front["title"] = title
    return Document(slug=slug, path=path, source_type=source_type, title=title, front_matter=_jsonable(front),
                    blocks=blocks, file_sha256=sha256 or file_sha256(path), byte_size=size)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
