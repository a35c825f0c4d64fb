"""Signed hellos and grants: the chain of SPEC §3 as bytes.

Theory of operation.  The client pins the vendor public key.  In ``hello``
the server sends its public key, the vendor-signed SERVER line that binds
that key, and its signature over the client's fresh nonce: only the holder
of a vendor-blessed server key can produce it, and it cannot be replayed to
another session.  Every grant is a JSON object holding the same nonce and
the lease terms, signed by the server key, and travels with the
vendor-signed FEATURE line it draws a seat from.  The client checks all of
it (:func:`verify_hello`, :func:`verify_grant`); any failure is
``SERVER_NOT_TRUSTED``.

Signed bytes are ``CONTEXT + canonical_json(object)``; the contexts keep a
signature of one kind from being passed off as another.

Imported by the client library: standard library and ``cryptography`` only,
and ``cryptography`` only when a function here first needs it.  Importing it
is most of what a license check costs an application at start (the floor of
docs/performance.md); a client sends its hello and first request before it
makes its first key object, so that import runs while the server answers.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from netmap_lm.encoding import b64u_decode, b64u_encode, canonical_json
from netmap_lm.licensing import lines

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HELLO_CONTEXT = b"netmap_lm-hello-v1\n"
GRANT_CONTEXT = b"netmap_lm-grant-v1\n"
BATCH_CONTEXT = b"netmap_lm-grant-batch-v1\n"
MAX_BATCH_DIGESTS = 256  # grants under one signature; bounds a reply's size (~11 KiB)
TOKEN_CONTEXT = b"netmap_lm-tcp-token-v1\n"
ADMIN_CONTEXT = b"netmap_lm-admin-v1\n"
GRANT_FIELDS = frozenset(
    {
        "lease",
        "feature",
        "version",
        "user",
        "host",
        "display",
        "pid",
        "project",
        "line",
        "time",
        "nonce",
        "heartbeat_interval",
        "lease_timeout",
        "grace",
        "key",
        "hostid",
        "borrow_until",
    }
)
MS_PER_DAY = 86_400_000


class Untrusted(Exception):
    """The server's answer does not verify against the pinned vendor key."""


def hello_payload(nonce: str, protocol: int, server_key: str, server_time_ms: int) -> bytes:
    return HELLO_CONTEXT + canonical_json(
        {"nonce": nonce, "protocol": protocol, "server_key": server_key, "time": server_time_ms}
    )


def grant_payload(grant: dict[str, Any]) -> bytes:
    return GRANT_CONTEXT + canonical_json(grant)


def grant_digest(grant: dict[str, Any]) -> str:
    """base64url SHA-256 of a grant's signed form: what a batch signature lists."""
    from cryptography.hazmat.primitives import hashes

    digest = hashes.Hash(hashes.SHA256())
    digest.update(grant_payload(grant))
    return b64u_encode(digest.finalize())


def batch_payload(digests: list[str]) -> bytes:
    """What the server signs: the digests of a batch of grants (one Ed25519
    signature serves them all, SPEC §6; ``server/signer.py`` forms the batches)."""
    return BATCH_CONTEXT + canonical_json({"grants": digests})


def _verify_batch(
    server_key: Ed25519PublicKey, holder: dict[str, Any], grant: dict[str, Any], what: str
) -> None:
    batch = holder.get("batch")
    if (
        not isinstance(batch, list)
        or not 0 < len(batch) <= MAX_BATCH_DIGESTS
        or not all(isinstance(d, str) for d in batch)
    ):
        raise Untrusted(f"{what} has no valid batch of digests")
    try:
        digest = grant_digest(grant)
    except (UnicodeEncodeError, ValueError, TypeError):
        raise Untrusted(f"{what} is not text that can be signed") from None
    if digest not in batch:
        raise Untrusted(f"{what} is not in the signed batch")
    _verify(server_key, holder.get("sig"), batch_payload(batch), what)


def lease_token(key: bytes, lease_id: str) -> str:
    """Proof of holding a lease key, sent with TCP heartbeats and checkins.

    The key itself never travels again after the grant, so a token seen on
    the wire does not let anyone forge UDP heartbeats.
    """
    from cryptography.hazmat.primitives import hashes, hmac

    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(TOKEN_CONTEXT + lease_id.encode())
    return b64u_encode(mac.finalize()[:16])


def admin_proof(admin_key: bytes, nonce: str) -> str:
    """Proof of holding the admin credential, bound to one session's nonce.

    The credential itself never travels, and a proof seen on the wire is
    worthless in any other session.
    """
    from cryptography.hazmat.primitives import hashes, hmac

    mac = hmac.HMAC(admin_key, hashes.SHA256())
    mac.update(ADMIN_CONTEXT + nonce.encode())
    return b64u_encode(mac.finalize())


def _verify(key: Ed25519PublicKey, sig: Any, payload: bytes, what: str) -> None:
    try:
        key.verify(b64u_decode(sig), payload)
    except Exception as exc:
        # cryptography.exceptions is loaded only when a check fails (it costs
        # every application start otherwise).
        from cryptography.exceptions import InvalidSignature

        if not isinstance(exc, ValueError | TypeError | InvalidSignature):
            raise
        raise Untrusted(f"{what} is not signed by the server key") from None


def verify_hello(
    reply: dict[str, Any], nonce: str, vendor_key: Ed25519PublicKey, protocol: int
) -> tuple[Ed25519PublicKey, dict[str, str]]:
    """Check a hello reply; return the server key and its SERVER line fields."""
    if reply.get("protocol") != protocol:
        raise Untrusted(f"server speaks protocol {reply.get('protocol')!r}, not {protocol}")
    server_key_text = reply.get("server_key")
    server_line = reply.get("server_line")
    if not isinstance(server_key_text, str) or not isinstance(server_line, str):
        raise Untrusted("hello lacks server_key or server_line")
    try:
        keyword, fields = lines.tokenize(server_line)
    except ValueError:
        raise Untrusted("server_line is not a license line") from None
    if keyword != "SERVER" or not lines.signature_valid(vendor_key, keyword, fields):
        raise Untrusted("the SERVER line is not signed by the vendor key")
    if fields.get("key") != server_key_text:
        raise Untrusted("the vendor-signed SERVER line binds another server key")
    try:
        server_key = _public_key(server_key_text)
    except ValueError:
        raise Untrusted("server_key is not an Ed25519 key") from None
    server_time = reply.get("time")
    if not isinstance(server_time, int):
        raise Untrusted("hello lacks the server time")
    _verify(
        server_key,
        reply.get("sig"),
        hello_payload(nonce, protocol, server_key_text, server_time),
        "hello",
    )
    return server_key, fields


def verify_grant(
    reply: dict[str, Any],
    *,
    nonce: str,
    server_key: Ed25519PublicKey,
    vendor_key: Ed25519PublicKey,
    request: dict[str, Any],
    hello_time_ms: int,
) -> dict[str, Any]:
    """Check a checkout reply against the session and the request; return the grant."""
    grant = reply.get("grant")
    if not isinstance(grant, dict) or set(grant) != GRANT_FIELDS:
        raise Untrusted("grant has missing or extra fields")
    _verify_batch(server_key, reply, grant, "grant")
    _check_lease_fields(grant)
    if grant["nonce"] != nonce:
        raise Untrusted("grant was made for another session (nonce differs): a replay")
    for key in ("feature", "version", "user", "host", "display", "pid", "project"):
        if grant[key] != request.get(key):
            raise Untrusted(f"grant {key} {grant[key]!r} is not the one requested")
    if grant["hostid"] != request.get("hostid", ""):
        raise Untrusted("grant hostid is not the one sent")
    terms = (
        grant["heartbeat_interval"],
        grant["lease_timeout"],
        grant["time"],
        grant["grace"],
        grant["borrow_until"],
    )
    if not all(isinstance(t, int) and not isinstance(t, bool) for t in terms):
        raise Untrusted("grant terms are not integers")
    if not 0 < grant["heartbeat_interval"] < grant["lease_timeout"]:
        raise Untrusted("grant heartbeat interval and lease timeout do not make sense")
    if not hello_time_ms - 60_000 <= grant["time"] <= hello_time_ms + MS_PER_DAY:
        raise Untrusted("grant time is outside this session")
    hours = request.get("borrow", 0)
    if grant["borrow_until"] and not (
        hours and grant["time"] < grant["borrow_until"] <= grant["time"] + hours * 3_600_000
    ):
        raise Untrusted("grant borrow period is not the one asked for")
    if hours and not grant["borrow_until"]:
        raise Untrusted("a borrow was asked for, but the grant is an ordinary lease")
    verify_feature_line(grant, reply.get("feature_line"), vendor_key)
    return grant


def verify_grant_offline(
    saved: dict[str, Any], vendor_key: Ed25519PublicKey, now_ms: int, *, version: str = "0"
) -> dict[str, Any]:
    """Check a saved borrow grant without any server: vendor key → SERVER line
    → server key → grant signature → FEATURE line, the borrow period, and
    that the FEATURE line licenses ``version`` (the one asked for now)."""
    grant = saved.get("grant")
    server_line = saved.get("server_line")
    if not (
        isinstance(grant, dict) and set(grant) == GRANT_FIELDS and isinstance(server_line, str)
    ):
        raise Untrusted("not a borrow grant")
    try:
        keyword, fields = lines.tokenize(server_line)
        server_key = _public_key(fields.get("key", ""))
    except ValueError:
        raise Untrusted("the SERVER line of the borrow is unreadable") from None
    if keyword != "SERVER" or not lines.signature_valid(vendor_key, keyword, fields):
        raise Untrusted("the SERVER line of the borrow is not signed by the vendor key")
    _verify_batch(server_key, saved, grant, "borrow grant")
    verify_feature_line(grant, saved.get("feature_line"), vendor_key, version)
    if not isinstance(grant["borrow_until"], int) or grant["borrow_until"] <= 0:
        raise Untrusted("the grant is not a borrow")
    if not grant["time"] - 60_000 <= now_ms < grant["borrow_until"]:
        raise Untrusted("the borrow period is over (or the clock is before the borrow)")
    return grant


def verify_feature_line(
    grant: dict[str, Any], feature_line: Any, vendor_key: Ed25519PublicKey, version: str = "0"
) -> None:
    """The vendor-signed FEATURE line a grant draws from, checked against it
    (and, for a borrow used again, against the ``version`` asked for then)."""
    if not isinstance(feature_line, str):
        raise Untrusted("grant lacks its FEATURE line")
    try:
        keyword, fields = lines.tokenize(feature_line)
    except ValueError:
        raise Untrusted("feature_line is not a license line") from None
    if keyword != "FEATURE" or not lines.signature_valid(vendor_key, keyword, fields):
        raise Untrusted("the FEATURE line is not signed by the vendor key")
    if fields.get("name") != grant["feature"] or fields.get("id") != grant["line"]:
        raise Untrusted("the FEATURE line is not the one the grant draws from")
    licensed = _version_key(fields.get("version", ""))
    if licensed < _version_key(grant["version"]):
        raise Untrusted("the FEATURE line does not license the granted version")
    if licensed < _version_key(version):
        raise Untrusted(f"the FEATURE line does not license version {version}")
    try:
        day = time.strftime("%Y-%m-%d", time.gmtime(grant["time"] / 1000))
    except (OverflowError, OSError, ValueError, TypeError):
        raise Untrusted("grant time is not a date") from None
    start, expires = fields.get("start", "permanent"), fields.get("expires", "")
    if (start != "permanent" and day < start) or (expires != "permanent" and day > expires):
        raise Untrusted("the FEATURE line is not valid on the grant's date")


def _check_lease_fields(grant: dict[str, Any]) -> None:
    lease, key = grant.get("lease"), grant.get("key")
    if not (
        isinstance(lease, str) and len(lease) == 32 and all(c in "0123456789abcdef" for c in lease)
    ):
        raise Untrusted("grant lease id is not 32 hex digits")
    try:
        if not isinstance(key, str) or len(b64u_decode(key)) != 32:
            raise ValueError
    except ValueError:
        raise Untrusted("grant lease key is not 32 bytes of base64url") from None


def _public_key(text: str) -> Ed25519PublicKey:
    """A base64url Ed25519 key (the PEM machinery of ``licensing.keys`` costs the
    client tens of milliseconds to import; this needs none of it)."""
    return public_key_from_bytes(b64u_decode(text))


def public_key_from_bytes(raw: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from its 32 raw bytes; ``ValueError`` otherwise."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def _version_key(text: str) -> tuple[int, ...]:
    try:
        parts = tuple(int(p) for p in str(text).split("."))
    except ValueError:
        return (-1,)
    return parts + (0,) * (4 - len(parts))
