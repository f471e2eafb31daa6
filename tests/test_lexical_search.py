"""The lexical ranking: BM25 over term statistics kept with the chunks, exact figures and codes, ties in a fixed
order, and statistics that stay exact (and tenant-scoped) through every change a sync makes."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from vital_pipelines.db import connect
from vital_pipelines.db.scratch import loader_url, search_url
from vital_pipelines.knowledge.search import acting_as, search_chunks
from tests.rls_world import ACME, PLATFORM, TRIAL

FILLER = ("Market access teams prepare payer evidence, budget impact and launch sequencing for each country. "
          "The brand plan aligns medical, commercial and access priorities across the year.")


def _source(conn, tenant: str, slug: str, visibility: str = "public") -> uuid.UUID:
    source = uuid.uuid4()
    conn.execute("insert into knowledge_sources (id, tenant_id, slug, title, source_type, visibility, status) "
                 "values (%s, %s, %s, %s, 'text', %s, 'synced')", (source, tenant, slug, slug.title(), visibility))
    return source


def _chunks(conn, tenant: str, source: uuid.UUID, texts: list[str]) -> None:
    for index, text in enumerate(texts):
        conn.execute("insert into knowledge_chunks (tenant_id, source_id, chunk_index, content, token_count, "
                     "content_sha256) values (%s, %s, %s, %s, %s, %s)",
                     (tenant, source, index, text, len(text.split()), hashlib.sha256(text.encode()).hexdigest()))


def _texts(url: str, query: str, limit: int = 3) -> list[str]:
    with connect(loader_url(url)) as conn:
        return [hit.content for hit in search_chunks(conn, query, None, "none", limit=limit, mode="text")]


def _recounted(conn) -> tuple[set, set]:
    """The statistics as the triggers keep them, and as counted from scratch."""
    kept = set(conn.execute("select lexeme, tenant_id, visibility::text, chunk_count from knowledge_lexicon"))
    counted = set(conn.execute(
        "select t.lexeme, s.tenant_id, s.visibility::text, count(*) from knowledge_chunks c "
        "join knowledge_sources s on s.id = c.source_id and s.deleted_at is null, unnest(c.search_vector) t "
        "group by 1, 2, 3"))
    corpus_kept = set(conn.execute(
        "select tenant_id, visibility::text, chunk_count, total_length from knowledge_corpus where chunk_count > 0"))
    corpus_counted = set(conn.execute(
        "select s.tenant_id, s.visibility::text, count(*), sum(c.lexical_length) from knowledge_chunks c "
        "join knowledge_sources s on s.id = c.source_id and s.deleted_at is null group by 1, 2"))
    return (kept, corpus_kept), (counted, corpus_counted)


@pytest.mark.parametrize("query, wanted, decoy", [
    ("£20m", "The German launch budget is £20m for the first year.", "The US launch budget is $20M for the first year."),
    ("0.7%", "Enrolment of the focal conditions rose to 0.7% of trials.", "Enrolment rose by 0.7 points in trials."),
    ("21 CFR Part 11", "Electronic records must meet 21 CFR Part 11 controls.",
     "Electronic records must meet 21 CFR Part 12 controls, section 11."),
    ("ICH E6(R3)", "Sponsors apply ICH E6(R3) to risk-based monitoring.", "Sponsors apply ICH E6(R2) to monitoring."),
])
def test_figures_currencies_codes_and_units_match_exactly(fresh_url, query, wanted, decoy):
    with connect(fresh_url) as conn:
        source = _source(conn, PLATFORM, "exact")
        _chunks(conn, PLATFORM, source, [decoy, wanted] + [FILLER] * 3)
        conn.commit()
    assert _texts(fresh_url, query)[0] == wanted


def test_bm25_prefers_the_rarer_term_and_the_denser_chunk_and_breaks_ties_by_id(fresh_url):
    with connect(fresh_url) as conn:
        source = _source(conn, PLATFORM, "ranking")
        _chunks(conn, PLATFORM, source, [
            "Payer evidence for the dossier.",                                    # common term only
            "IQWiG assessed the dossier. " + FILLER,                              # rare term, long chunk
            "IQWiG assessed the dossier.",                                        # rare term, short chunk
            "IQWiG, IQWiG and again IQWiG assessed the dossier. " + FILLER,       # rare term three times
        ] + [FILLER] * 6)
        twin = _source(conn, PLATFORM, "twins")
        _chunks(conn, PLATFORM, twin, ["Orphan designation twin text.", "Orphan designation twin text."])
        conn.commit()
        twin_ids = [row[0] for row in conn.execute(
            "select id from knowledge_chunks where source_id = %s order by id", (twin,))]
    ranked = _texts(fresh_url, "IQWiG dossier", limit=4)
    short, long_once, long_thrice = ("IQWiG assessed the dossier.", "IQWiG assessed the dossier. " + FILLER,
                                     "IQWiG, IQWiG and again IQWiG assessed the dossier. " + FILLER)
    assert set(ranked[:3]) == {short, long_once, long_thrice}
    assert ranked.index(short) < ranked.index(long_once) and ranked.index(long_thrice) < ranked.index(long_once)
    assert "Payer evidence for the dossier." not in ranked  # below the cut: no rare term
    with connect(loader_url(fresh_url)) as conn:
        orders = {tuple(h.chunk_index for h in search_chunks(conn, "orphan designation twin", None, "none", limit=2,
                                                             mode="text")) for _ in range(5)}
    assert len(orders) == 1
    with connect(fresh_url) as conn:
        first = conn.execute("select chunk_index from knowledge_chunks where id = %s", (twin_ids[0],)).fetchone()[0]
    assert next(iter(orders))[0] == first


def test_statistics_stay_exact_through_inserts_moves_deletions_and_removals(fresh_url):
    with connect(fresh_url) as conn:
        a = _source(conn, PLATFORM, "alpha")
        b = _source(conn, ACME, "beta", "tenant")
        _chunks(conn, PLATFORM, a, ["IQWiG assessed £20m of spend.", FILLER, "Orphan designation in the EU."])
        _chunks(conn, ACME, b, ["Project Nightingale budget.", FILLER])
        conn.commit()
        kept, counted = _recounted(conn)
        assert kept == counted and len(kept[0]) > 20
        for change in ("update knowledge_sources set visibility = 'organization' where slug = 'beta'",
                       f"update knowledge_sources set tenant_id = '{TRIAL}' where slug = 'beta'",
                       "delete from knowledge_chunks where chunk_index = 1",
                       "update knowledge_chunks set content = 'Replaced text about DTAC.' where chunk_index = 0",
                       "update knowledge_sources set deleted_at = now() where slug = 'alpha'",
                       "update knowledge_sources set deleted_at = null where slug = 'alpha'",
                       "delete from knowledge_sources where slug = 'beta'"):
            conn.execute(change)
            kept, counted = _recounted(conn)
            assert kept == counted, change
        conn.commit()


def test_a_member_sees_only_the_statistics_of_chunks_it_may_read(fresh_url):
    with connect(fresh_url) as conn:
        _chunks(conn, ACME, _source(conn, ACME, "acme-secret", "tenant"), ["Project Nightingale launch corridor."])
        _chunks(conn, TRIAL, _source(conn, TRIAL, "trial-notes", "tenant"), ["Lisbon advisory board notes."])
        user = str(uuid.uuid4())
        conn.execute("insert into auth.users (id, email) values (%s, 'member@example.com')", (user,))
        conn.execute("insert into tenant_members (tenant_id, user_id, role) values (%s, %s, 'member')", (TRIAL, user))
        conn.commit()
    with connect(search_url(fresh_url)) as conn:
        with acting_as(conn, user):
            lexemes = {row[0] for row in conn.execute("select lexeme from knowledge_lexicon")}
            chunks = conn.execute("select sum(chunk_count) from knowledge_corpus").fetchone()[0]
        with acting_as(conn, user):
            hits = search_chunks(conn, "Nightingale Lisbon", None, "none", limit=5, mode="text")
    assert "lisbon" in lexemes and "nightingal" not in lexemes
    assert chunks == 1
    assert [hit.document for hit in hits] == ["trial-notes"]


def test_lexical_candidates_are_exactly_the_matching_chunks_row_level_security_shows(fresh_url):
    """The candidates function decides readability itself (so the GIN index can work under RLS): for every caller it
    must return exactly what the chunks' own policy lets that caller see."""
    with connect(fresh_url) as conn:
        for tenant, slug, visibility in ((PLATFORM, "platform-public", "public"), (PLATFORM, "platform-only", "tenant"),
                                         (ACME, "acme-tenant", "tenant"), (ACME, "acme-org", "organization"),
                                         (TRIAL, "trial-tenant", "tenant"), (TRIAL, "trial-public", "public")):
            _chunks(conn, tenant, _source(conn, tenant, slug, visibility), [f"Orphan designation notes of {slug}."])
        conn.execute("update knowledge_sources set deleted_at = now() where slug = 'trial-public'")
        users = {}
        for name, tenant, role in (("acme", ACME, "member"), ("trial", TRIAL, "admin"), ("nobody", None, None)):
            users[name] = str(uuid.uuid4())
            conn.execute("insert into auth.users (id, email) values (%s, %s)", (users[name], f"{name}@example.com"))
            if tenant:
                conn.execute("insert into tenant_members (tenant_id, user_id, role) values (%s, %s, %s)",
                             (tenant, users[name], role))
        conn.commit()
    seen = {}
    with connect(search_url(fresh_url)) as conn:
        for name, user in users.items():
            with acting_as(conn, user):
                by_policy = {r[0] for r in conn.execute(
                    "select id from knowledge_chunks where search_vector @@ '''orphan'''::tsquery")}
                by_function = {r[0] for r in conn.execute(
                    "select id from private.knowledge_lexical_candidates('''orphan'''::tsquery)")}
            assert by_function == by_policy, name
            seen[name] = len(by_policy)
    with connect(loader_url(fresh_url)) as conn:
        everything = {r[0] for r in conn.execute("select id from private.knowledge_lexical_candidates('''orphan'''::tsquery)")}
    assert seen["nobody"] == 1 and seen["acme"] >= 2 and len(everything) == 5
    with connect(search_url(fresh_url)) as conn:
        with pytest.raises(Exception):
            conn.execute("select id from private.knowledge_lexical_candidates('''orphan'''::tsquery)").fetchall()
