"""The documented normalisation of headers and cells, and the parsers from text to each contract type.

Cells: leading/trailing whitespace trimmed, non-breaking spaces turned into spaces, zero-width characters,
byte-order marks and control characters (other than tab and line breaks) removed; an empty result is null. Headers are matched case-, space- and punctuation-blind
(`Function Code`, `function-code`, `FunctionCode` all mean `function_code`), then by documented aliases.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Sequence

_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
# C0 and C1 control characters other than tab and line breaks, raw or as the OOXML escape `_xHHHH_` that a reader
# may hand through undecoded: they are invisible in Excel and break what reads the database later.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|_x00(?:0[0-8bBcCeEfF]|1[0-9a-fA-F]|7[fF])_")
_SPACES = re.compile("[\u00a0\u2007\u202f\u3000]")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")

TRUE_WORDS = {"true", "t", "yes", "y", "1", "✓", "✔", "x", "available"}
FALSE_WORDS = {"false", "f", "no", "n", "0", "✗", "✘", "-", "–", "—"}


# The same cleaning as `clean_cell`, as one polars expression over a whole column (Rust regex syntax).
_POLARS_REMOVED = (r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\x{200b}\x{200c}\x{200d}\x{2060}\x{feff}\x{00ad}]"
                   r"|_x00(?:0[0-8bBcCeEfF]|1[0-9a-fA-F]|7[fF])_")
_POLARS_SPACES = r"[\x{00a0}\x{2007}\x{202f}\x{3000}]"


# A cell that holds none of these needs no rewriting (most cells: a search costs less than a rewritten copy).
_POLARS_UNUSUAL = f"{_POLARS_REMOVED}|{_POLARS_SPACES}"


def clean_column(column: str):
    """`clean_cell` for every cell of a text column, vectorised: removed characters, spaces, trim, empty → null."""
    import polars as pl

    return clean_expression(pl.col(column)).alias(column)


def clean_columns(frame, columns: list[str]) -> list:
    """`clean_column` for each of `columns` of `frame`; characters are rewritten only in the columns that hold an
    unusual one (one search per column instead of two rewrites of every cell)."""
    import polars as pl

    if not columns:
        return []
    unusual = frame.select(pl.col(c).str.contains(_POLARS_UNUSUAL).any() for c in columns).row(0)
    return [clean_expression(pl.col(c), rewrite=bool(odd)).alias(c) for c, odd in zip(columns, unusual)]


def clean_expression(cell, *, rewrite: bool = True):
    """`clean_cell` as a polars expression over `cell` (a column, or a list's elements); `rewrite=False` when the
    cells are known to hold no character to remove or replace."""
    import polars as pl

    if rewrite:
        fixed = cell.str.replace_all(_POLARS_REMOVED, "").str.replace_all(_POLARS_SPACES, " ")
        cell = pl.when(cell.str.contains(_POLARS_UNUSUAL)).then(fixed).otherwise(cell)
    text = cell.str.strip_chars()
    return pl.when(text.str.len_bytes() > 0).then(text)


def parse_lists(texts, case: str | None = None):
    """`parse_list` for a whole polars Series of texts, vectorised for the usual forms (`a; b`, `a, b`, one per
    line); a JSON array or a Postgres array literal goes through `parse_list`. Items are cased (`case` "lower" or
    "upper") after repeats are dropped, as `parse_list`'s caller does; an empty list is null."""
    import polars as pl

    text = pl.col("text")
    bracketed = (text.str.starts_with("[") & text.str.ends_with("]")) | (text.str.starts_with("{") & text.str.ends_with("}"))
    frame = pl.DataFrame({"text": texts}, schema={"text": pl.Utf8}).with_columns(bracketed.alias("_bracketed"))
    split = (pl.when(text.str.contains("[;\n]")).then(text.str.replace_all("\n", ";", literal=True).str.split(";"))
             .otherwise(text.str.split(",")))
    item = clean_expression(pl.element())
    items = split.list.eval(item).list.eval(
        pl.element().filter(pl.element().is_not_null() & (pl.element().str.to_uppercase() != "NULL"))
    ).list.unique(maintain_order=True)
    cased = {"lower": pl.element().str.to_lowercase(), "upper": pl.element().str.to_uppercase()}.get(case)
    if cased is not None:
        items = items.list.eval(cased)
    plain = frame.select(pl.when(pl.col("_bracketed")).then(None).otherwise(items).alias("items"))["items"]
    special = frame["text"].filter(frame["_bracketed"])
    if special.len():
        def parsed(value: str) -> list[str]:
            return [i.lower() if case == "lower" else i.upper() if case == "upper" else i for i in parse_list(value)]

        by_text = {value: parsed(value) for value in special.unique().to_list()}
        literal = pl.Series([by_text.get(v) if b else None for v, b in zip(frame["text"], frame["_bracketed"])],
                            dtype=pl.List(pl.Utf8))
        plain = pl.select(pl.coalesce(plain, literal)).to_series()
    return pl.select(pl.when(plain.list.len() == 0).then(None).otherwise(plain)).to_series().rename("items")


def clean_cell(value: str | None) -> str | None:
    if value is None:
        return None
    text = _SPACES.sub(" ", _CONTROL.sub("", _INVISIBLE.sub("", value))).strip()
    return text or None


def header_key(text: str | None) -> str:
    """`Function Code`, ` function-code `, `FunctionCode` → `function_code`."""
    cleaned = clean_cell(text) or ""
    return _NON_WORD.sub("_", _CAMEL.sub("_", cleaned).lower()).strip("_")


def fold(text: str) -> str:
    """`Ästhetik–Café` → `Asthetik-Cafe`: compatibility forms and accents folded, for keys and blind matching."""
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def blind_key(text: str | None) -> str:
    """The key under which names and codes are compared: case-, space-, accent- and punctuation-blind. Case-blind
    means no camel-case split either (`3Rs` and `3rs` are one key), unlike a header's key."""
    return header_key(fold(text).lower()) if text else ""


class ParseError(ValueError):
    """A cell's text does not fit its column's type; the message is written for a steward."""


def parse_int(text: str) -> int:
    try:
        number = float(text.replace(",", "")) if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+(\.0+)?", text) else float(text)
    except ValueError:
        raise ParseError(f"must be a whole number; got `{text}`") from None
    if not math.isfinite(number) or number != int(number):
        raise ParseError(f"must be a whole number; got `{text}`")
    return int(number)


def parse_float(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise ParseError(f"must be a number (use a dot for decimals); got `{text}`") from None
    if not math.isfinite(number):
        raise ParseError(f"must be a finite number; got `{text}`")
    return number


def parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise ParseError(f"must be yes/no (TRUE/FALSE, yes/no, 1/0, ✓/-); got `{text}`")


def _split_array_literal(body: str) -> list[str]:
    items, current, quoted, escaped = [], [], False, False
    for char in body:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    if quoted:
        raise ParseError("has an unclosed quote in a {…} list")
    items.append("".join(current))
    return items


def _json_array(text: str) -> list[str] | None:
    """The items of a JSON array of scalars (`["a", "b, c"]`), or None when the text is not one."""
    try:
        items = json.loads(text)
    except ValueError:
        return None
    if not isinstance(items, list) or any(isinstance(i, (list, dict)) for i in items):
        return None
    return ["" if i is None else i if isinstance(i, str) else json.dumps(i) for i in items]


def parse_list(text: str) -> list[str]:
    """`a; b`, `a, b`, one per line, a Postgres array literal `{a,"b c"}` or a JSON array `["a", "b, c"]`; blanks
    and repeats dropped."""
    array = _json_array(text) if text.startswith("[") and text.endswith("]") else None
    if array is not None:
        raw = array
    elif text.startswith("{") and text.endswith("}"):
        raw = _split_array_literal(text[1:-1])
    elif "\n" in text or ";" in text:
        raw = re.split(r"[;\n]", text)
    else:
        raw = text.split(",")
    seen: dict[str, None] = {}
    for item in raw:
        cleaned = clean_cell(item)
        if cleaned and cleaned.upper() != "NULL":
            seen.setdefault(cleaned, None)
    return list(seen)


def parse_json_object(text: str) -> str:
    """A JSON object's text, re-serialised with sorted keys (so equal content compares equal)."""
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ParseError(f"must be a JSON object ({error})") from None
    if not isinstance(value, dict):
        raise ParseError("must be a JSON object ({…})")
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def enum_matcher(labels: Sequence[str]):
    """A function mapping a steward's spelling (`Medical affairs`, `market access`) to the exact label."""
    by_key = {header_key(label): label for label in labels}

    def match(text: str) -> str:
        return by_key.get(header_key(text), text)

    return match
