"""A tenant's own copy of a registry workbook (raw/tenants/<slug>/, where the portal writes approved uploads):
loaded as a source of its own, only that tenant's rows taken, its soft deletes limited to what it loaded itself;
and the registry asset picks it up."""

from __future__ import annotations

import shutil
from pathlib import Path

import openpyxl

from vital_pipelines.files import file_sha256
from vital_pipelines.loading.ledger import load_outcome
from vital_pipelines.loading.sources import Source, load_source
from vital_pipelines.db import connect
from vital_pipelines.db.scratch import loader_url
from vital_pipelines.loading.sources import registry_content_sha
from vital_pipelines.loading.registry import load_workbook
from vital_pipelines.loading.tenant_sources import tenant_source_name, tenant_source_path, tenant_sources
from vital_pipelines.spreadsheets.workbooks import validate_registry_workbook


def _tenant_copy(raw: Path, tenant: str, rows: int, *, foreign_row: int | None = None) -> Path:
    """The first `rows` personas under new keys, as `tenant`'s own workbook."""
    target = tenant_source_path(raw, tenant, "personas.xlsx")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(raw / "personas.xlsx", target)
    workbook = openpyxl.load_workbook(target)
    sheet = workbook["personas"]
    sheet.delete_rows(rows + 2, sheet.max_row)
    column = next(c.column_letter for c in sheet[1] if c.value == "tenant")
    for row in range(2, rows + 2):
        sheet[f"A{row}"] = f"{tenant}-persona-{row}"
        sheet[f"{column}{row}"] = tenant if row != 3 else None  # an empty tenant cell is the file's own tenant
    if foreign_row:
        sheet[f"{column}{foreign_row}"] = "vital-platform"
    workbook.save(target)
    return target


def _load(url: str, raw: Path, path: Path, workbook: str, tenant: str | None = None):
    with connect(loader_url(url)) as conn:
        return load_source(conn, Source(path, workbook, tenant=tenant), raw_dir=raw, reload=True, isolated=False)


def _personas(url: str) -> dict[str, tuple[str, bool]]:
    with connect(url) as conn:
        return {key: (slug, deleted) for key, slug, deleted in conn.execute(
            "select p.persona_key, t.slug, p.deleted_at is not null from personas p join tenants t on t.id = p.tenant_id")}


def test_a_tenants_copy_loads_only_its_rows_and_soft_deletes_only_what_it_loaded(fresh_url, raw):
    _load(fresh_url, raw, raw / "org_structure.xlsx", "org_structure.xlsx")
    _load(fresh_url, raw, raw / "personas.xlsx", "personas.xlsx")
    platform = {k for k, (slug, _) in _personas(fresh_url).items() if slug == "vital-platform"}
    assert len(platform) == 335

    path = _tenant_copy(raw, "acme-pharma", 10, foreign_row=4)
    result = _load(fresh_url, raw, path, "personas.xlsx", tenant="acme-pharma")
    assert result.tables["personas"].inserted == 9 and result.rejected == 1
    [failure] = [f for f in result.failures if f.rule == "tenant_of_source"]
    assert (failure.cell, failure.value) == ("Q4", "vital-platform") and "acme-pharma" in failure.message
    stored = _personas(fresh_url)
    assert {k for k, (slug, _) in stored.items() if slug == "acme-pharma"} == {
        f"acme-pharma-persona-{r}" for r in range(2, 12) if r != 4}
    with connect(fresh_url) as conn:
        assert conn.execute("select target, excel_row from quarantined_rows where resolved_at is null").fetchall() == [
            ("tenants/acme-pharma/personas", 4)]
        # what the portal's run page reads: never green while a row waits
        assert load_outcome(conn, target="tenants/acme-pharma/personas", sha256=file_sha256(path)) == {
            "loaded": 9, "warned": 0, "waiting": 1}

    # The tenant's next file drops a row: that row alone is soft-deleted; the platform's rows are untouched.
    path = _tenant_copy(raw, "acme-pharma", 9)
    result = _load(fresh_url, raw, path, "personas.xlsx", tenant="acme-pharma")
    stored = _personas(fresh_url)
    assert result.tables["personas"].deleted == 1 and stored["acme-pharma-persona-11"] == ("acme-pharma", True)
    assert all(not stored[k][1] for k in platform)
    with connect(fresh_url) as conn:  # the fixed row 4 came in, and its quarantine entry is resolved
        assert conn.execute("select count(*) from quarantined_rows where resolved_at is null").fetchone()[0] == 0
    # And the platform's own reload does not touch the tenant's rows.
    _load(fresh_url, raw, raw / "personas.xlsx", "personas.xlsx")
    assert {k: v for k, v in _personas(fresh_url).items() if v[0] == "acme-pharma"} == \
        {k: v for k, v in stored.items() if v[0] == "acme-pharma"}


def test_tenant_copies_are_found_and_change_the_registry_content_hash(raw):
    before = registry_content_sha(raw, "personas.xlsx")
    assert tenant_sources(raw, "personas.xlsx") == []
    path = _tenant_copy(raw, "acme-pharma", 3)
    (raw / "tenants" / "Not A Slug").mkdir()
    shutil.copy(path, raw / "tenants" / "Not A Slug" / "personas.xlsx")
    assert tenant_sources(raw, "personas.xlsx") == [("acme-pharma", path)]
    assert registry_content_sha(raw, "personas.xlsx") != before
