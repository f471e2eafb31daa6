"""Inspecting a workbook before any reader touches it.

The readers have failure modes that no exception catches (DESIGN.md): calamine allocates the whole cell range
it finds, so a tiny file with one far cell can abort the process; no reader limits decompression. So the package
is checked as a zip first (entry count, uncompressed size, ratio); the workbook, shared strings and styles parts
go through defusedxml (no DTDs or entities); and each sheet's XML is scanned to learn what the readers would hide:
hidden sheets, merged cells, formulas with and without a stored value, and the real range of the data (whatever
`<dimension>` claims). The scan is a census in polars' regex engine (see `_CENSUS`) where the sheet is in the plain
form Excel writes, and Python's patterns for every form of tag where it is not.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import polars as pl
from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml import ElementTree as SafeET

_NS = {
    "main": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "rel": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "pkgrel": "http://schemas.openxmlformats.org/package/2006/relationships",
}
_MAIN = "{%s}" % _NS["main"]
_CELL_REF = re.compile(r"^([A-Z]{1,3})(\d+)$")
_MAX_LISTED = 50
_XML_PARTS = ("xl/sharedStrings.xml", "xl/styles.xml")


@dataclass(frozen=True)
class Limits:
    """Generated and real registry workbooks decompress about 8× (a 25 MB, 335,000-row workbook to about 200 MB);
    sheet XML that expands 50× or more, or a package past 300 MB, is a bomb, not a registry."""

    max_file_bytes: int = 50 * 1024 * 1024
    max_uncompressed_bytes: int = 300 * 1024 * 1024
    max_compression_ratio: float = 50.0
    max_zip_entries: int = 2_000
    max_declared_cells: int = 20_000_000
    max_rows: int = 1_048_576


class UnsafeWorkbookError(ValueError):
    """The file cannot be read safely or is not a workbook; the message names the file and the reason."""


@dataclass
class SheetInfo:
    name: str
    path: str
    visible: bool
    declared_range: str | None = None
    first_row: int | None = None
    first_col: int | None = None
    last_row: int = 0
    last_col: int = 0
    last_cell: str | None = None
    merged_ranges: list[str] = field(default_factory=list)
    formulas_without_value: list[str] = field(default_factory=list)
    formulas_with_value: list[str] = field(default_factory=list)

    @property
    def used_cells(self) -> int:
        """The cells of the rectangle from the first to the last cell that holds something: what a reader allocates,
        whatever `<dimension>` claims."""
        if self.first_row is None or self.first_col is None:
            return 0
        return (self.last_row - self.first_row + 1) * (self.last_col - self.first_col + 1)


@dataclass
class WorkbookInfo:
    path: Path
    sheets: dict[str, SheetInfo]


def column_letter(index: int) -> str:
    """1 → A, 27 → AA."""
    letters = ""
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def column_index(letters: str) -> int:
    index = 0
    for char in letters:
        index = index * 26 + ord(char) - 64
    return index


def _range_cells(ref: str) -> int:
    parts = ref.split(":")
    coords = [_CELL_REF.match(p.replace("$", "")) for p in parts]
    if not all(coords):
        return 0
    if len(coords) == 1:
        return 1
    (c1, r1), (c2, r2) = ((m.group(1), int(m.group(2))) for m in coords)
    return (abs(column_index(c2) - column_index(c1)) + 1) * (abs(r2 - r1) + 1)


def check_zip_package(path: Path, archive: zipfile.ZipFile, limits: Limits = Limits(), kind: str = "workbook") -> None:
    """Refuse an Office package (xlsx, docx) whose entry count, decompressed size or compression ratio is absurd."""
    entries = archive.infolist()
    if len(entries) > limits.max_zip_entries:
        raise UnsafeWorkbookError(f"{path.name}: the {kind} package holds {len(entries)} files "
                                  f"(limit {limits.max_zip_entries}); refusing to read it.")
    total = sum(e.file_size for e in entries)
    if total > limits.max_uncompressed_bytes:
        raise UnsafeWorkbookError(f"{path.name}: the {kind} decompresses to {total:,} bytes "
                                  f"(limit {limits.max_uncompressed_bytes:,}); refusing to read it.")
    for entry in entries:
        if entry.compress_size and entry.file_size / entry.compress_size > limits.max_compression_ratio \
                and entry.file_size > 1_000_000:
            raise UnsafeWorkbookError(f"{path.name}: {entry.filename} expands {entry.file_size / entry.compress_size:.0f}× "
                                      f"(limit {limits.max_compression_ratio:.0f}×), the signature of a zip bomb; "
                                      "refusing to read it.")


def sheet_paths(archive: zipfile.ZipFile) -> list[tuple[str, str, bool]]:
    """(name, part in the package, visible) of each sheet, in the workbook's order."""
    workbook = SafeET.fromstring(archive.read("xl/workbook.xml"))
    rels = SafeET.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target") for r in rels.findall("pkgrel:Relationship", _NS)}
    sheets = []
    for sheet in workbook.iterfind("main:sheets/main:sheet", _NS):
        target = targets.get(sheet.get("{%s}id" % _NS["rel"]), "")
        full = target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)
        sheets.append((sheet.get("name"), full, sheet.get("state", "visible") == "visible"))
    return sheets


def _end_cell(info: SheetInfo, cell_ref: str | None, has_formula: bool, has_value: bool, path: Path,
              limits: Limits) -> None:
    match = _CELL_REF.match(cell_ref or "")
    if not match:
        return
    row, col = int(match.group(2)), column_index(match.group(1))
    if row > limits.max_rows:
        raise UnsafeWorkbookError(f"{path.name} › {info.name}: cell {cell_ref} lies beyond the "
                                  f"{limits.max_rows:,} rows a worksheet may have.")
    if has_formula and not has_value:
        info.formulas_without_value.append(cell_ref)
    elif has_formula and len(info.formulas_with_value) < _MAX_LISTED:
        info.formulas_with_value.append(cell_ref)
    if has_value or has_formula:
        info.first_row = row if info.first_row is None else min(info.first_row, row)
        info.first_col = col if info.first_col is None else min(info.first_col, col)
        if row >= info.last_row and col >= info.last_col:
            info.last_cell = cell_ref
        info.last_row = max(info.last_row, row)
        info.last_col = max(info.last_col, col)


# One linear pass over the sheet's tags, prefix-blind (`<c>` and `<x:c>`): no backtracking, no entity expansion.
_TAG = re.compile(rb"<(/?)(?:[A-Za-z_][\w.-]*:)?(c|f|v|t|mergeCell|dimension)\b([^>]*)>")
_REF = re.compile(rb'\bref="([^"]*)"')
_R = re.compile(rb'\br="([^"]*)"')
# A DTD is where entities are declared: a part without one cannot expand or fetch any. Searched in the raw bytes,
# which holds for UTF-8 (and ASCII) parts, what Excel writes; other encodings go through defusedxml's parser.
_DECLARATION = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_ENCODING = re.compile(rb'^\s*<\?xml[^>]*?\bencoding\s*=\s*["\']([A-Za-z0-9._-]+)["\']')
_BYTE_SCANNABLE = {b"utf-8", b"utf8", b"us-ascii", b"ascii"}
_FORMULA = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?f\b")
_RANGE_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(mergeCell|dimension)\b([^>]*)>")
# A cell (any prefix, `r` among its attributes) whose <v> or <t> holds at least one character before its end tag.
_VALUED_CELL = re.compile(
    rb'<(?:[A-Za-z_][\w.-]*:)?c\b[^>]*?\br="\$?([A-Z]{1,3})\$?([0-9]+)"[^>]*(?<!/)>'
    rb'(?:(?!</(?:[A-Za-z_][\w.-]*:)?c>).)*?<(?:[A-Za-z_][\w.-]*:)?[vt]\b[^>]*(?<!/)>[^<]', re.DOTALL)


# One pass of polars' (Rust, linear-time) regex engine over a UTF-8 sheet: every cell in the plain form Excel and
# openpyxl write (`<c r="B7" …><v>…` or `<c r="B7" …><is><t>…`, holding at least one character), and every other
# value or formula tag in any form (any prefix, attributes, empty, rich text, a second value in a cell). A value
# tag a plain cell consumed is not seen again, so a sheet whose census finds no other tag has no valued cell but
# the plain ones. Tag names cannot hold whitespace, `<`, `>`, `/`, hence the prefix class, which errs wide.
_CENSUS = (r'<c r="[A-Z]{1,3}[0-9]{1,7}"(?:[^>]*[^>/])?><(?:v|is><t)(?:\s[^>]*[^>/])?>[^<]'
           r'|<(?:[^\s<>/:]+:)?[vtf][\s/>]')
_PLAIN_CELL = r'^<c r="([A-Z]{1,3})([0-9]{1,7})"'


_CENSUS_CHUNK_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class _Bounds:
    """Where a sheet's valued cells are: first and last row, the column letters used, those used on the last row."""

    first_row: int
    last_row: int
    letters: frozenset[str]
    on_last_row: frozenset[str]

    @staticmethod
    def of(cells: pl.DataFrame) -> "_Bounds | None":
        """The bounds of (letters, row) frame `cells`; None when it is empty."""
        if cells.height == 0:
            return None
        first_row, last_row = cells.select(pl.col("row").min().alias("a"), pl.col("row").max().alias("b")).row(0)
        return _Bounds(first_row, last_row, frozenset(cells["letters"].unique().to_list()),
                       frozenset(cells.filter(pl.col("row") == last_row)["letters"].unique().to_list()))

    def merge(self, other: "_Bounds | None") -> "_Bounds":
        if other is None:
            return self
        last_row = max(self.last_row, other.last_row)
        return _Bounds(min(self.first_row, other.first_row), last_row, self.letters | other.letters,
                       frozenset().union(*(b.on_last_row for b in (self, other) if b.last_row == last_row)))


@dataclass(frozen=True)
class _Census:
    has_formula: bool
    plain: bool  # every valued cell is in the plain form, so `bounds` are those of all of them
    bounds: _Bounds | None


def _chunks(data: bytes, size: int) -> list[tuple[int, int]]:
    """(start, end) of pieces of about `size` bytes, each cut just before a `<row`: no census match holds `<row`
    (a cell's match has `<` only before `c`, `v`, `is` and `t`; any other tag's match only at its start), so none is
    cut in two, and a cut before an ASCII `<` is a character boundary."""
    cuts, start = [], 0
    while len(data) - start > size:
        cut = data.find(b"<row", start + size)
        if cut == -1:
            break
        cuts.append((start, cut))
        start = cut
    return [*cuts, (start, len(data))]


def _census(data: bytes) -> _Census | None:
    """What the census pattern tells of a sheet, piece by piece (so memory stays bounded on a large sheet), or
    None when the sheet is not UTF-8 text."""
    has_formula, plain, bounds = False, True, None
    for start, end in _chunks(data, _CENSUS_CHUNK_BYTES):
        try:
            text = data[start:end].decode("utf-8")
        except UnicodeDecodeError:
            return None
        tags = pl.Series([text]).str.extract_all(_CENSUS).explode().drop_nulls()
        del text
        found = tags.str.extract_groups(_PLAIN_CELL).struct.unnest().rename({"1": "letters", "2": "row"})
        others = tags.filter(found["letters"].is_null())
        if others.len():
            plain = False
            has_formula = has_formula or bool(others.str.contains(r"f[\s/>]$").any())
        elif plain:
            piece = _Bounds.of(found.with_columns(pl.col("row").cast(pl.Int64)))
            bounds = piece.merge(bounds) if piece is not None else bounds
    return _Census(has_formula, plain, bounds if plain else None)


def _valued_cells(data: bytes, info: SheetInfo, path: Path, limits: Limits) -> _Bounds | None:
    """The bounds of every cell holding a value, by the general pattern (any prefix, attribute order)."""
    found = _VALUED_CELL.findall(data)
    for letters, row in found:
        if len(row) > 7 and int(row) > limits.max_rows:  # before any 64-bit column holds it
            raise UnsafeWorkbookError(f"{path.name} › {info.name}: cell {letters.decode('ascii')}{int(row)} "
                                      f"lies beyond the {limits.max_rows:,} rows a worksheet may have.")
    return _Bounds.of(pl.DataFrame({"letters": [letters.decode("ascii") for letters, _row in found],
                                    "row": [int(row) for _letters, row in found]},
                                   schema={"letters": pl.Utf8, "row": pl.Int64}))


def _scan_sheet(archive: zipfile.ZipFile, info: SheetInfo, path: Path, limits: Limits) -> None:
    """What the readers would hide in one sheet, from its XML read once (bounded by the package limits): where the
    data really is, merged cells, formulas with and without a stored value, the declared range."""
    data = archive.read(info.path)
    _refuse_declarations(archive, info.path, data)
    census = _census(data)
    if census is None:  # not UTF-8: `<f` or `:f` must occur for a formula to be there
        has_formula = (b"<f" in data or b":f" in data) and _FORMULA.search(data) is not None
    else:
        has_formula = census.has_formula
    if has_formula:
        _scan_every_tag(data, info, path, limits)
    elif census is not None and census.plain:
        _scan_values_only(data, info, path, limits, census.bounds)
    else:
        _scan_values_only(data, info, path, limits, _valued_cells(data, info, path, limits))
    _check_used_range(info, path, limits)


def _scan_values_only(data: bytes, info: SheetInfo, path: Path, limits: Limits, bounds: _Bounds | None) -> None:
    """A sheet without formulas: where its valued cells are (`bounds`, from the census or the general pattern,
    whose tempered part stops at the cell's end tag), then merged ranges and the declared range."""
    if bounds is not None:
        if bounds.last_row > limits.max_rows:
            raise UnsafeWorkbookError(f"{path.name} › {info.name}: cell {min(bounds.on_last_row)}{bounds.last_row} "
                                      f"lies beyond the {limits.max_rows:,} rows a worksheet may have.")
        columns = {letters: column_index(letters) for letters in bounds.letters}
        info.first_row, info.last_row = bounds.first_row, bounds.last_row
        info.first_col, info.last_col = min(columns.values()), max(columns.values())
        info.last_cell = max(bounds.on_last_row, key=columns.__getitem__) + str(bounds.last_row)
    for marker in (b"dimension", b"mergeCell"):  # a memory search to each candidate, the pattern only there
        at = data.find(marker)
        while at != -1:
            found_tag = _RANGE_TAG.match(data, data.rfind(b"<", 0, at))
            if found_tag is not None and found_tag.start(1) == at:
                _range_tag(*found_tag.groups(), info, path, limits)
            at = data.find(marker, at + len(marker))


def _range_tag(tag: bytes, attributes: bytes, info: SheetInfo, path: Path, limits: Limits) -> None:
    found = _REF.search(attributes)
    if tag == b"mergeCell":
        if found:
            info.merged_ranges.append(found.group(1).decode("ascii", "replace"))
        return
    info.declared_range = found.group(1).decode("ascii", "replace") if found else None
    cells = _range_cells(info.declared_range or "")
    if cells > limits.max_declared_cells:
        raise UnsafeWorkbookError(
            f"{path.name} › {info.name}: the sheet declares the range {info.declared_range} "
            f"({cells:,} cells, limit {limits.max_declared_cells:,}); a reader would try to allocate "
            "all of it. Delete the empty rows and columns beyond the data and save again.")


def _scan_every_tag(data: bytes, info: SheetInfo, path: Path, limits: Limits) -> None:
    """A sheet with formulas: one pass over its tags, noting which formulas carry a stored value."""
    cell_ref = None
    has_formula = has_value = False
    for match in _TAG.finditer(data):
        closing, tag, attributes = match.groups()
        empty = attributes.endswith(b"/")
        if tag == b"c":
            if not closing:
                found = _R.search(attributes)
                cell_ref = found.group(1).decode("ascii", "replace") if found else None
                has_formula = has_value = False
                if not empty:
                    continue
            _end_cell(info, cell_ref, has_formula, has_value, path, limits)
            cell_ref = None
        elif closing:
            continue
        elif tag == b"f":
            has_formula = True
        elif tag in (b"v", b"t"):
            has_value = has_value or (not empty and data[match.end():match.end() + 1] not in (b"<", b""))
        elif tag in (b"mergeCell", b"dimension"):
            _range_tag(tag, attributes, info, path, limits)


def _check_used_range(info: SheetInfo, path: Path, limits: Limits) -> None:
    if info.used_cells > limits.max_declared_cells:
        start = f"{column_letter(info.first_col)}{info.first_row}"
        end = f"{column_letter(info.last_col)}{info.last_row}"
        raise UnsafeWorkbookError(
            f"{path.name} › {info.name}: cells from {start} to {end} hold data ({info.used_cells:,} cells, limit "
            f"{limits.max_declared_cells:,}); a reader would allocate all of them. Delete the stray cells far from "
            f"the data (the farthest is near {info.last_cell or end}) and save again.")


def _refuse_declarations(archive: zipfile.ZipFile, member: str, data: bytes | None = None) -> None:
    """Refuse a package part that declares a DTD or entities: a byte search in a UTF-8 part, defusedxml's streaming
    parse in a part encoded otherwise (a UTF-16 `<!DOCTYPE` has no such bytes)."""
    data = archive.read(member) if data is None else data
    head = data[:200].removeprefix(b"\xef\xbb\xbf")
    declared = _ENCODING.match(head)
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in head[:4] \
            or (declared and declared.group(1).lower() not in _BYTE_SCANNABLE):
        _parse_refusing_declarations(archive, member)
    elif _DECLARATION.search(data):
        raise EntitiesForbidden(member, None, None, None, None, None)


def _parse_refusing_declarations(archive: zipfile.ZipFile, member: str) -> None:
    """Stream a package part through defusedxml only to refuse DTDs and entity declarations in it."""
    with archive.open(member) as stream:
        for _event, element in SafeET.iterparse(stream, events=("end",)):
            element.clear()


def check_file(path: Path, limits: Limits = Limits()) -> None:
    """Refuse a source file (workbook, CSV, JSON) that is missing or larger than the limit."""
    if not path.is_file():
        raise UnsafeWorkbookError(f"{path}: no such file.")
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise UnsafeWorkbookError(f"{path.name}: the file is {size:,} bytes (limit {limits.max_file_bytes:,}).")


def inspect_workbook(path: Path, limits: Limits = Limits(), *,
                     on_package: Callable[[WorkbookInfo], None] | None = None) -> WorkbookInfo:
    """Check that `path` is a readable, sane .xlsx and describe its sheets; raise UnsafeWorkbookError if not.
    `on_package` is called once the package passed its zip and XML checks, with the sheets named but not yet
    scanned (to start an isolated reader while the scan goes on)."""
    path = Path(path)
    check_file(path, limits)
    if not zipfile.is_zipfile(path):
        raise UnsafeWorkbookError(f"{path.name}: not an Excel workbook (.xlsx); save it from Excel as "
                                  "'Excel Workbook (*.xlsx)'.")
    try:
        with zipfile.ZipFile(path) as archive:
            check_zip_package(path, archive, limits)
            names = set(archive.namelist())
            if "xl/workbook.xml" not in names or "xl/_rels/workbook.xml.rels" not in names:
                raise UnsafeWorkbookError(f"{path.name}: a zip file but not an Excel workbook (no xl/workbook.xml).")
            for member in _XML_PARTS:
                if member in names:
                    _refuse_declarations(archive, member)
            sheets = {name: SheetInfo(name=name, path=sheet_path, visible=visible)
                      for name, sheet_path, visible in sheet_paths(archive)}
            if on_package is not None:
                on_package(WorkbookInfo(path=path, sheets=sheets))
            for info in sheets.values():
                if info.path in names:
                    _scan_sheet(archive, info, path, limits)
    except UnsafeWorkbookError:
        raise
    except (DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden):
        raise UnsafeWorkbookError(f"{path.name}: the workbook's XML declares a DTD or entities, which Excel never "
                                  "writes (the signature of an entity-expansion attack such as 'billion laughs'); "
                                  "refusing to read it. Open and save it in Excel, or export it again.") from None
    except (zipfile.BadZipFile, KeyError, SafeET.ParseError, ValueError) as error:
        raise UnsafeWorkbookError(f"{path.name}: the workbook is damaged and cannot be read ({error}).") from None
    except Exception as error:  # defusedxml raises its own types for entity and DTD attacks
        raise UnsafeWorkbookError(f"{path.name}: refused while parsing ({type(error).__name__}: {error}).") from None
    return WorkbookInfo(path=path, sheets=sheets)
