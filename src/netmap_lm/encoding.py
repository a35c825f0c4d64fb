"""Byte encodings shared by licenses, grants and the wire protocol.

Deliberately tiny and free of heavy imports: the client library loads it at
every application start (SPEC §9).  JSON goes straight to the C accelerator
``_json`` that the ``json`` package itself uses, wired exactly as ``json``
wires it: the same bytes out, the same objects in, without importing the
package (its regular expressions cost an application about 1.5 ms at every
start).  Without ``_json`` (another Python implementation), and for every
input the fast path refuses, the ``json`` package does the work, so errors
are the ones it raises.

Base64url goes through ``binascii`` when a program has loaded it anyway (a
server does), else through integers in pure Python: the same text and bytes,
a few microseconds slower, without the ~0.25 ms that loading ``binascii``
(and the zlib it links) costs an application at every start.
"""

from __future__ import annotations

import sys
from typing import Any

try:
    import _json
except ImportError:  # pragma: no cover - CPython always has it
    _json = None  # type: ignore[assignment]

_JSON_SPACE = " \t\n\r"  # what JSON calls white space (RFC 8259 §2)


_B64U_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# A base64url digit is 6 bits: two octal digits.
_TO_OCTAL = {ord(digit): f"{value:02o}" for value, digit in enumerate(_B64U_DIGITS)}
_FROM_OCTAL = {f"{value:02o}": digit for value, digit in enumerate(_B64U_DIGITS)}


def b64u_encode(data: bytes) -> str:
    """URL-safe base64 without padding (RFC 4648 §5): keys and signatures."""
    binascii = sys.modules.get("binascii")
    if binascii is None:
        return _b64u_encode_slow(data)
    return (
        binascii.b2a_base64(data, newline=False)
        .decode("ascii")
        .rstrip("=")
        .replace("+", "-")
        .replace("/", "_")
    )


def b64u_decode(text: str) -> bytes:
    """Inverse of :func:`b64u_encode`; raises ``ValueError`` on bad input."""
    if not isinstance(text, str) or not text.isascii():
        raise ValueError("not base64url text")
    if "+" in text or "/" in text or "=" in text:
        raise ValueError("not base64url text")
    binascii = sys.modules.get("binascii")
    if binascii is None:
        return _b64u_decode_slow(text)
    padded = text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4)
    try:
        return binascii.a2b_base64(padded, strict_mode=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64url text: {exc}") from None


def _b64u_encode_slow(data: bytes) -> str:
    """:func:`b64u_encode` without ``binascii``: the bits as one integer."""
    digits = (len(data) * 8 + 5) // 6
    if not digits:
        return ""
    number = int.from_bytes(data, "big") << (digits * 6 - len(data) * 8)
    octal = f"{number:0{digits * 2}o}"
    return "".join([_FROM_OCTAL[octal[i : i + 2]] for i in range(0, digits * 2, 2)])


def _b64u_decode_slow(text: str) -> bytes:
    """:func:`b64u_decode` without ``binascii``, for text without ``+/=``.
    As ``binascii``: a length of 4k+1 is impossible, unused low bits of the
    last digit are ignored."""
    if text.strip(_B64U_DIGITS) or len(text) % 4 == 1:
        raise ValueError("not base64url text")
    size = len(text) * 6 // 8
    if not size:
        return b""
    number = int(text.translate(_TO_OCTAL), 8) >> (len(text) * 6 - size * 8)
    return number.to_bytes(size, "big")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _ScanContext:
    """The settings ``json.JSONDecoder()`` hands its C scanner, except that
    ``NaN`` and ``Infinity`` (not JSON, RFC 8259 §6) are refused."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_no_constant)


_scan = _json.make_scanner(_ScanContext()) if _json is not None else None  # type: ignore[arg-type]


def parse_json(data: bytes | str) -> Any:
    """``json.loads(data)``, except that ``NaN``, ``Infinity`` and ``-Infinity``
    are refused (``ValueError``) as the protocol requires."""
    if _scan is not None:
        text: str | None = None
        if isinstance(data, str):
            text = data
        elif data[:1] and 0 < data[0] < 0x80 and data[1:2] != b"\0":
            # What json.detect_encoding calls UTF-8 for sure: no BOM, no NUL.
            try:
                text = data.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError:
                text = None
        if text is not None:
            start = len(text) - len(text.lstrip(_JSON_SPACE))
            try:
                obj, end = _scan(text, start)
            except (StopIteration, ValueError):
                pass  # json raises the error, with its message
            else:
                if not text[end:].strip(_JSON_SPACE):
                    return obj
    import json

    return json.loads(data, parse_constant=_no_constant)


def _not_serializable(obj: Any) -> Any:
    raise TypeError(f"Object of type {obj.__class__.__name__} is not JSON serializable")


def _encode(obj: Any, sort_keys: bool, ensure_ascii: bool) -> str | None:
    """What ``json.dumps(obj, separators=(",", ":"), ...)`` does via ``_json``;
    None when ``json`` itself has to (it raises the error, with its message)."""
    if _json is None:
        return None
    quote = _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring
    if isinstance(obj, str):
        return quote(obj)  # type: ignore[no-any-return]
    # A fresh ``markers`` dict every time, as json does: it detects cycles.
    encoder = _json.make_encoder(
        {}, _not_serializable, quote, None, ":", ",", sort_keys, False, True
    )
    try:
        return "".join(encoder(obj, 0))
    except (TypeError, ValueError, RecursionError):
        return None


def compact_json(obj: Any) -> str:
    """``json.dumps(obj, separators=(",", ":"))``: one protocol line, ASCII only."""
    text = _encode(obj, sort_keys=False, ensure_ascii=True)
    if text is None:
        import json

        text = json.dumps(obj, separators=(",", ":"))
    return text


def canonical_json(obj: Any) -> bytes:
    """The signed form of a JSON object (docs/protocol.md, "Canonical form").

    Keys sorted by code point, no insignificant white space, UTF-8, non-ASCII
    characters unescaped.  Signed objects hold only strings, integers,
    booleans, null, lists and objects — never floats, whose text form differs
    between languages.
    """
    text = _encode(obj, sort_keys=True, ensure_ascii=False)
    if text is None:
        import json

        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode()
