"""The vectorised cleaning and list parsing give what the one-cell functions give, for any text."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vital_pipelines.spreadsheets import normalise

# Texts built from the characters the rules treat specially, so separators, blanks and odd characters meet often.
_PIECES = st.sampled_from([
    "a", "B", "ä", "ß", "İ", "Σ", "x y", "null", "NULL", ",", ";", "\n", "\r\n", " ", "\t", "\u00a0", "\u200b",
    "\x07", "_x0007_", "[", "]", "{", "}", '"', "\\", "1", "-", "東京",
])
_TEXTS = st.lists(_PIECES, max_size=12).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(_TEXTS, min_size=1, max_size=8), case=st.sampled_from([None, "lower", "upper"]))
def test_lists_parsed_in_polars_equal_parse_list(texts, case):
    fold = {"lower": str.lower, "upper": str.upper}.get(case, lambda i: i)
    try:
        expected = [[fold(i) for i in normalise.parse_list(t)] or None for t in texts]
    except normalise.ParseError:  # a broken `{…}` literal: both refuse it, with the same words
        with pytest.raises(normalise.ParseError):
            normalise.parse_lists(pl.Series(texts, dtype=pl.Utf8), case)
        return
    assert normalise.parse_lists(pl.Series(texts, dtype=pl.Utf8), case).to_list() == expected


@pytest.mark.parametrize("text, items", [
    ("Veeva CRM; IQVIA, OneKey\nTeams", ["Veeva CRM", "IQVIA, OneKey", "Teams"]),
    ("a, b, a, NULL, , c", ["a", "b", "c"]),
    ('["x, y", "z"]', ["x, y", "z"]),
    ('{a,"b c"}', ["a", "b c"]),
    ("  ", None),
])
def test_the_usual_list_forms(text, items):
    assert normalise.parse_lists(pl.Series([text]), None).to_list() == [items]


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(_TEXTS, min_size=1, max_size=8))
def test_cells_cleaned_in_polars_equal_clean_cell(texts):
    cleaned = pl.DataFrame({"c": texts}).select(normalise.clean_column("c"))["c"].to_list()
    assert cleaned == [normalise.clean_cell(t) for t in texts]


@settings(max_examples=200, deadline=None)
@given(columns=st.lists(st.lists(_TEXTS, min_size=3, max_size=3), min_size=1, max_size=4))
def test_columns_cleaned_together_equal_clean_cell(columns):
    frame = pl.DataFrame({f"c{i}": values for i, values in enumerate(columns)})
    cleaned = frame.select(normalise.clean_columns(frame, frame.columns))
    assert cleaned.to_dict(as_series=False) == {
        f"c{i}": [normalise.clean_cell(v) for v in values] for i, values in enumerate(columns)}


def test_a_blind_key_is_the_same_whatever_the_case():
    """A key column is lower-cased before it is resolved: the name `3Rs Implementation Specialist` must still find
    the agent of that name (a camel-case split would make `3_rs` of one and `3rs` of the other)."""
    from vital_pipelines.spreadsheets.normalise import blind_key

    assert blind_key("3Rs Implementation Specialist") == blind_key("3rs implementation specialist")
    assert blind_key("IT/Digital") == blind_key("it digital") == "it_digital"
