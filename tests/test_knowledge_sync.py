"""Keeping pgvector in step with the documents, against a real database: first sync, no-op resync, one edited
paragraph, deletion, unreadable files, a model change, agent profiles, retrieval quality, Dagster assets."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from vital_pipelines import config
from vital_pipelines.db import connect
from vital_pipelines.defs.common.resources import PostgresResource
from vital_pipelines.defs.knowledge import assets as knowledge_assets
from vital_pipelines.defs.knowledge.partitions import knowledge_documents, range_tags
from vital_pipelines.defs.knowledge.resources import EmbeddingModel, KnowledgeSource
from vital_pipelines.defs.schema.assets import database_schema
from vital_pipelines.knowledge.documents import discover
from vital_pipelines.knowledge.evaluation import evaluate, load_questions
from vital_pipelines.knowledge.store import ensure_vector_dimension, remove_documents, sync_documents
from vital_pipelines.db.scratch import loader_url

SECTIONS = {
    "Intake": "Cases arrive from spontaneous reports, studies and the literature. Each is logged on receipt.",
    "Triage": "Triage decides whether a case is valid and serious. The four minimum criteria must be met.",
    "Coding": "Events are coded in MedDRA and products in the WHO Drug Dictionary by trained staff.",
    "Review": "A physician reviews seriousness, expectedness and causality before submission.",
}


def _document(sections: dict[str, str]) -> str:
    body = "\n\n".join(f"## {heading}\n\n{text}" for heading, text in sections.items())
    return f"---\ntitle: Case processing\ndomain: pharmacovigilance\n---\n# Case processing\n\n{body}\n"


@pytest.fixture
def url(fresh_url) -> str:
    return fresh_url


@pytest.fixture
def corpus(tmp_path) -> Path:
    folder = tmp_path / "knowledge"
    folder.mkdir()
    (folder / "case-processing.md").write_text(_document(SECTIONS), encoding="utf-8")
    (folder / "signals.txt").write_text("Signals need validation.\n\nValidated signals are prioritised.", encoding="utf-8")
    return folder


def _sync(url, folder, embedder, **kwargs):
    return sync_documents(lambda: connect(url), discover(folder), embedder, **kwargs)


def _by_slug(report):
    return {d.slug: d for d in report.documents}


def _chunks(url):
    with connect(url) as conn:
        return conn.execute(
            "select s.slug, c.chunk_index, c.content_sha256, c.embedding_model, c.embedding_dimension, "
            "vector_dims(c.embedding), c.embedded_at from knowledge_chunks c join knowledge_sources s on s.id = c.source_id "
            "order by 1, 2").fetchall()


def test_first_sync_embeds_everything_and_the_second_nothing(url, corpus, embedder):
    first = _by_slug(_sync(url, corpus, embedder))
    assert first["case-processing-md"].added == first["case-processing-md"].embedded == 4
    assert first["signals-txt"].embedded == 1
    stored = _chunks(url)
    assert len(stored) == 5
    assert {(row[3], row[4], row[5]) for row in stored} == {("all-MiniLM-L6-v2", 384, 384)}

    second = _sync(url, corpus, embedder)
    assert {d.status for d in second.documents} == {"unchanged"}
    assert second.total("embedded") == 0 and second.total("kept") == 5
    assert _chunks(url) == stored


def test_a_sync_reports_its_progress_done_over_total_with_the_rate(url, corpus, embedder, monkeypatch):
    from vital_pipelines.knowledge import store

    monkeypatch.setattr(store, "EMBED_SLICE", 2)
    lines: list[str] = []
    report = _sync(url, corpus, embedder, on_step=lines.append)
    chunks = report.total("embedded")
    assert chunks == 5
    assert lines[0].startswith("documents read and chunked: 2/2 documents (")
    assert f"chunks embedded: {chunks}/{chunks} chunks (" in "\n".join(lines)
    assert lines[-1].startswith("documents written: 2/2 documents (") and "/s" in lines[-1]
    # Nothing to do, nothing embedded: no line about embedding.
    again: list[str] = []
    _sync(url, corpus, embedder, on_step=again.append)
    assert not any(line.startswith("chunks embedded") for line in again)


def test_editing_one_paragraph_re_embeds_exactly_its_chunk(url, corpus, embedder):
    _sync(url, corpus, embedder)
    before = {(row[0], row[1]): row for row in _chunks(url)}
    edited = dict(SECTIONS, Coding="Events are coded in MedDRA (current version) and products in WHODrug Global.")
    (corpus / "case-processing.md").write_text(_document(edited), encoding="utf-8")

    report = _by_slug(_sync(url, corpus, embedder))
    assert (report["case-processing-md"].embedded, report["case-processing-md"].kept,
            report["case-processing-md"].removed) == (1, 3, 1)
    assert report["signals-txt"].status == "unchanged"
    after = {(row[0], row[1]): row for row in _chunks(url)}
    changed = [key for key in after if after[key] != before[key]]
    assert changed == [("case-processing-md", 2)]


def test_a_moved_chunk_reuses_its_vector_instead_of_embedding(url, corpus, embedder):
    _sync(url, corpus, embedder)
    reordered = {k: SECTIONS[k] for k in ("Intake", "Triage", "Review", "Coding")}
    (corpus / "case-processing.md").write_text(_document(reordered), encoding="utf-8")
    report = _by_slug(_sync(url, corpus, embedder))["case-processing-md"]
    assert (report.added, report.embedded) == (2, 0)


def test_reembed_embeds_every_chunk_again_in_place(url, corpus, embedder):
    _sync(url, corpus, embedder)
    before = {(row[0], row[1]): row[2] for row in _chunks(url)}
    report = _sync(url, corpus, embedder, reembed=True)
    assert report.total("embedded") == report.total("added") == 5 and report.total("kept") == 0
    assert {(row[0], row[1]): row[2] for row in _chunks(url)} == before


def test_deleted_documents_lose_their_chunks(url, corpus, embedder):
    _sync(url, corpus, embedder)
    (corpus / "signals.txt").unlink()
    with connect(url) as conn:
        assert remove_documents(conn, discover(corpus)) == ["signals-txt"]
        status = conn.execute("select status, deleted_at is not null, chunk_count from knowledge_sources "
                              "where slug = 'signals-txt'").fetchone()
    assert status == ("removed", True, 0)
    assert {row[0] for row in _chunks(url)} == {"case-processing-md"}


def test_an_unreadable_document_is_reported_and_the_rest_still_loads(url, corpus, embedder):
    (corpus / "broken.docx").write_bytes(b"PK\x03\x04 not really a zip")
    (corpus / "other-tenant.md").write_text("---\ntenant: nobody-here\n---\nText.", encoding="utf-8")
    report = _by_slug(_sync(url, corpus, embedder))
    assert report["broken-docx"].status == "failed" and "DOCX" in report["broken-docx"].error
    assert report["other-tenant-md"].status == "failed" and "`nobody-here`" in report["other-tenant-md"].error
    assert report["case-processing-md"].status == report["signals-txt"].status == "synced"


def test_a_tenants_document_stays_with_the_tenant_unless_it_says_otherwise(url, corpus, embedder):
    (corpus / "acme-notes.md").write_text("---\ntenant: acme-pharma\n---\nInternal launch notes.", encoding="utf-8")
    (corpus / "acme-public.md").write_text("---\ntenant: acme-pharma\nvisibility: public\n---\nShared.",
                                           encoding="utf-8")
    _sync(url, corpus, embedder)
    with connect(url) as conn:
        rows = dict(conn.execute("select s.slug, s.visibility::text || '/' || t.slug from knowledge_sources s "
                                 "join tenants t on t.id = s.tenant_id").fetchall())
    assert rows["acme-notes-md"] == "tenant/acme-pharma"
    assert rows["acme-public-md"] == "public/acme-pharma"
    assert rows["signals-txt"] == "public/vital-platform"


def test_a_document_moved_to_another_tenant_or_visibility_keeps_its_chunks_and_vectors(url, corpus, embedder):
    _sync(url, corpus, embedder)
    with connect(url) as conn:
        before = conn.execute("select c.id, c.embedded_at from knowledge_chunks c join knowledge_sources s "
                              "on s.id = c.source_id where s.slug = 'case-processing-md' order by 1").fetchall()
    for front in ("tenant: acme-pharma", "tenant: acme-pharma\nvisibility: organization"):
        text = _document(SECTIONS).replace("---\ntitle:", f"---\n{front}\ntitle:")
        (corpus / "case-processing.md").write_text(text, encoding="utf-8")
        moved = _by_slug(_sync(url, corpus, embedder))["case-processing-md"]
        assert (moved.status, moved.added, moved.removed, moved.embedded, moved.kept) == ("synced", 0, 0, 0, len(before))
        with connect(url) as conn:
            after = conn.execute("select c.id, c.embedded_at from knowledge_chunks c join knowledge_sources s "
                                 "on s.id = c.source_id where s.slug = 'case-processing-md' order by 1").fetchall()
            owners = conn.execute("select distinct t.slug from knowledge_chunks c join knowledge_sources s on "
                                  "s.id = c.source_id join tenants t on t.id = c.tenant_id and t.id = s.tenant_id "
                                  "where s.slug = 'case-processing-md'").fetchall()
        assert after == before and owners == [("acme-pharma",)]
    # An edit while moving: only the changed chunk is embedded, and the one it replaced counts as removed.
    edited = dict(SECTIONS, Coding="Events are coded in MedDRA by two trained coders who reconcile differences.")
    (corpus / "case-processing.md").write_text(_document(edited).replace("---\ntitle:", "---\ntitle:"),
                                               encoding="utf-8")
    back = _by_slug(_sync(url, corpus, embedder))["case-processing-md"]
    assert (back.added, back.removed, back.embedded) == (1, 1, 1)


def test_a_model_change_re_embeds_every_chunk(url, corpus, embedder):
    _sync(url, corpus, embedder)
    retrained = dataclasses.replace(embedder.info, revision="retrained01")

    class _Retrained:
        info = retrained
        count_tokens = staticmethod(embedder.count_tokens)
        encode = staticmethod(embedder.encode)

    report = _sync(url, corpus, _Retrained())
    assert report.total("embedded") == 5 and report.total("removed") == 5
    with connect(url) as conn:
        assert conn.execute("select distinct embedding_model_revision from knowledge_chunks").fetchall() == [("retrained01",)]


def test_a_new_dimension_retypes_the_vector_columns_and_rebuilds_the_index(url, corpus, embedder):
    _sync(url, corpus, embedder)
    with connect(url) as conn:
        assert ensure_vector_dimension(conn, 8, "another-model") == ["knowledge_chunks", "agents"]
        assert conn.execute("select count(*) from knowledge_chunks").fetchone()[0] == 0
        typmods = dict(conn.execute("select attrelid::regclass::text, atttypmod from pg_attribute where "
                                    "(attrelid, attname) in (('knowledge_chunks'::regclass, 'embedding'), "
                                    "('agents'::regclass, 'profile_embedding'))").fetchall())
        assert typmods == {"knowledge_chunks": 8, "agents": 8}
        assert "hnsw" in conn.execute("select indexdef from pg_indexes where indexname = "
                                      "'idx_knowledge_chunks_embedding_hnsw'").fetchone()[0]
        assert ensure_vector_dimension(conn, 8, "another-model") == []


def test_the_loader_cannot_empty_the_vectors_without_a_model_change(url, corpus, embedder):
    _sync(url, corpus, embedder)
    with connect(loader_url(url)) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match="cannot change its dimension"):
            ensure_vector_dimension(conn, 3, embedder.info.name)
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select private.ensure_vector_dimension(3)")
        conn.rollback()
        assert conn.execute("select count(*) from knowledge_chunks where embedding is not null").fetchone()[0] == 5


def test_the_evaluation_set_finds_the_right_document(url, embedder):
    report = sync_documents(lambda: connect(url), discover(config.KNOWLEDGE_DIR), embedder)
    assert not report.failed
    questions = load_questions(config.ASSETS_DIR / "evaluation" / "knowledge_questions.yaml")
    assert len(questions) >= 40
    with connect(url) as conn:
        result = evaluate(conn, embedder, questions)
        vector_only = evaluate(conn, embedder, questions, mode="vector")
    assert result.overall.document_at_5 >= 0.95 and result.overall.passage_at_5 >= 0.95, result.misses
    exact = result.by_kind["exact-term"]
    assert exact.questions >= 10 and exact.passage_at_5 == 1.0, result.misses
    assert result.by_kind["table"].passage_at_5 == 1.0, result.misses
    for kind, least in (("exact-figure", 4), ("two-column-pdf", 5), ("table", 7)):
        assert result.by_kind[kind].questions >= least and result.by_kind[kind].passage_at_5 == 1.0, result.misses
    # The full-text ranking is what finds the exact terms: the vector alone does worse on them.
    assert vector_only.by_kind["exact-term"].passage_at_5 < exact.passage_at_5


def test_dagster_assets_register_partitions_embed_and_report(url, corpus):
    instance = dg.DagsterInstance.ephemeral()
    resources = {"postgres": PostgresResource(database_url=loader_url(url)),
                 "schema_owner": PostgresResource(database_url=url, role="owner"), "embedding_model": EmbeddingModel(),
                 "knowledge_source": KnowledgeSource(knowledge_dir=str(corpus))}
    registry = dg.materialize([database_schema, knowledge_assets.knowledge_sources], resources=resources,
                              instance=instance)
    assert sorted(instance.get_dynamic_partitions(knowledge_documents.name)) == ["case-processing-md", "signals-txt"]
    assert registry.success

    def run_chunks():
        keys = instance.get_dynamic_partitions(knowledge_documents.name)
        return dg.materialize([knowledge_assets.knowledge_chunks], resources=resources, instance=instance,
                              tags=range_tags(keys[0], keys[-1]))

    run = run_chunks()
    first = run.asset_materializations_for_node("knowledge_chunks")
    assert len(first) == 2
    # Each partition's materialisation describes its own document; the run carries the totals.
    meta = {m.partition: m.metadata for m in first}
    assert {key: (m["chunks_added"].value, m["chunks_embedded"].value) for key, m in meta.items()} == {
        "case-processing-md": (4, 4), "signals-txt": (1, 1)}
    assert (meta["signals-txt"]["model"].value, meta["signals-txt"]["dimension"].value) == ("all-MiniLM-L6-v2", 384)
    tags = instance.get_run_by_id(run.run_id).tags
    assert (tags["vital/chunks_added"], tags["vital/chunks_embedded"]) == ("5", "5")
    again = run_chunks()
    assert {m.metadata["chunks_embedded"].value for m in again.asset_materializations_for_node("knowledge_chunks")} == {0}

    (corpus / "signals.txt").unlink()
    gone = dg.materialize([knowledge_assets.knowledge_chunks], resources=resources, instance=instance,
                          partition_key="signals-txt")
    assert gone.success and {row[0] for row in _chunks(url)} == {"case-processing-md"}
    # Chunks removed because the file vanished are counted.
    assert gone.asset_materializations_for_node("knowledge_chunks")[0].metadata["chunks_removed"].value == 1

    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 broken")
    dg.materialize([knowledge_assets.knowledge_sources], resources=resources, instance=instance)
    assert sorted(instance.get_dynamic_partitions(knowledge_documents.name)) == ["broken-pdf", "case-processing-md"]
    result = dg.materialize([knowledge_assets.knowledge_chunks], resources=resources, instance=instance,
                            partition_key="broken-pdf", raise_on_error=False)
    check = result.get_asset_check_evaluations()[0]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "broken.pdf" in check.description
    assert {row[0] for row in _chunks(url)} == {"case-processing-md"}


def test_agent_profiles_are_embedded_once(url, embedder):
    from vital_pipelines.knowledge.agent_profiles import embed_agent_profiles
    from vital_pipelines.loading.registry import load_workbook
    from vital_pipelines.spreadsheets.workbooks import validate_registry_workbook

    raw = config.RAW_DIR
    with connect(url) as conn:
        for workbook in ("org_structure.xlsx", "agents.xlsx"):
            load_workbook(conn, workbook, validate_registry_workbook(raw / workbook, raw_dir=raw, isolated=False),
                          source_path=raw / workbook)
        first = embed_agent_profiles(conn, embedder)
        second = embed_agent_profiles(conn, embedder)
        conn.execute("update agents set description = description || ' Now also covers Japan.' "
                     "where slug = (select min(slug) from agents)")
        third = embed_agent_profiles(conn, embedder)
    assert (first.embedded, second.embedded, second.unchanged, third.embedded) == (254, 0, 254, 1)
    with connect(url) as conn:
        provenance = conn.execute("select distinct metadata->'profile_embedding' from agents").fetchall()
    assert provenance == [({"model": "all-MiniLM-L6-v2", "revision": embedder.info.revision, "dimension": 384},)]


def test_search_cli_prints_document_heading_and_agents(url, corpus, embedder, monkeypatch, capsys):
    from vital_pipelines import cli

    _sync(url, corpus, embedder)
    monkeypatch.setenv("DATABASE_URL", loader_url(url))
    assert cli.main(["search", "who reviews causality before a case is submitted?", "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert "1. Case processing › Review  [case-processing-md" in out
    assert "Agents (0 best matches)" in out
