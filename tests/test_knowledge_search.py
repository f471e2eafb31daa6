"""Hybrid search against a real database: exact terms found where the vector misses them, filters, and row-level
security deciding whose chunks a user's search can reach (connected as the search role, switched to
`authenticated` with the user's claims)."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from vital_pipelines.db import connect
from vital_pipelines.db.scratch import loader_url, search_url
from vital_pipelines.knowledge.documents import discover
from vital_pipelines.knowledge.search import SearchFilters, acting_as, embed_query, fuse, search_chunks
from vital_pipelines.knowledge.store import sync_documents
from tests.rls_world import ACME, PLATFORM, TRIAL

PUBLIC_DOC = """# Digital health assessment

## Evidence standards

Digital health products bought by the NHS must meet the Digital Technology Assessment Criteria (DTAC), which cover
clinical safety, data protection, technical security, interoperability and usability.

## Procurement

Buyers compare suppliers on price, service levels and the evidence of benefit they bring to patients.
"""

FILLER = "\n\n".join(f"## Topic {n}\n\nPayers weigh clinical benefit against cost when they appraise a medicine, "
                     f"and health technology assessment bodies publish their methods for topic {n}." for n in range(12))


def _tenant_doc(slug: str, title: str, body: str) -> str:
    return f"---\ntenant: {slug}\nvisibility: tenant\ndomain: market_access\n---\n# {title}\n\n{body}\n"


@pytest.fixture
def world(fresh_url, tmp_path, embedder):
    with connect(fresh_url) as conn:
        slugs = dict(conn.execute("select id::text, slug from tenants").fetchall())
    folder = tmp_path / "knowledge"
    folder.mkdir()
    (folder / "digital-health.md").write_text(PUBLIC_DOC, encoding="utf-8")
    (folder / "payer-methods.md").write_text(f"# Payer methods\n\n{FILLER}\n", encoding="utf-8")
    (folder / "acme-launch.md").write_text(_tenant_doc(
        slugs[ACME], "Acme launch plan", "Project Nightingale: the German launch budget is £20m, with IQWiG's "
        "dossier assessment expected in the spring."), encoding="utf-8")
    (folder / "trial-pilot.md").write_text(_tenant_doc(
        slugs[TRIAL], "Trial pilot notes", "The pilot's confidential price corridor was agreed with the payer "
        "advisory board in Lisbon."), encoding="utf-8")
    report = sync_documents(lambda: connect(loader_url(fresh_url)), discover(folder), embedder)
    assert not report.failed
    users = {}
    with connect(fresh_url) as conn:
        for tenant in (ACME, TRIAL):
            user = str(uuid.uuid4())
            conn.execute("insert into auth.users (id, email) values (%s, %s)", (user, f"{user[:8]}@example.com"))
            conn.execute("insert into tenant_members (tenant_id, user_id, role) values (%s, %s, 'member')",
                         (tenant, user))
            users[tenant] = user
        conn.commit()
    return fresh_url, users


def _documents(url: str, embedder, query: str, *, user: str | None, limit: int = 10, **filters) -> list[str]:
    vector = embed_query(embedder, query)
    if user is None:
        with connect(loader_url(url)) as conn:
            hits = search_chunks(conn, query, vector, embedder.info.name, limit=limit, filters=SearchFilters(**filters))
    else:
        with connect(search_url(url)) as conn, acting_as(conn, user):
            hits = search_chunks(conn, query, vector, embedder.info.name, limit=limit, filters=SearchFilters(**filters))
    return [hit.document for hit in hits]


def test_a_tenant_member_never_gets_another_tenants_chunks(world, embedder):
    url, users = world
    acme, trial = users[ACME], users[TRIAL]
    everything = {"digital-health-md", "payer-methods-md", "acme-launch-md", "trial-pilot-md"}
    for query in ("Nightingale launch budget £20m IQWiG", "confidential price corridor Lisbon advisory board",
                  "health technology assessment"):
        as_acme = set(_documents(url, embedder, query, user=acme, limit=50))
        as_trial = set(_documents(url, embedder, query, user=trial, limit=50))
        stranger = set(_documents(url, embedder, query, user=str(uuid.uuid4()), limit=50))
        assert "trial-pilot-md" not in as_acme and "acme-launch-md" not in as_trial
        assert stranger <= {"digital-health-md", "payer-methods-md"}
        # Shared (public) platform documents stay searchable by every signed-in user.
        assert as_acme <= everything - {"trial-pilot-md"} and as_trial <= everything - {"acme-launch-md"}
    assert _documents(url, embedder, "Nightingale budget", user=acme)[0] == "acme-launch-md"
    assert _documents(url, embedder, "price corridor Lisbon", user=trial)[0] == "trial-pilot-md"
    # A tenant filter cannot widen what row-level security allows.
    assert _documents(url, embedder, "Nightingale budget", user=trial, tenant="acme-pharma") == []
    with connect(search_url(url)) as conn, acting_as(conn, acme):
        assert conn.execute("select count(*) from knowledge_chunks c join knowledge_sources s on s.id = c.source_id "
                            "where s.slug = 'trial-pilot-md'").fetchone()[0] == 0


def test_the_search_role_reads_nothing_until_it_acts_as_a_user(world):
    url, _ = world
    with connect(search_url(url)) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select count(*) from knowledge_chunks").fetchone()
    with connect(search_url(url)) as conn, pytest.raises(ValueError):
        with acting_as(conn, "x' or true --"):
            pass


def test_exact_terms_codes_and_figures_are_found(world, embedder):
    url, users = world
    assert _documents(url, embedder, "DTAC", user=None, limit=1, visibility=("public",)) == ["digital-health-md"]
    assert _documents(url, embedder, "£20m", user=users[ACME], limit=1) == ["acme-launch-md"]
    assert _documents(url, embedder, "What did IQWiG say?", user=users[ACME], limit=3)[0] == "acme-launch-md"


def test_filters_narrow_by_tenant_visibility_domain_and_source_type(world, embedder):
    url, _ = world
    query = "launch budget and payer assessment"
    assert set(_documents(url, embedder, query, user=None, limit=50, tenant="acme-pharma")) == {"acme-launch-md"}
    assert set(_documents(url, embedder, query, user=None, limit=50, visibility=("public",))) == {
        "digital-health-md", "payer-methods-md"}
    assert set(_documents(url, embedder, query, user=None, limit=50, domain="market_access")) == {
        "acme-launch-md", "trial-pilot-md"}
    assert _documents(url, embedder, query, user=None, source_type="pdf") == []


def test_distinct_documents_and_reciprocal_rank_fusion(world, embedder):
    url, _ = world
    query = "health technology assessment methods"
    vector = embed_query(embedder, query)
    with connect(loader_url(url)) as conn:
        hits = search_chunks(conn, query, vector, embedder.info.name, limit=3, distinct_documents=True)
        crowded = search_chunks(conn, query, vector, embedder.info.name, limit=3)
    assert len({h.document for h in hits}) == len(hits) == 3
    assert [h.document for h in crowded].count("payer-methods-md") >= 2
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    # In both rankings beats first in one; ties keep the order of first appearance.
    assert [chunk for chunk, _ in fuse([[a, b], [c, b]])] == [b, a, c]


def test_search_cli_takes_a_user_and_a_tenant(world, embedder, monkeypatch, capsys):
    from vital_pipelines import cli

    url, users = world
    monkeypatch.setenv("DATABASE_URL", loader_url(url))
    monkeypatch.setenv("SEARCH_DATABASE_URL", search_url(url))
    assert cli.main(["search", "Nightingale budget", "--as-user", users[TRIAL], "--limit", "20"]) == 0
    out = capsys.readouterr().out
    assert "acme-launch-md" not in out and "Nightingale" not in out
    assert cli.main(["search", "Nightingale budget", "--as-user", users[ACME], "--limit", "1"]) == 0
    assert "[acme-launch-md" in capsys.readouterr().out
    # Without a user or a tenant the CLI searches only what every signed-in user may read.
    assert cli.main(["search", "Nightingale budget", "--limit", "20"]) == 0
    assert "acme-launch-md" not in capsys.readouterr().out
    assert cli.main(["search", "Nightingale budget", "--as-user", "not-a-uuid"]) == 2


def test_search_cli_text_mode_loads_no_model_and_says_when_nothing_is_visible(world, monkeypatch, capsys):
    from vital_pipelines import cli
    from vital_pipelines.knowledge import embedding

    url, users = world
    monkeypatch.setenv("DATABASE_URL", loader_url(url))
    monkeypatch.setenv("SEARCH_DATABASE_URL", search_url(url))

    def no_model(*args, **kwargs):
        raise AssertionError("text mode must not load the embedding model")

    monkeypatch.setattr(embedding.Embedder, "__init__", no_model)
    assert cli.main(["search", "£20m", "--as-user", users[ACME], "--mode", "text", "--limit", "1"]) == 0
    out = capsys.readouterr().out
    assert "[acme-launch-md" in out and "Agents" not in out
    stranger = str(uuid.uuid4())
    with connect(url) as conn:
        conn.execute("insert into auth.users (id, email) values (%s, 'stranger@example.com')", (stranger,))
        conn.execute("update knowledge_sources set visibility = 'tenant'")
        conn.commit()
    assert cli.main(["search", "£20m", "--as-user", stranger, "--mode", "text"]) == 1
    assert "No document is visible to you" in capsys.readouterr().out
    assert cli.main(["search", "zebra migration patterns", "--as-user", users[ACME], "--mode", "text"]) == 1
    assert "Nothing found: no visible chunk matches" in capsys.readouterr().out
