"""Base64url without ``binascii`` (the client's start path) is base64url with it."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from netmap_lm import encoding
from netmap_lm.encoding import b64u_decode, b64u_encode

PROPERTY = settings(max_examples=500, deadline=None)
DIGITS = encoding._B64U_DIGITS


@pytest.fixture
def without_binascii(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a process that has not loaded binascii."""
    monkeypatch.delitem(sys.modules, "binascii")


def outcome(function: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", function(*args)
    except ValueError:
        return "ValueError", None


def both(function: Any, arg: Any) -> tuple[Any, Any]:
    """``function(arg)`` with binascii loaded, and without."""
    import binascii

    with_it = outcome(function, arg)
    del sys.modules["binascii"]
    try:
        return with_it, outcome(function, arg)
    finally:
        sys.modules["binascii"] = binascii


@PROPERTY
@given(st.binary(max_size=100))
@example(b"")
@example(b"\x00")
@example(b"\xff" * 33)
@example(bytes(range(256)))
def test_encode_and_decode_without_binascii(data: bytes) -> None:
    with_it, without = both(b64u_encode, data)
    assert with_it == without
    text = with_it[1]
    assert "=" not in text and set(text) <= set(DIGITS)
    assert both(b64u_decode, text) == (("ok", data), ("ok", data))


@PROPERTY
@given(st.text(st.sampled_from(DIGITS + "+/= \n\t.!\x00é"), max_size=12))
@example("")
@example("A")
@example("AB")  # unused low bits set: ignored, as binascii does
@example("AAB")
@example("AAAAA")
@example("AA==")
@example("A-_z")
def test_decode_accepts_and_refuses_what_binascii_does(text: str) -> None:
    with_it, without = both(b64u_decode, text)
    assert with_it == without


def test_decode_refuses_what_is_not_text(without_binascii: None) -> None:
    with pytest.raises(ValueError):
        b64u_decode(b"AAAA")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        b64u_decode("AAAé")


def test_encode_takes_any_bytes_like(without_binascii: None) -> None:
    assert b64u_encode(bytearray(b"\xfb\xff")) == "-_8"
    assert b64u_encode(memoryview(b"\xfb\xff")) == "-_8"


def test_the_client_path_does_not_load_binascii() -> None:
    code = (
        "import sys\n"
        "from netmap_lm.client import sync, session\n"
        "from netmap_lm.encoding import b64u_decode, b64u_encode\n"
        "assert b64u_decode(b64u_encode(bytes(range(40)))) == bytes(range(40))\n"
        "print('binascii' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
