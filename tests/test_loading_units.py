"""Loading helpers that need no database."""

from __future__ import annotations

import polars as pl

from vital_pipelines.loading.entity_load import resolve
from vital_pipelines.loading.upsert import deterministic_id, deterministic_id_strings


def test_bulk_ids_equal_the_one_at_a_time_uuid5():
    tenants = ["vital-platform", "acme-pharma", "ünïcode-tenant"]
    keys = ["msl-oncology", "KAM-東京", "a|b"]
    assert deterministic_id_strings("personas", tenants, keys) == [
        str(deterministic_id("personas", t, k)) for t, k in zip(tenants, keys)]


def test_references_resolve_in_the_rows_tenant_else_the_platforms():
    platform, acme = "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-0000000000aa"
    ids = pl.DataFrame({"tenant_id": [platform, platform, acme], "code": ["MSL", "KAM", "KAM"],
                        "id": ["p-msl", "p-kam", "acme-kam"]})
    rows = pl.DataFrame({"tenant_id": [acme, acme, platform, acme], "role_code": ["KAM", "MSL", "KAM", None]})
    resolved = resolve(rows, ids, "role_code", "role_id", platform)
    assert resolved["role_id"].to_list() == ["acme-kam", "p-msl", "p-kam", None]
