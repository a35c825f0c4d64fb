"""``encoding``'s JSON (``compact_json``, ``canonical_json``, ``parse_json``)
against the ``json`` module it stands in for on the client's start path.

The promise: byte for byte the text ``json.dumps`` writes, the objects (or
the exception) ``json.loads`` gives, except that ``NaN``, ``Infinity`` and
``-Infinity`` are refused, as the protocol requires.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from netmap_lm import encoding
from netmap_lm.encoding import canonical_json, compact_json, parse_json

PROPERTY = settings(max_examples=400, deadline=None)

surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
any_char = st.one_of(
    st.characters(),
    surrogates,
    st.sampled_from('"\\/\b\f\n\r\t\x00\x1b\x7f\u2028\u2029\ufeff\U0001f600é'),
)
texts = st.text(any_char, max_size=30)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
keys = st.one_of(texts, st.integers(), st.booleans(), st.none(), st.floats())
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.tuples(children, children)
        | st.dictionaries(texts, children, max_size=5)
    ),
    max_leaves=20,
)
# Objects as a JSON object can hold them (string keys, no NaN): what parses back.
finite = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
parsable = st.recursive(
    finite,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(texts, children, max_size=5),
    max_leaves=20,
)
white = st.text(" \t\n\r", max_size=3)
JSONISH = '{}[]",:0123456789.eE+-truefalsnul \\\n\tu\u00e9\ufeff'  # text that is almost JSON


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def outcome(function: Any, *args: Any, **kwargs: Any) -> tuple[Any, str]:
    """What a call gives: its result (as repr, so -0.0 and 0.0 differ) or its error."""
    try:
        return "ok", repr(function(*args, **kwargs))
    except Exception as exc:  # the exception is what is compared
        return type(exc).__name__, str(exc)


# -- writing ---------------------------------------------------------------------------


@PROPERTY
@given(values)
@example({"op": "hello", "protocol": 1, "nonce": "ab" * 16, "client": "netmap-lm-py/0.1.0"})
@example({"a\u00e9\U0001f600": ["\ud800", "\x00\x1f\x7f", 2**64, -0.0, 1e300]})
@example(float("nan"))
@example("just a string \u2028")
def test_compact_json_is_json_dumps(obj: Any) -> None:
    assert outcome(compact_json, obj) == outcome(json.dumps, obj, separators=(",", ":"))


@PROPERTY
@given(st.dictionaries(keys, values, max_size=6))
def test_compact_json_keys_as_json_writes_them(obj: dict[Any, Any]) -> None:
    assert outcome(compact_json, obj) == outcome(json.dumps, obj, separators=(",", ":"))


@PROPERTY
@given(values)
@example({"b": 1, "a": [True, False, None], "c": {"z": "", "y": -7}})
@example({"\U0001f600": 1, "\uffff": 2, "é": "\u2028/\x7f"})
@example({"x": "\udfff"})
def test_canonical_json_is_sorted_json_dumps(obj: Any) -> None:
    def reference(value: Any) -> bytes:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode()

    assert outcome(canonical_json, obj) == outcome(reference, obj)


@pytest.mark.parametrize(
    "obj",
    [
        {"x": object()},
        [b"bytes"],
        {(1, 2): 3},
        {"a": 1, 2: "mixed keys"},
        {"s": {1, 2}},
    ],
    ids=["object", "bytes", "tuple-key", "mixed-keys-sorted", "set"],
)
def test_errors_are_the_json_modules(obj: Any) -> None:
    assert outcome(compact_json, obj) == outcome(json.dumps, obj, separators=(",", ":"))
    assert (
        outcome(canonical_json, obj)[0]
        == outcome(json.dumps, obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)[0]
    )


def test_cycles_are_refused_and_do_not_poison_later_calls() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert outcome(compact_json, loop) == outcome(json.dumps, loop, separators=(",", ":"))
    shared = [1]
    assert compact_json([shared, shared]) == "[[1],[1]]"  # repeated, not circular
    assert canonical_json({"a": shared, "b": shared}) == b'{"a":[1],"b":[1]}'


# -- reading ---------------------------------------------------------------------------


@PROPERTY
@given(parsable, st.booleans(), st.booleans(), white, white)
@example({"id": 1, "ok": True, "time": 2**62, "big": 10**40, "f": 1.5e-300}, True, False, "", "\n")
@example({"s": '\\"\u00e9\U0001f600\ud800\x00', "n": [None, -0.0]}, False, True, " ", "\r\n")
def test_parse_json_reads_what_json_writes(
    obj: Any, ascii_only: bool, spaced: bool, before: str, after: str
) -> None:
    separators = (", ", ": ") if spaced else (",", ":")
    text = before + json.dumps(obj, ensure_ascii=ascii_only, separators=separators) + after
    expected = outcome(json.loads, text)
    assert outcome(parse_json, text) == expected
    try:
        data = text.encode("utf-8", "surrogatepass")
    except UnicodeEncodeError:
        return
    assert outcome(parse_json, data) == outcome(json.loads, data)


@PROPERTY
@given(st.binary(max_size=60))
@example(b"")
@example(b"{}")
@example(b'\xef\xbb\xbf{"bom": 1}')
@example('{"utf16": "é"}'.encode("utf-16"))
@example('{"utf16le": 1}'.encode("utf-16-le"))
@example('{"utf32": 1}'.encode("utf-32"))
@example(b'{"a": 1} x')
@example(b'{"a": 1}{"b": 2}')
@example(b'{"a": "\xff"}')
@example(b'{"a": "\\ud800"}')
@example(b'{"a": "tab\there"}')
@example(b"[1,]")
@example(b"1" * 5000)
@example(b"[" * 100_000)
@example(b" \t\r\n")
@example(b"\x00{}")
def test_parse_json_bytes_are_parsed_as_json_parses_them(data: bytes) -> None:
    assert outcome(parse_json, data) == outcome(json.loads, data, parse_constant=_refuse)


@PROPERTY
@given(st.text(st.sampled_from(JSONISH), max_size=40))
def test_parse_json_text_is_parsed_as_json_parses_it(text: str) -> None:
    assert outcome(parse_json, text) == outcome(json.loads, text, parse_constant=_refuse)


@pytest.mark.parametrize(
    "text",
    [
        "NaN",
        "Infinity",
        "-Infinity",
        '{"time": NaN}',
        '{"a": [1, Infinity]}',
        '{"a": {"b": -Infinity}}',
        "  [NaN]  ",
    ],
)
def test_parse_json_refuses_nan_and_infinity(text: str) -> None:
    json.loads(text)  # the json module lets these through
    for data in (text, text.encode()):
        with pytest.raises(ValueError, match="is not JSON"):
            parse_json(data)


@pytest.mark.parametrize("text", ["{} x", "{}\n{}", "[1] ]", '"a" "b"', "1 2", "{}\x00"])
def test_parse_json_refuses_trailing_garbage(text: str) -> None:
    for data in (text, text.encode()):
        with pytest.raises(ValueError, match="Extra data"):
            parse_json(data)


def test_parse_json_keeps_big_integers_exact() -> None:
    assert parse_json(b'{"n": 123456789012345678901234567890}') == {
        "n": 123456789012345678901234567890
    }
    assert parse_json(b"[9007199254740993, -0, 1.0]") == [9007199254740993, 0, 1.0]


def test_without_the_accelerator_the_json_module_does_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoding, "_json", None)
    monkeypatch.setattr(encoding, "_scan", None)
    obj = {"b": ["é", 1, None], "a": True}
    assert compact_json(obj) == json.dumps(obj, separators=(",", ":"))
    assert canonical_json(obj) == '{"a":true,"b":["é",1,null]}'.encode()
    assert parse_json(b'{"x": [1, "\\u00e9"]}') == {"x": [1, "é"]}
    with pytest.raises(ValueError):
        parse_json(b"[NaN]")


def test_the_client_path_does_not_import_json() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from netmap_lm.client import sync, session\n"
        "from netmap_lm.encoding import parse_json, compact_json, canonical_json\n"
        'parse_json(b\'{"a": [1, 2.5, "x"]}\')\n'
        "compact_json({'a': 1}), canonical_json({'a': 1})\n"
        "print(sorted(m for m in sys.modules if m == 'json' or m.startswith('json.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
