"""``licensing.lines`` reads and quotes exactly as the regular expressions it
replaced (kept here as the reference): same fields, same errors."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from netmap_lm.licensing import lines
from netmap_lm.licensing.lines import LineSyntaxError, quote, tokenize

PROPERTY = settings(max_examples=1000, deadline=None)

# -- the reference: the regular expressions of the first version -------------------------

_TOKEN = re.compile(r'\s*([a-z_]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?=\s|$)')
_KEYWORD = re.compile(r"\s*([A-Z_]+)(?=\s|$)")
_NEEDS_QUOTES = re.compile(r'[\s"\\#=]')


def reference_tokenize(text: str) -> tuple[str, dict[str, str]]:
    if len(text) > lines.MAX_LINE_CHARS:
        raise LineSyntaxError(f"line longer than {lines.MAX_LINE_CHARS} characters")
    match = _KEYWORD.match(text)
    if not match:
        raise LineSyntaxError("a line must start with a KEYWORD in capitals (SERVER, FEATURE)")
    keyword = match.group(1)
    pos = match.end()
    fields: dict[str, str] = {}
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        token = _TOKEN.match(text, pos)
        if not token:
            rest = text[pos:].strip()
            raise LineSyntaxError(f"expected key=value at {rest[:30]!r}")
        key, raw = token.group(1), token.group(2)
        if key in fields:
            raise LineSyntaxError(f"key {key!r} given twice")
        fields[key] = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
        pos = token.end()
    return keyword, fields


def reference_quote(value: str) -> str:
    if value and not _NEEDS_QUOTES.search(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def outcome(function: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", function(*args)
    except LineSyntaxError as exc:
        return "error", str(exc)


# -- strategies ------------------------------------------------------------------------

# White space as str.isspace and the regular expressions see it, ASCII or not,
# and characters that are almost white space.
SPACES = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2028\u2029\u3000"
NOT_QUITE = "\x00\x1b\u200b\ufeff"
SPECIAL = '"\\=#'
chars = st.one_of(
    st.sampled_from(SPACES + NOT_QUITE + SPECIAL),
    st.sampled_from("ABFSEZ_abfsez_019.-"),
    st.characters(),
)
anything = st.text(chars, max_size=60)
keywords = st.one_of(
    st.sampled_from(["SERVER", "FEATURE", "A_B", "_"]), st.text("AZ_b", max_size=4)
)
keys = st.one_of(st.sampled_from(["name", "sig", "a_b", "_"]), st.text("az_A=", max_size=4))
values = st.text(chars, max_size=12)
spaces = st.text(st.sampled_from(SPACES), max_size=3)


@st.composite
def line_like(draw: st.DrawFn) -> str:
    """Mostly well-formed lines, with the edges a hand-written reader gets wrong."""
    parts = [draw(spaces), draw(keywords)]
    for _ in range(draw(st.integers(0, 4))):
        value = draw(values)
        style = draw(st.sampled_from(["bare", "quoted", "raw-quoted", "quote"]))
        if style == "quoted":
            value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        elif style == "raw-quoted":
            value = '"' + value + '"'
        elif style == "quote":
            value = quote(value)
        parts.append(draw(st.text(st.sampled_from(SPACES), min_size=0, max_size=2)))
        parts.append(f"{draw(keys)}={value}")
    parts.append(draw(spaces))
    return "".join(parts)


# -- properties ------------------------------------------------------------------------


@PROPERTY
@given(line_like())
@example('SERVER host=a key="x y" sig=abc')
@example('FEATURE name="a\\"b" note="c\\\\" x=')
@example('FEATURE a="\\\nb"')  # a backslash escapes anything but a line feed
@example('FEATURE a="b\\\n"')
@example('FEATURE a="b"c')
@example('FEATURE a=b"c')
@example('FEATURE a="b" a=c')
@example("FEATURE a=b\n")
@example("FEATURE\u3000a=b\u2028c=d\x85")
@example("FEATURE a=b\x1cc=d")
@example("FEATURE\x00a=b")
@example("FEATUREa=b")
@example("feature a=b")
@example("  ")
@example("")
@example("X " + "a" * 9000)
@example("FEATURE =b")
@example('FEATURE a==b c="="')
@example('FEATURE a="unterminated')
@example('FEATURE a="\\')
def test_tokenize_reads_as_the_regular_expressions_did(text: str) -> None:
    assert outcome(tokenize, text) == outcome(reference_tokenize, text)


@PROPERTY
@given(anything)
def test_tokenize_of_any_text(text: str) -> None:
    assert outcome(tokenize, text) == outcome(reference_tokenize, text)


@PROPERTY
@given(values)
@example("")
@example("a b")
@example("a\u3000b")
@example("\x85")
@example("a#b")
@example("plain-value_1.0")
def test_quote_quotes_as_the_regular_expression_did(value: str) -> None:
    assert quote(value) == reference_quote(value)
    assert tokenize(f"FEATURE v={quote(value)}") == ("FEATURE", {"v": value})


def test_the_needs_quotes_expression_is_still_there() -> None:
    # server/reportlog.py uses it; it is compiled only when asked for.
    assert lines._NEEDS_QUOTES.search("a b")
    assert not lines._NEEDS_QUOTES.search("ab")
    with pytest.raises(AttributeError):
        _ = lines.no_such_thing  # type: ignore[attr-defined]
