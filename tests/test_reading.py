"""Reading faster without checking less: an upstream workbook's validated keys are reused only for the same bytes,
and the reader that starts while a workbook is still being inspected never outlives a refusal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import openpyxl
import pytest

from vital_pipelines.spreadsheets import reader, validation, workbooks
from vital_pipelines.spreadsheets.contracts import PERSONAS
from vital_pipelines.spreadsheets.safety import UnsafeWorkbookError
from vital_pipelines.spreadsheets.workbooks import validate_registry_workbook


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("VITAL_CACHE_DIR", str(folder))
    return folder / "reference_keys"


@pytest.fixture
def upstream_validations(monkeypatch) -> list[str]:
    """The upstream workbooks validated (not taken from the cache), by name; the workbook itself is left out."""
    seen: list[str] = []
    real = workbooks.validate_workbook

    def counting(path, contracts, *args, **kwargs):
        if contracts[0].workbook != "personas.xlsx":
            seen.append(contracts[0].workbook)
        return real(path, contracts, *args, **kwargs)

    monkeypatch.setattr(workbooks, "validate_workbook", counting)
    return seen


def _rename_role(org: Path, old: str, new: str) -> None:
    workbook = openpyxl.load_workbook(org)
    sheet = workbook["roles"]
    cells = [row[0] for row in sheet.iter_rows(min_row=2) if row[0].value == old]
    assert cells, f"the org structure has no role {old}"
    cells[0].value = new
    workbook.save(org)


def _role_failures(result, role: str) -> list:
    """The findings on personas whose role is `role` (a warning: personas.role_id may be empty)."""
    findings = result["personas"].failures + result["personas"].warnings
    return [f for f in findings if f.column == "role_code" and f.value == role]


def test_upstream_keys_are_reused_for_the_same_bytes_and_a_changed_org_is_seen(raw, cache, upstream_validations):
    first = validate_registry_workbook(raw / "personas.xlsx")
    again = validate_registry_workbook(raw / "personas.xlsx")
    assert upstream_validations == ["org_structure.xlsx"], "the unchanged org structure was validated once"
    assert len(list(cache.glob("*.json"))) == 1
    assert again["personas"].valid.equals(first["personas"].valid)
    using = first["personas"].valid.filter(first["personas"].valid["role_code"] == "BRAND-MGR").height
    assert using > 0 and not _role_failures(first, "BRAND-MGR")

    _rename_role(raw / "org_structure.xlsx", "BRAND-MGR", "BRAND-MANAGER-RENAMED")
    changed = validate_registry_workbook(raw / "personas.xlsx")
    assert upstream_validations == ["org_structure.xlsx"] * 2, "new bytes, new validation"
    assert len(_role_failures(changed, "BRAND-MGR")) == using
    assert changed["personas"].valid.height == first["personas"].valid.height  # they load, with the warning
    assert len(list(cache.glob("*.json"))) == 2


def test_a_damaged_cache_entry_is_validated_again_with_the_same_result(raw, cache, upstream_validations):
    first = validate_registry_workbook(raw / "personas.xlsx")
    for entry in cache.glob("*.json"):
        entry.write_text(json.dumps({"keys": {"roles.code": ["ONLY-THIS"]}}))  # no names, titles, parents
    again = validate_registry_workbook(raw / "personas.xlsx")
    assert upstream_validations == ["org_structure.xlsx"] * 2
    assert again["personas"].valid.equals(first["personas"].valid)
    assert [f.as_dict() for f in again["personas"].failures] == [f.as_dict() for f in first["personas"].failures]


def test_the_early_reader_is_stopped_when_the_scan_refuses_the_workbook(tmp_path, monkeypatch):
    started: list[reader.ReaderChild] = []
    real = reader.ReaderChild

    class Recorded(real):
        def __init__(self, *args):
            super().__init__(*args)
            started.append(self)

    monkeypatch.setattr(validation, "ReaderChild", Recorded)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "personas"
    sheet.append(["persona_key", "name"])
    sheet.append(["a-persona", "A"])
    sheet["Z1048576"] = "stray"  # the reader would allocate 27 million cells
    path = tmp_path / "personas.xlsx"
    workbook.save(path)
    with pytest.raises(UnsafeWorkbookError, match="Z1048576"):
        validation.validate_workbook(path, (PERSONAS,))
    assert len(started) == 1, "the reader started once the package checks passed"
    assert started[0].process.returncode is not None, "and did not outlive the refusal"


def test_the_early_reader_reads_what_the_inspection_describes(raw):
    results = validation.validate_workbook(raw / "org_structure.xlsx", workbooks.WORKBOOKS["org_structure.xlsx"])
    in_process = validation.validate_workbook(raw / "org_structure.xlsx", workbooks.WORKBOOKS["org_structure.xlsx"],
                                              isolated=False)
    assert set(results) == set(in_process) and all(results[s].total_rows > 0 for s in results)
    for name in results:
        assert results[name].valid.equals(in_process[name].valid)
        assert [f.as_dict() for f in results[name].failures] == [f.as_dict() for f in in_process[name].failures]


def test_a_cold_a_warm_and_a_moved_validation_give_the_same_result(raw, tmp_path, monkeypatch):
    monkeypatch.setenv("VITAL_CACHE_DIR", str(tmp_path / "first"))
    cold = validate_registry_workbook(raw / "jtbds.xlsx")
    warm = validate_registry_workbook(raw / "jtbds.xlsx")
    other = tmp_path / "elsewhere"
    shutil.copytree(raw, other)
    moved = validate_registry_workbook(other / "jtbds.xlsx")
    for result in (warm, moved):
        assert result["jtbds"].valid.equals(cold["jtbds"].valid)
        assert [f.as_dict() for f in result["jtbds"].failures] == [f.as_dict() for f in cold["jtbds"].failures]


def test_the_reader_child_runs_under_its_memory_limit_and_its_failure_is_a_clear_refusal(monkeypatch):
    from vital_pipelines import config
    from vital_pipelines.spreadsheets.reader import ReaderChild

    path = str(config.RAW_DIR / "personas.xlsx")
    assert ReaderChild(path, ["personas"]).frames()[0].height == 336  # the header and 335 personas
    monkeypatch.setattr(reader, "READER_MEMORY_LIMIT_BYTES", 24 * 1024**2)
    with pytest.raises(UnsafeWorkbookError, match=r"personas.xlsx: the reader failed or ran out of memory \(limit 24 MiB\)"):
        ReaderChild(path, ["personas"]).frames()
