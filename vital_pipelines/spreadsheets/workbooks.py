"""Validating a registry workbook in context: the sheets it references (org structure, personas) are
validated first, and only their valid keys count as existing."""

from __future__ import annotations

from pathlib import Path

from vital_pipelines.spreadsheets.contracts import AGENTS, JTBDS, ORG_SHEETS, PERSONAS, WORKBOOKS
from vital_pipelines.spreadsheets.json_source import JSON_SUFFIXES
from vital_pipelines.spreadsheets.safety import UnsafeWorkbookError, inspect_workbook
from vital_pipelines.spreadsheets.validation import ValidatedSheet, valid_keys, validate_workbook

UPSTREAM = {
    "org_structure.xlsx": (),
    "personas.xlsx": ("org_structure.xlsx",),
    "agents.xlsx": ("org_structure.xlsx",),
    "jtbds.xlsx": ("org_structure.xlsx", "personas.xlsx"),
}
REGISTRY_WORKBOOKS = tuple(UPSTREAM)


def reference_keys(raw_dir: Path, workbook: str, *, isolated: bool = True) -> dict[str, set[str]]:
    """Valid keys of every sheet `workbook` references, read from the sibling workbooks in `raw_dir`."""
    keys: dict[str, set[str]] = {}
    for upstream in UPSTREAM[workbook]:
        keys.update(valid_keys(validate_workbook(Path(raw_dir) / upstream, WORKBOOKS[upstream], keys,
                                                 isolated=isolated)))
    return keys


def workbook_kind(path: Path) -> str:
    """Which registry workbook `path` is: by file name (`personas.xlsx`, or `personas.csv` / `.json` / `.jsonl` for
    a one-sheet export), else by the sheets it holds (`personas (2).xlsx`)."""
    path = Path(path)
    if path.name in WORKBOOKS:
        return path.name
    if path.suffix.lower() in (".csv", *JSON_SUFFIXES):
        for name in WORKBOOKS:
            if Path(name).stem == path.stem.lower():
                return name
        raise UnsafeWorkbookError(f"{path.name}: name the export after its registry "
                                  f"({', '.join(Path(n).stem + path.suffix for n, c in WORKBOOKS.items() if len(c) == 1)}).")
    sheets = {name.strip().lower() for name in inspect_workbook(path).sheets}
    for name, contracts in WORKBOOKS.items():
        if contracts[0].sheet in sheets:
            return name
    raise UnsafeWorkbookError(f"{path.name}: not a registry workbook: it has none of the sheets "
                              f"{', '.join(c[0].sheet for c in WORKBOOKS.values())}.")


def validate_registry_workbook(path: Path, *, raw_dir: Path | None = None, isolated: bool = True) -> dict[str, ValidatedSheet]:
    """Validate one of the registry workbooks (see `workbook_kind`), with references from its siblings."""
    path = Path(path)
    name = workbook_kind(path)
    references = reference_keys(raw_dir or path.parent, name, isolated=isolated)
    return validate_workbook(path, WORKBOOKS[name], references, isolated=isolated)


__all__ = ["AGENTS", "JTBDS", "ORG_SHEETS", "PERSONAS", "REGISTRY_WORKBOOKS", "reference_keys",
           "validate_registry_workbook"]
