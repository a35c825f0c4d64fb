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
stay free of heavy imports (no datetime, no dataclasses).  It does without
regular expressions too: compiling them cost every application start ~0.4 ms.
The grammar they would spell, with ``\\s`` the white space of ``str.isspace``:

    line   = \\s* KEYWORD (\\s+ token)* \\s*      KEYWORD = [A-Z_]+
    token  = key "=" (quoted | bare)            key     = [a-z_]+
    quoted = '"' ([^"\\\\] | \\\\ [^\\n])* '"'        bare    = [^\\s"]*

A token ends at white space or at the end of the line.
"""

from __future__ import annotations

from typing import Any

from netmap_lm.encoding import b64u_decode

SIGNING_CONTEXT = b"netmap_lm-license-v1\n"
MAX_LINE_CHARS = 8192  # characters; a license line is a few hundred at most

_KEYWORD_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ_"
_KEY_CHARS = "abcdefghijklmnopqrstuvwxyz_"
_QUOTED_CHARS = '"\\#='  # besides white space, these make a value quoted


def __getattr__(name: str) -> Any:
    if name == "_NEEDS_QUOTES":  # what a value needs quotes for, as a regular expression
        import re

        return re.compile(r'[\s"\\#=]')
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class LineSyntaxError(ValueError):
    """The text of a line cannot be tokenized; the message says where."""


def tokenize(text: str) -> tuple[str, dict[str, str]]:
    """Split a line into its keyword and its ``key=value`` fields.

    Raises :class:`LineSyntaxError` for anything that is not exactly
    ``KEYWORD key=value ...``; repeated keys are an error.
    """
    if len(text) > MAX_LINE_CHARS:
        raise LineSyntaxError(f"line longer than {MAX_LINE_CHARS} characters")
    words = text.split(None, 1)
    keyword = words[0] if words else ""
    if not keyword or keyword.strip(_KEYWORD_CHARS):
        raise LineSyntaxError("a line must start with a KEYWORD in capitals (SERVER, FEATURE)")
    pos = len(text) - len(text.lstrip()) + len(keyword)
    fields: dict[str, str] = {}
    while pos < len(text):
        rest = text[pos:].lstrip()
        if not rest:
            break
        token = _token(text, len(text) - len(rest))
        if token is None:
            raise LineSyntaxError(f"expected key=value at {rest.rstrip()[:30]!r}")
        key, value, pos = token
        if key in fields:
            raise LineSyntaxError(f"key {key!r} given twice")
        fields[key] = value
    return keyword, fields


def _token(text: str, start: int) -> tuple[str, str, int] | None:
    """The ``key=value`` token at ``start``: key, value, and where it ends."""
    equals = text.find("=", start)
    key = text[start:equals]
    if equals < 0 or not key or key.strip(_KEY_CHARS):
        return None
    begin = equals + 1
    if text.startswith('"', begin):
        close = _closing_quote(text, begin + 1)
        if close < 0 or not (close + 1 == len(text) or text[close + 1].isspace()):
            return None
        return key, _unescape(text[begin + 1 : close]), close + 1
    if begin == len(text) or text[begin].isspace():
        return key, "", begin
    bare = text[begin:].split(None, 1)[0]
    if '"' in bare:
        return None
    return key, bare, begin + len(bare)


def _closing_quote(text: str, pos: int) -> int:
    """Where the quoted value that goes on at ``pos`` ends, or -1: the first
    ``"`` not escaped; a backslash escapes any character but a line feed."""
    while True:
        quote_at = text.find('"', pos)
        if quote_at < 0:
            return -1
        backslash = text.find("\\", pos, quote_at)
        if backslash < 0:
            return quote_at
        if text[backslash + 1] == "\n":
            return -1
        pos = backslash + 2


def _unescape(inner: str) -> str:
    """A quoted value's text without its escapes (``\\x`` is ``x``)."""
    if "\\" not in inner:
        return inner
    parts = []
    pos = 0
    while (backslash := inner.find("\\", pos)) >= 0:
        parts.append(inner[pos:backslash])
        parts.append(inner[backslash + 1])
        pos = backslash + 2
    parts.append(inner[pos:])
    return "".join(parts)


def quote(value: str) -> str:
    """A value as written in a license line (bare when it can be)."""
    if value.split() == [value] and not any(c in value for c in _QUOTED_CHARS):
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
