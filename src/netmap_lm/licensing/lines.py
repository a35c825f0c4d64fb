"""One license line: tokenizing, the canonical form, and its signature.

Theory of operation.  A license line is ``KEYWORD key=value ... sig=...``.
The vendor signs the *canonical form* of the line, so that white space and
the order of keys do not matter but every value does:

    canonical = KEYWORD, then " key=value" for every key except ``sig``,
                sorted by key; a value is written bare unless it is empty or
                holds white space, ``"``, ``\\``, ``#`` or ``=``, in which case
                it is double-quoted with ``\\`` and ``"`` escaped.
    signed    = b"netmap_lm-license-v1\\n" + canonical (UTF-8)
    sig       = base64url(Ed25519(vendor private key, signed)), no padding

This module is imported by the client library, which checks the vendor
signature of the SERVER and FEATURE lines carried in every grant; it must
stay free of heavy imports (no datetime, no dataclasses).
"""

from __future__ import annotations

import re
from typing import Any

from netmap_lm.encoding import b64u_decode

SIGNING_CONTEXT = b"netmap_lm-license-v1\n"
MAX_LINE_CHARS = 8192  # characters; a license line is a few hundred at most

_TOKEN = re.compile(r'\s*([a-z_]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?=\s|$)')
_KEYWORD = re.compile(r"\s*([A-Z_]+)(?=\s|$)")
_NEEDS_QUOTES = re.compile(r'[\s"\\#=]')


class LineSyntaxError(ValueError):
    """The text of a line cannot be tokenized; the message says where."""


def tokenize(text: str) -> tuple[str, dict[str, str]]:
    """Split a line into its keyword and its ``key=value`` fields.

    Raises :class:`LineSyntaxError` for anything that is not exactly
    ``KEYWORD key=value ...``; repeated keys are an error.
    """
    if len(text) > MAX_LINE_CHARS:
        raise LineSyntaxError(f"line longer than {MAX_LINE_CHARS} characters")
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
        fields[key] = _unquote(raw) if raw.startswith('"') else raw
        pos = token.end()
    return keyword, fields


def _unquote(raw: str) -> str:
    return re.sub(r"\\(.)", r"\1", raw[1:-1])


def quote(value: str) -> str:
    """A value as written in a license line (bare when it can be)."""
    if value and not _NEEDS_QUOTES.search(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def canonical(keyword: str, fields: dict[str, str]) -> str:
    """The canonical form of a line: what the vendor signature covers."""
    parts = [keyword]
    parts.extend(f"{key}={quote(fields[key])}" for key in sorted(fields) if key != "sig")
    return " ".join(parts)


def format_line(keyword: str, fields: dict[str, str], sig: str) -> str:
    """A line as written to a license file: the given key order, ``sig`` last."""
    parts = [keyword]
    parts.extend(f"{key}={quote(value)}" for key, value in fields.items() if key != "sig")
    parts.append(f"sig={sig}")
    return " ".join(parts)


def signature_valid(vendor_key: Any, keyword: str, fields: dict[str, str]) -> bool:
    """True when ``sig`` is the vendor's Ed25519 signature of the canonical form.

    ``vendor_key`` is a ``cryptography`` Ed25519 public key.
    """
    sig_text = fields.get("sig")
    if not sig_text:
        return False
    try:
        sig = b64u_decode(sig_text)
        vendor_key.verify(sig, SIGNING_CONTEXT + canonical(keyword, fields).encode())
    except Exception as exc:
        # Loaded only when a check fails: a client whose checks pass never pays for it.
        from cryptography.exceptions import InvalidSignature

        if isinstance(exc, ValueError | InvalidSignature):
            return False
        raise
    return True
