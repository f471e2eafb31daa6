"""Validating a registry workbook in context: the sheets it references (org structure, personas) are
validated first, and only their valid keys count as existing."""

from __future__ import annotations

from pathlib import Path

from vital_pipelines.spreadsheets.contracts import AGENTS, JTBDS, ORG_SHEETS, PERSONAS, WORKBOOKS
from vital_pipelines.spreadsheets.validation import ValidatedSheet, validate_workbook

UPSTREAM = {
    "org_structure.xlsx": (),
    "personas.xlsx": ("org_structure.xlsx",),
    "agents.xlsx": ("org_structure.xlsx",),
    "jtbds.xlsx": ("org_structure.xlsx", "personas.xlsx"),
}
REGISTRY_WORKBOOKS = tuple(UPSTREAM)
_KEY_COLUMNS = {"functions": "code", "departments": "code", "roles": "code", "responsibilities": "code",
                "personas": "persona_key"}


def reference_keys(raw_dir: Path, workbook: str, *, isolated: bool = True) -> dict[str, set[str]]:
    """Valid keys of every sheet `workbook` references, read from the sibling workbooks in `raw_dir`."""
    keys: dict[str, set[str]] = {}
    for upstream in UPSTREAM[workbook]:
        for sheet, result in validate_workbook(Path(raw_dir) / upstream, WORKBOOKS[upstream], keys,
                                               isolated=isolated).items():
            if sheet in _KEY_COLUMNS:
                keys[f"{sheet}.{_KEY_COLUMNS[sheet]}"] = result.keys(_KEY_COLUMNS[sheet])
    return keys


def validate_registry_workbook(path: Path, *, raw_dir: Path | None = None, isolated: bool = True) -> dict[str, ValidatedSheet]:
    """Validate one of the registry workbooks by its file name, with references from its siblings."""
    path = Path(path)
    name = path.name
    if name not in WORKBOOKS:
        raise ValueError(f"{name}: not a registry workbook (expected one of {', '.join(REGISTRY_WORKBOOKS)})")
    references = reference_keys(raw_dir or path.parent, name, isolated=isolated)
    return validate_workbook(path, WORKBOOKS[name], references, isolated=isolated)


__all__ = ["AGENTS", "JTBDS", "ORG_SHEETS", "PERSONAS", "REGISTRY_WORKBOOKS", "reference_keys",
           "validate_registry_workbook"]
