"""Finding knowledge documents and turning each into clean text blocks with their heading path.

Markdown and plain text (with optional YAML front matter), PDF (pypdf; headings from the document outline) and
DOCX (python-docx; headings from the paragraph styles). A file that cannot be read raises `ExtractionError`
with its path and the reason; callers report it and carry on with the rest of the corpus.
"""

from __future__ import annotations

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


class ExtractionError(RuntimeError):
    """A document that cannot be read; the message names the file and the reason."""

    def __init__(self, path: Path, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class Block:
    """One paragraph of text under its heading path (outermost heading first)."""

    headings: tuple[str, ...]
    text: str


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


def document_slug(relative_path: str) -> str:
    """A stable partition key for a file: its path relative to the corpus, as a lowercase slug (extension kept,
    so `guide.md` and `guide.pdf` never collide)."""
    text = unicodedata.normalize("NFKD", relative_path).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return slug[:200] or "document"


def discover(folder: Path) -> dict[str, Path]:
    """Every supported document under `folder` (hidden files and folders skipped), by slug."""
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() in SOURCE_TYPES:
            found[document_slug(relative.as_posix())] = path
    return found


_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_HYPHENATED_BREAK = re.compile(r"(\w)-\n(?=[a-z])")


def clean_text(text: str) -> str:
    """NUL and other control characters, zero-width characters and soft hyphens removed; words hyphenated across
    a line break joined; runs of spaces collapsed; Unicode in NFC."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    text = _HYPHENATED_BREAK.sub(r"\1", text)
    text = text.replace("\u00a0", " ").replace("\t", " ")
    return re.sub(r"[ ]{2,}", " ", text)


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", clean_text(text)) if p.strip()]


def _enter_heading(path: list[tuple[int, str]], level: int, title: str) -> None:
    """A heading closes every open heading at its level or deeper, then opens itself."""
    path[:] = [(lvl, t) for lvl, t in path if lvl < level] + [(level, title)]


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def _markdown_blocks(body: str) -> list[Block]:
    """Blocks of a Markdown body: ATX headings set the path; fenced code stays one block."""
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    buffer: list[str] = []
    in_fence = False

    def flush() -> None:
        for paragraph in _paragraphs("\n".join(buffer)):
            blocks.append(Block(tuple(title for _, title in path), paragraph))
        buffer.clear()

    for line in clean_text(body).split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        heading = None if in_fence else _MD_HEADING.match(line)
        if heading:
            flush()
            level = len(heading.group(1))
            _enter_heading(path, level, heading.group(2).strip())
        elif re.match(r"^\s*([-*+]|\d+[.)])\s+", line) and buffer and buffer[-1].strip():
            buffer.append("\n" + line)
        else:
            buffer.append(line)
    flush()
    return blocks


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


def _pdf_blocks(path: Path) -> tuple[dict, list[Block]]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError(path, "the PDF is encrypted with a password")
        pages = [page.extract_text() or "" for page in reader.pages]
        outline = _pdf_outline(reader)
        info = reader.metadata or {}
    except ExtractionError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as error:
        raise ExtractionError(path, f"the PDF cannot be read ({error.__class__.__name__}: {error})") from None
    except Exception as error:  # pypdf raises many internal types on damaged files
        if "encrypt" in str(error).lower() or "crypt" in error.__class__.__name__.lower():
            raise ExtractionError(path, "the PDF is encrypted and cannot be decrypted") from None
        raise ExtractionError(path, f"the PDF cannot be read ({error.__class__.__name__}: {error})") from None
    text = "\n".join(pages)
    if not text.strip():
        raise ExtractionError(path, "the PDF has no text layer (image-only or scanned; OCR is not supported)")
    meta = {key: str(info.get(field)) for key, field in (("title", "/Title"), ("domain", "/Subject")) if info.get(field)}
    return meta, _lines_to_blocks(clean_text(text).split("\n"), outline)


def _pdf_outline(reader) -> dict[str, int]:
    levels: dict[str, int] = {}

    def walk(items, depth: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
            else:
                levels[" ".join(str(item.title).split())] = depth

    try:
        walk(reader.outline, 1)
    except Exception:  # a damaged outline costs the headings, not the text
        return {}
    return levels


def _lines_to_blocks(lines: list[str], heading_levels: dict[str, int]) -> list[Block]:
    """PDF text lines to blocks: lines equal to an outline title are headings; a line ending a sentence well short
    of the page width ends a paragraph."""
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    paragraph: list[str] = []
    width = max((len(line) for line in lines), default=0)

    def flush() -> None:
        if paragraph:
            blocks.append(Block(tuple(t for _, t in path), " ".join(" ".join(paragraph).split())))
            paragraph.clear()

    for raw in lines:
        line = " ".join(raw.split())
        if not line:
            flush()
            continue
        level = heading_levels.get(line)
        if level is not None:
            flush()
            _enter_heading(path, level, line)
            continue
        paragraph.append(line)
        if line.endswith((".", ":", "?", "!")) and len(line) < 0.8 * width:
            flush()
    flush()
    return blocks


def _docx_blocks(path: Path) -> tuple[dict, list[Block]]:
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
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as error:
        raise ExtractionError(path, f"the DOCX is damaged or not a Word document ({error.__class__.__name__})") from None
    except Exception as error:  # lxml and zipfile raise their own types on damaged packages
        raise ExtractionError(path, f"the DOCX cannot be read ({error.__class__.__name__}: {error})") from None
    blocks: list[Block] = []
    path_: list[tuple[int, str]] = []
    for paragraph in document.paragraphs:
        text = " ".join(clean_text(paragraph.text).split())
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        match = re.match(r"Heading (\d)", style)
        if match or style == "Title":
            level = int(match.group(1)) if match else 1
            _enter_heading(path_, level, text)
        else:
            blocks.append(Block(tuple(t for _, t in path_), text))
    properties = document.core_properties
    meta = {key: value for key, value in (("title", properties.title), ("domain", properties.subject)) if value}
    return meta, blocks


def extract(path: Path, slug: str, *, sha256: str | None = None) -> Document:
    """Read one document into clean blocks; raises `ExtractionError` when it cannot be read. `sha256`: the file's
    hash when the caller has already computed it."""
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
        blocks = _markdown_blocks(body) if source_type == "markdown" else [Block((), p) for p in _paragraphs(body)]
    elif source_type == "pdf":
        meta, blocks = _pdf_blocks(path)
    else:
        meta, blocks = _docx_blocks(path)
    if not blocks:
        raise ExtractionError(path, "the document has no text")
    title = str(meta.get("title") or _first_heading(blocks) or path.stem.replace("_", " ").replace("-", " "))
    front = {k: (str(v) if k in FRONT_MATTER_FIELDS else v) for k, v in meta.items()}
    front["title"] = title
    return Document(slug=slug, path=path, source_type=source_type, title=title, front_matter=_jsonable(front),
                    blocks=blocks, file_sha256=sha256 or file_sha256(path), byte_size=size)


def _first_heading(blocks: list[Block]) -> str | None:
    return next((b.headings[0] for b in blocks if b.headings), None)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
