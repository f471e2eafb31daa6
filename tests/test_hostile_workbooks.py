"""Hostile and damaged workbooks are refused in one sentence before a reader allocates anything, and the steward's
annotated copy is always whole, inert and never written over the source."""

from __future__ import annotations

import random
import re
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pytest

from vital_pipelines import config
from vital_pipelines.spreadsheets import report
from vital_pipelines.spreadsheets.safety import UnsafeWorkbookError, inspect_workbook
from vital_pipelines.spreadsheets.validation import Failure
from vital_pipelines.spreadsheets.workbooks import validate_registry_workbook


def _rewrite(path: Path, member: str, change) -> Path:
    """Rewrite one part of the package, as a hand-crafted file would have it."""
    with zipfile.ZipFile(path) as source:
        parts = {info.filename: source.read(info.filename) for info in source.infolist()}
    parts[member] = change(parts[member].decode("utf-8")).encode("utf-8")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)
    return path


def _small_workbook(tmp_path: Path) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "personas"
    sheet.append(["persona_key", "name"])
    sheet.append(["a-persona", "A"])
    sheet["Z1048576"] = "stray"
    path = tmp_path / "stray.xlsx"
    workbook.save(path)
    return path


def test_a_stray_far_cell_is_refused_whatever_the_dimension_claims(tmp_path):
    path = _rewrite(_small_workbook(tmp_path), "xl/worksheets/sheet1.xml",
                    lambda xml: re.sub(r'<dimension ref="[^"]*"/>', '<dimension ref="A1:B2"/>', xml))
    assert path.stat().st_size < 50_000
    with pytest.raises(UnsafeWorkbookError, match=r"cells from A1 to Z1048576 hold data \(27,262,976 cells.*"
                                                  r"Delete the stray cells.*Z1048576"):
        inspect_workbook(path)
    no_dimension = _rewrite(_small_workbook(tmp_path), "xl/worksheets/sheet1.xml",
                            lambda xml: re.sub(r'<dimension ref="[^"]*"/>', "", xml))
    with pytest.raises(UnsafeWorkbookError, match="Z1048576"):
        inspect_workbook(no_dimension)


def test_an_inflating_part_is_refused_by_its_ratio(tmp_path):
    path = shutil.copy(config.RAW_DIR / "personas.xlsx", tmp_path / "personas.xlsx")
    rng = random.Random(1)
    padding = bytes(rng.getrandbits(8) if i % 300 == 0 else 0 for i in range(12_000_000))
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/padding.bin", padding)
    with zipfile.ZipFile(path) as archive:
        entry = archive.getinfo("xl/media/padding.bin")
    ratio = entry.file_size / entry.compress_size
    assert 50 < ratio < 200, "within what the old limit let through"
    with pytest.raises(UnsafeWorkbookError, match=r"padding.bin expands \d+× \(limit 50×\).*zip bomb"):
        inspect_workbook(path)


def test_an_entity_expansion_in_shared_strings_is_refused_by_name(tmp_path):
    path = shutil.copy(config.RAW_DIR / "personas.xlsx", tmp_path / "personas.xlsx")
    laughs = ('<?xml version="1.0"?><!DOCTYPE sst [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>')

    def bomb(xml: str) -> str:
        body = re.sub(r"^<\?xml[^>]*\?>", "", xml)
        return laughs + body.replace("<t>", "<t>&lol2;", 1)

    with zipfile.ZipFile(path) as archive:
        has_shared = "xl/sharedStrings.xml" in archive.namelist()
    if not has_shared:
        pytest.fail("the committed workbook is expected to keep its strings in xl/sharedStrings.xml")
    _rewrite(path, "xl/sharedStrings.xml", bomb)
    with pytest.raises(UnsafeWorkbookError, match="entity-expansion attack"):
        inspect_workbook(path)


@pytest.mark.parametrize("encode", [
    lambda xml: xml.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>').encode("utf-16"),
    lambda xml: xml.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16LE"?>').encode("utf-16-le"),
    lambda xml: xml.replace("<!DOCTYPE", "<!doctype").encode("utf-8"),
], ids=["utf-16 with BOM", "utf-16-le declared", "lower-case doctype"])
def test_an_entity_declaration_is_refused_whatever_the_encoding(tmp_path, encode):
    """A UTF-16 part hides `<!DOCTYPE` from a byte search: such parts are parsed by defusedxml instead."""
    path = shutil.copy(config.RAW_DIR / "personas.xlsx", tmp_path / "personas.xlsx")
    laughs = '<?xml version="1.0"?><!DOCTYPE sst [<!ENTITY lol "lol">]><sst xmlns="{ns}"><si><t>&lol;</t></si></sst>'
    xml = laughs.format(ns="http://schemas.openxmlformats.org/spreadsheetml/2006/main")
    with zipfile.ZipFile(path) as source:
        parts = {info.filename: source.read(info.filename) for info in source.infolist()}
    parts["xl/sharedStrings.xml"] = encode(xml)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)
    with pytest.raises(UnsafeWorkbookError, match="entity-expansion attack"):
        inspect_workbook(path)


def test_a_formula_with_a_cached_value_loads_its_value_with_a_warning(raw):
    workbook = openpyxl.load_workbook(raw / "personas.xlsx")
    headers = [c.value for c in workbook["personas"][1]]
    letter = openpyxl.utils.get_column_letter(headers.index("title") + 1)
    workbook["personas"][f"{letter}5"] = '=UPPER("msl")'
    workbook.save(raw / "personas.xlsx")
    _rewrite(raw / "personas.xlsx", "xl/worksheets/sheet1.xml",
             lambda xml: xml.replace('<f>UPPER("msl")</f><v></v>', '<f>UPPER("msl")</f><v>MSL</v>'))
    result = validate_registry_workbook(raw / "personas.xlsx", raw_dir=raw, isolated=False)["personas"]
    [warning] = [w for w in result.warnings if w.rule == "formula"]
    assert warning.cell == f"{letter}5" and "its last calculated value is what loads" in warning.message
    assert result.valid.filter(result.valid["_row"] == 5)["title"].to_list() == ["MSL"]


def test_the_annotated_copy_is_inert_atomic_and_never_the_source(raw, tmp_path):
    workbook = openpyxl.load_workbook(raw / "personas.xlsx")
    workbook["personas"]["C3"] = "=1+1"
    workbook.save(raw / "personas.xlsx")
    failures = [Failure("personas.xlsx", "personas", 4, "title", "C", "x", "format", "a message with a \x0b control")]
    out = report.annotate_workbook(raw / "personas.xlsx", failures, tmp_path / "out" / "personas.annotated.xlsx")
    with zipfile.ZipFile(out) as archive:
        assert "<f>" not in archive.read("xl/worksheets/sheet1.xml").decode()
    assert openpyxl.load_workbook(out)["personas"]["C4"].comment.text == \
        "[failure: not in the expected format] a message with a  control"
    assert [p.name for p in out.parent.iterdir()] == ["personas.annotated.xlsx"], "no temporary file left behind"
    with pytest.raises(report.AnnotationError, match="would overwrite personas.xlsx"):
        report.annotate_workbook(raw / "personas.xlsx", failures, raw / "personas.xlsx")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(report.AnnotationError, match="could not be written"):
        report.annotate_workbook(raw / "personas.xlsx", failures, blocker / "copy.xlsx")


def _scanned(tmp_path: Path, sheet_xml: str):
    from vital_pipelines.spreadsheets.safety import Limits, SheetInfo, _scan_sheet

    package = tmp_path / "scan.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("xl/worksheets/sheet1.xml", sheet_xml)
    info = SheetInfo(name="s", path="xl/worksheets/sheet1.xml", visible=True)
    with zipfile.ZipFile(package) as archive:
        _scan_sheet(archive, info, package, Limits())
    return info


def test_the_scan_reads_prefixed_tags_any_attribute_order_and_tells_values_from_formulas(tmp_path):
    info = _scanned(tmp_path, (
        '<x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><x:dimension ref="A1"/>'
        '<x:sheetData><x:row r="3"><x:c s="1" r="B3" t="s"><x:v>0</x:v></x:c><x:c r="C3"><x:f>1+1</x:f><x:v></x:v></x:c>'
        '<x:c r="D3" t="inlineStr"><x:is><x:t>text</x:t></x:is></x:c><x:c r="E3" s="2"/></x:row>'
        '<x:row r="9"><x:c r="F9"><x:f>A1</x:f><x:v>2</x:v></x:c><x:c r="Z9"/></x:row></x:sheetData>'
        '<x:mergeCells><x:mergeCell ref="B3:C3"/></x:mergeCells><x:cols><x:col min="1" max="2"/></x:cols>'
        '</x:worksheet>'))
    assert (info.first_row, info.first_col, info.last_row, info.last_col) == (3, 2, 9, 6), "styled empty cells are not data"
    assert info.formulas_without_value == ["C3"] and info.formulas_with_value == ["F9"]
    assert info.merged_ranges == ["B3:C3"] and info.declared_range == "A1"


def test_a_doctype_in_sheet_xml_is_refused_as_an_entity_attack(tmp_path):
    from defusedxml import EntitiesForbidden

    with pytest.raises(EntitiesForbidden):
        _scanned(tmp_path, '<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "aaaa">]><worksheet><sheetData>'
                           '<row r="1"><c r="A1" t="inlineStr"><is><t>&a;</t></is></c></row></sheetData></worksheet>')


PLAIN = b'<sheetData><row r="2"><c r="B2" t="s"><v>0</v></c><c r="C2" t="inlineStr"><is><t>x</t></is></c></row>'


@pytest.mark.parametrize("xml", [
    b'<x:sheetData><x:row r="3"><x:c s="1" r="B3" t="s"><x:v>0</x:v></x:c><x:c r="C3"><x:v></x:v></x:c>'
    b'<x:c r="D3" t="inlineStr"><x:is><x:t>text</x:t></x:is></x:c><x:c r="E3" s="2"/></x:row>'
    b'<x:row r="9"><x:c r="F9"><x:v>2</x:v></x:c><x:c r="Z9"/><x:c r="AA9"><x:v/></x:c></x:row></x:sheetData>'
    b'<x:mergeCells><x:mergeCell ref="B3:C3"/></x:mergeCells>',
    b'<sheetData><row r="2"><c r="C2" t="inlineStr"><is><t xml:space="preserve"> </t></is></c></row>'
    b'<row r="40"><c t="n" r="AB40"><v>1</v></c><c r="AC41"></c></row></sheetData><dimension ref="A1:AC41"/>',
    # The plain form (what Excel writes), then the same with one far cell written otherwise: each must be found.
    PLAIN + b'<row r="3"><c r="D3"><v></v></c><c r="E3" t="inlineStr"><is><t></t></is></c></row></sheetData>',
    PLAIN + b'<row r="99"><c s="1" r="Z99"><v>2</v></c></row></sheetData>',
    PLAIN + b'<row r="99"><c r="Z99"><v xml:space="preserve">2</v></c></row></sheetData>',
    PLAIN + b'<row r="99"><c r="Z99" t="inlineStr"><is><r><t>rich</t></r></is></c></row></sheetData>',
    PLAIN + b'<row r="99"><x:c r="Z99"><v>3</v></x:c></row></sheetData>',
    PLAIN + b'<row r="99"><c r="Z99"><x:v>3</x:v></c></row></sheetData>',
    PLAIN + b'<row r="99"><c r="Z99"><v\n>3</v></c></row></sheetData>',
    PLAIN + b'<row r="99"><c r="Z99" t="inlineStr"><is><t\txml:space="preserve">4</t></is></c></row></sheetData>',
], ids=["prefixed", "attribute order", "plain", "far, attribute order", "far, attribute on v", "far, rich text",
        "far, prefixed cell", "far, prefixed value", "far, newline in tag", "far, tab in tag"])
def test_the_fast_scan_of_a_sheet_without_formulas_finds_what_the_full_scan_finds(tmp_path, xml, monkeypatch):
    from vital_pipelines.spreadsheets import safety
    from vital_pipelines.spreadsheets.safety import Limits, SheetInfo, _census, _scan_every_tag, _scan_values_only

    census = _census(xml)
    assert census is not None and not census.has_formula
    by_census, by_pattern, full, in_pieces = (SheetInfo("s", "p", True) for _ in range(4))
    if census.plain:
        _scan_values_only(xml, by_census, tmp_path / "x.xlsx", Limits(), census.bounds)
    else:
        by_census = None
    _scan_values_only(xml, by_pattern, tmp_path / "x.xlsx", Limits(),
                      safety._valued_cells(xml, by_pattern, tmp_path / "x.xlsx", Limits()))
    _scan_every_tag(xml, full, tmp_path / "x.xlsx", Limits())
    monkeypatch.setattr(safety, "_CENSUS_CHUNK_BYTES", 8)  # a piece per row
    pieces = _census(xml)
    assert pieces.plain == census.plain and pieces.bounds == census.bounds
    bounds = lambda i: (i.first_row, i.first_col, i.last_row, i.last_col, i.merged_ranges, i.declared_range)
    assert bounds(by_pattern) == bounds(full) and full.first_row is not None
    assert by_census is None or bounds(by_census) == bounds(full)


def test_the_census_takes_the_plain_cells_of_a_plain_sheet_and_sees_a_formula_in_any_form():
    from vital_pipelines.spreadsheets.safety import _Bounds, _census

    plain = _census(PLAIN + b'<row r="7"><c r="AB7" s="3"><v>1</v></c></row></sheetData>')
    assert plain.plain and not plain.has_formula
    assert plain.bounds == _Bounds(2, 7, frozenset({"B", "C", "AB"}), frozenset({"AB"}))
    for formula in (b'<f>A1</f>', b'<x:f t="shared" si="0"/>', b'<f\n>1</f>'):
        found = _census(PLAIN + b'<row r="7"><c r="D7">' + formula + b'<v>1</v></c></row></sheetData>')
        assert found.has_formula and not found.plain
    assert _census("<c r=\"A1\"><v>é</v></c>".encode("utf-16")) is None
