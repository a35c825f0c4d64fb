"""Byte encodings shared by licenses, grants and the wire protocol.

Deliberately tiny and free of heavy imports: the client library loads it at
every application start (SPEC §9).
"""

from __future__ import annotations

import binascii
import json
from typing import Any


def b64u_encode(data: bytes) -> str:
    """URL-safe base64 without padding (RFC 4648 §5): keys and signatures."""
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
    padded = text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4)
    try:
        return binascii.a2b_base64(padded, strict_mode=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64url text: {exc}") from None


def canonical_json(obj: Any) -> bytes:
    """The signed form of a JSON object (docs/protocol.md, "Canonical form").

    Keys sorted by code point, no insignificant white space, UTF-8, non-ASCII
    characters unescaped.  Signed objects hold only strings, integers,
    booleans, null, lists and objects — never floats, whose text form differs
    between languages.
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
