"""Generate the conformance vectors of docs/protocol.md and docs/license-file.md.

Run ``.venv/bin/python tests/vectors/make_vectors.py`` to rewrite
``tests/vectors/protocol.json`` and ``tests/vectors/license.json``.
``tests/test_conformance.py`` replays the stored files against the code and
also checks that this script still produces them byte for byte, so a change
of the wire format fails the tests until the vectors (and the documents) are
deliberately regenerated.

Everything here is deterministic: fixed Ed25519 seeds (the secret keys of
RFC 8032 §7.1, so another implementation can check its Ed25519 first), a
fixed nonce, fixed times and a fixed lease key.  Ed25519 signatures are
deterministic, so the signatures below are the only correct ones.

The parsing vectors and the session scripts are written by hand: they are
the specification, the code is checked against them.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from netmap_lm.encoding import b64u_encode, canonical_json
from netmap_lm.licensing import keys, licensefile, lines, trust
from netmap_lm.protocol import udp

HERE = Path(__file__).resolve().parent
PROTOCOL_FILE = "protocol.json"
LICENSE_FILE = "license.json"

# RFC 8032 §7.1 TEST 1, 2 and 3 secret keys, and one more for a second vendor.
VENDOR_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
SERVER_SEED = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"
IMPOSTOR_SEED = "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7"
OTHER_VENDOR_SEED = "1111111111111111111111111111111111111111111111111111111111111111"

NONCE = "00112233445566778899aabbccddeeff"
OTHER_NONCE = "ffeeddccbbaa99887766554433221100"
HELLO_TIME_MS = 1767225600000  # 2026-01-01T00:00:00Z
GRANT_TIME_MS = 1767225600250
LEASE_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
LEASE_KEY_HEX = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
UDP_SEQ = 1767225601000  # a client starts at its wall clock in ms (client/sync.py)
ADMIN_KEY_HEX = "a5" * 32
HOUR_MS = 3_600_000

SERVER_FIELDS: dict[str, Any] = {
    "host": "lm1.example.com",
    "port": 1493,
    "key": None,  # the server public key, filled in below
    "hostid": "machine:3f2a9c0d1b7e4a55",
}
FEATURE_FIELDS: dict[str, Any] = {
    "name": "netmap",
    "version": "5.0",
    "seats": 3,
    "type": "floating",
    "start": "2025-06-01",
    "expires": "2027-12-31",
    "id": "netmap-2026-a",
    "grace": 60,
    "customer": "ACME Mapping GmbH",
}
CHECKOUT_REQUEST: dict[str, Any] = {
    "id": 2,
    "op": "checkout",
    "feature": "netmap",
    "version": "5.0",
    "user": "alice",
    "host": "ws-17.example.com",
    "display": ":0",
    "pid": 4242,
    "project": "Kartierung Süd",
    "hostid": "machine:3f2a9c0d1b7e4a55,mac:0242ac110002",
}


def private(seed_hex: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed_hex))


def public_text(key: Ed25519PrivateKey) -> str:
    return keys.public_text(key.public_key())


def _key_entry(seed_hex: str, role: str) -> dict[str, str]:
    key = private(seed_hex)
    text = public_text(key)
    return {
        "role": role,
        "seed_hex": seed_hex,
        "public": text,
        "public_hex": keys.public_from_text(text).public_bytes_raw().hex(),
    }


def sign_line(key: Ed25519PrivateKey, keyword: str, fields: dict[str, Any]) -> str:
    """Like ``licensefile.sign_line`` but without its self-check, so that a
    second vendor's key can sign lines for the negative vectors."""
    values = {k: str(v) for k, v in fields.items() if v is not None}
    sig = key.sign(lines.SIGNING_CONTEXT + lines.canonical(keyword, values).encode())
    return lines.format_line(keyword, values, b64u_encode(sig))


def _hello_reply(
    server: Ed25519PrivateKey,
    server_line: str,
    *,
    nonce: str = NONCE,
    time_ms: int = HELLO_TIME_MS,
    key_text: str | None = None,
) -> dict[str, Any]:
    key_text = key_text or public_text(server)
    payload = trust.hello_payload(nonce, 1, key_text, time_ms)
    return {
        "id": 1,
        "ok": True,
        "server": "netmap_lm",
        "version": "0.1.0",
        "protocol": 1,
        "server_key": key_text,
        "server_line": server_line,
        "time": time_ms,
        "heartbeat_interval": 30,
        "lease_timeout": 120,
        "sig": b64u_encode(server.sign(payload)),
    }


def _grant(**changes: Any) -> dict[str, Any]:
    grant = {
        "lease": LEASE_ID,
        "feature": CHECKOUT_REQUEST["feature"],
        "version": CHECKOUT_REQUEST["version"],
        "user": CHECKOUT_REQUEST["user"],
        "host": CHECKOUT_REQUEST["host"],
        "display": CHECKOUT_REQUEST["display"],
        "pid": CHECKOUT_REQUEST["pid"],
        "project": CHECKOUT_REQUEST["project"],
        "line": FEATURE_FIELDS["id"],
        "time": GRANT_TIME_MS,
        "nonce": NONCE,
        "heartbeat_interval": 30,
        "lease_timeout": 120,
        "grace": FEATURE_FIELDS["grace"],
        "key": b64u_encode(bytes.fromhex(LEASE_KEY_HEX)),
        "hostid": CHECKOUT_REQUEST["hostid"],
        "borrow_until": 0,
    }
    grant.update(changes)
    return grant


def _grant_reply(
    server: Ed25519PrivateKey,
    grant: dict[str, Any],
    feature_line: str,
    *,
    batch: list[str] | None = None,
) -> dict[str, Any]:
    """A checkout reply; ``batch`` (digests) defaults to this grant's alone."""
    digests = [trust.grant_digest(grant)] if batch is None else batch
    return {
        "id": 2,
        "ok": True,
        "grant": grant,
        "feature_line": feature_line,
        "sig": b64u_encode(server.sign(trust.batch_payload(digests))),
        "batch": digests,
    }


def _other_grant() -> dict[str, Any]:
    """Another client's grant, signed in the same batch as the vector grant."""
    return _grant(
        lease="8899aabbccddeeff0011223344556677",
        user="bob",
        host="ws-2.example.com",
        display="",
        pid=77,
        project="",
        hostid="",
        nonce=OTHER_NONCE,
        key=b64u_encode(bytes(range(32, 64))),
    )


# -- crypto vectors ----------------------------------------------------------------------


def crypto_vectors() -> dict[str, Any]:
    vendor, server = private(VENDOR_SEED), private(SERVER_SEED)
    impostor, other_vendor = private(IMPOSTOR_SEED), private(OTHER_VENDOR_SEED)
    server_fields = {**SERVER_FIELDS, "key": public_text(server)}
    server_line = sign_line(vendor, "SERVER", server_fields)
    feature_line = sign_line(vendor, "FEATURE", FEATURE_FIELDS)
    lease_key = bytes.fromhex(LEASE_KEY_HEX)

    hello_request = {
        "id": 1,
        "op": "hello",
        "protocol": 1,
        "nonce": NONCE,
        "client": "netmap-lm-py/0.1.0",
    }
    hello_payload = trust.hello_payload(NONCE, 1, public_text(server), HELLO_TIME_MS)
    hello_reply = _hello_reply(server, server_line)
    grant = _grant()
    grant_payload = trust.grant_payload(grant)
    other_digest = trust.grant_digest(_other_grant())
    batch = [trust.grant_digest(grant), other_digest]
    batch_payload = trust.batch_payload(batch)
    grant_reply = _grant_reply(server, grant, feature_line, batch=batch)

    heartbeat = udp.pack(udp.HEARTBEAT, LEASE_ID, UDP_SEQ, lease_key)
    ack = udp.pack(udp.ACK, LEASE_ID, UDP_SEQ, lease_key)
    tampered_mac = heartbeat[:-1] + bytes([heartbeat[-1] ^ 1])
    other_key = bytes(32)

    def hello_case(
        name: str, why: str, reply: dict[str, Any], nonce: str = NONCE
    ) -> dict[str, Any]:
        return {"name": name, "why": why, "nonce": nonce, "reply": reply}

    def grant_case(
        name: str,
        why: str,
        reply: dict[str, Any],
        *,
        nonce: str = NONCE,
        request: dict[str, Any] | None = None,
        hello_time: int = HELLO_TIME_MS,
    ) -> dict[str, Any]:
        return {
            "name": name,
            "why": why,
            "nonce": nonce,
            "request": request or CHECKOUT_REQUEST,
            "hello_time": hello_time,
            "reply": reply,
        }

    def edited(obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
        out = copy.deepcopy(obj)
        out.update(changes)
        return out

    impostor_line = sign_line(
        other_vendor, "SERVER", {**SERVER_FIELDS, "key": public_text(impostor)}
    )
    no_sig = edited(hello_reply)
    del no_sig["sig"]
    hello_rejects = [
        hello_case(
            "wrong_nonce",
            "signed over another session's nonce (a replayed hello)",
            hello_reply,
            nonce=OTHER_NONCE,
        ),
        hello_case(
            "tampered_time",
            "time changed after signing",
            edited(hello_reply, time=HELLO_TIME_MS + 1),
        ),
        hello_case(
            "impostor_key",
            "an impostor's own key and valid signature, but the "
            "vendor-signed SERVER line binds another key",
            _hello_reply(impostor, server_line),
        ),
        hello_case(
            "impostor_line_other_vendor",
            "SERVER line for the impostor's key signed by another vendor key",
            _hello_reply(impostor, impostor_line),
        ),
        hello_case(
            "tampered_server_line",
            "SERVER line edited (port) after the vendor signed",
            edited(hello_reply, server_line=server_line.replace("port=1493", "port=1494")),
        ),
        hello_case(
            "feature_line_as_server_line",
            "a vendor-signed line of the wrong kind",
            edited(hello_reply, server_line=feature_line),
        ),
        hello_case(
            "wrong_protocol",
            "reply speaks another protocol version",
            edited(hello_reply, protocol=2),
        ),
        hello_case("missing_sig", "no signature", no_sig),
        hello_case(
            "time_not_integer", "time is a string", edited(hello_reply, time=str(HELLO_TIME_MS))
        ),
    ]

    other_feature = sign_line(vendor, "FEATURE", {**FEATURE_FIELDS, "id": "netmap-2026-b"})
    foreign_feature = sign_line(other_vendor, "FEATURE", FEATURE_FIELDS)
    extra = _grant(admin=True)
    missing = _grant()
    del missing["key"]
    late_time = 1830297600000  # 2028-01-01, after the FEATURE line expires
    borrow_request = {**CHECKOUT_REQUEST, "borrow": 72}
    borrow_grant = _grant(borrow_until=GRANT_TIME_MS + 72 * HOUR_MS)
    borrow_reply = _grant_reply(server, borrow_grant, feature_line)
    grant_rejects = [
        grant_case(
            "tampered_user",
            "grant field changed after the server signed",
            edited(grant_reply, grant=_grant(user="mallory")),
        ),
        grant_case(
            "replayed_grant",
            "genuine grant of another session (nonce differs)",
            grant_reply,
            nonce=OTHER_NONCE,
        ),
        grant_case(
            "tampered_feature_seats",
            "FEATURE line edited (seats=3 -> seats=30)",
            edited(grant_reply, feature_line=feature_line.replace("seats=3", "seats=30")),
        ),
        grant_case(
            "feature_line_other_vendor",
            "FEATURE line signed by another vendor key",
            edited(grant_reply, feature_line=foreign_feature),
        ),
        grant_case(
            "feature_line_other_id",
            "vendor-signed FEATURE line, but not the one the grant draws from",
            edited(grant_reply, feature_line=other_feature),
        ),
        grant_case(
            "signed_by_impostor",
            "grant signed by a key other than the hello's",
            _grant_reply(impostor, grant, feature_line),
        ),
        grant_case(
            "not_requested",
            "grant for another user than the request",
            grant_reply,
            request={**CHECKOUT_REQUEST, "user": "bob"},
        ),
        grant_case(
            "extra_field",
            "grant with a field that is not in the list",
            _grant_reply(server, extra, feature_line),
        ),
        grant_case(
            "missing_field", "grant without its key", _grant_reply(server, missing, feature_line)
        ),
        grant_case(
            "version_above_line",
            "grant for 6.0 from a line that licenses 5.0",
            _grant_reply(server, _grant(version="6.0"), feature_line),
            request={**CHECKOUT_REQUEST, "version": "6.0"},
        ),
        grant_case(
            "line_expired_on_grant_day",
            "grant dated after the line's expires=",
            _grant_reply(server, _grant(time=late_time), feature_line),
            hello_time=late_time,
        ),
        grant_case(
            "time_outside_session",
            "grant time more than 60 s before the hello",
            grant_reply,
            hello_time=GRANT_TIME_MS + 60_001,
        ),
        grant_case(
            "interval_not_below_timeout",
            "heartbeat_interval >= lease_timeout",
            _grant_reply(server, _grant(heartbeat_interval=120), feature_line),
        ),
        grant_case(
            "terms_not_integers",
            "grace is a string",
            _grant_reply(server, _grant(grace="60"), feature_line),
        ),
        grant_case(
            "no_feature_line",
            "reply lacks feature_line",
            {k: v for k, v in grant_reply.items() if k != "feature_line"},
        ),
        grant_case(
            "not_in_batch",
            "a validly signed batch that does not list this grant",
            _grant_reply(server, grant, feature_line, batch=[other_digest]),
        ),
        grant_case(
            "empty_batch",
            "a signed empty batch",
            _grant_reply(server, grant, feature_line, batch=[]),
        ),
        grant_case(
            "batch_too_long",
            "257 digests under one signature (at most 256)",
            _grant_reply(
                server,
                grant,
                feature_line,
                batch=[trust.grant_digest(grant)] + [other_digest] * 256,
            ),
        ),
        grant_case(
            "batch_not_strings",
            "a digest that is not a string",
            _grant_reply(server, grant, feature_line, batch=[trust.grant_digest(grant), 5]),
        ),
        grant_case(
            "batch_extended_after_signing",
            "a digest added to the batch after the server signed it",
            edited(grant_reply, batch=[*batch, trust.grant_digest(_grant(user="mallory"))]),
        ),
        grant_case(
            "grant_signed_alone_without_batch",
            "a signature over the grant payload itself, no batch (not the wire form)",
            {k: v for k, v in grant_reply.items() if k != "batch"}
            | {"sig": b64u_encode(server.sign(grant_payload))},
        ),
        grant_case(
            "hostid_not_sent",
            "grant for other host ids than the request sent",
            _grant_reply(server, _grant(hostid="mac:00163e000001"), feature_line),
        ),
        grant_case(
            "borrow_not_asked",
            "a borrow grant (borrow_until set) for an ordinary checkout",
            _grant_reply(server, borrow_grant, feature_line),
        ),
        grant_case(
            "borrow_refused_silently",
            "an ordinary lease for a checkout that asked to borrow",
            grant_reply,
            request=borrow_request,
        ),
        grant_case(
            "borrow_too_long",
            "borrow_until beyond the hours asked for",
            _grant_reply(
                server, _grant(borrow_until=GRANT_TIME_MS + 72 * HOUR_MS + 1), feature_line
            ),
            request=borrow_request,
        ),
    ]

    replay_sequence = [
        {"seq": 10, "answered": True},
        {"seq": 10, "answered": False},
        {"seq": 9, "answered": False},
        {"seq": 11, "answered": True},
        {"tcp_heartbeat_seq": 100},
        {"seq": 50, "answered": False},
        {"seq": 101, "answered": True},
    ]
    canonical_samples: list[Any] = [
        {"b": 1, "a": [True, False, None], "c": {"z": "", "y": -7}},
        {"text": "Kartierung Süd – 東京 \U0001f5fa", "quote": '"\\', "ctl": "\n\t\x01\x7f"},
        {"nonce": NONCE, "protocol": 1, "server_key": public_text(server), "time": HELLO_TIME_MS},
    ]
    b64_samples = [b"", b"f", b"fo", b"foo", b"\xfb\xff\xbf", bytes(range(32))]

    return {
        "about": (
            "Deterministic vectors for docs/protocol.md. Regenerate with "
            "tests/vectors/make_vectors.py; replayed by tests/test_conformance.py. "
            "Bytes are hex; keys and signatures are base64url without padding; "
            "'payload' strings are the exact signed bytes as UTF-8 text."
        ),
        "keys": {
            "vendor": _key_entry(VENDOR_SEED, "vendor (RFC 8032 TEST 1)"),
            "server": _key_entry(SERVER_SEED, "server (RFC 8032 TEST 2)"),
            "impostor": _key_entry(IMPOSTOR_SEED, "impostor server (RFC 8032 TEST 3)"),
            "other_vendor": _key_entry(OTHER_VENDOR_SEED, "a second vendor"),
        },
        "base64url": [{"hex": raw.hex(), "text": b64u_encode(raw)} for raw in b64_samples],
        "base64url_invalid": ["Zg==", "Zm9v+w", "Zm9v/w", "Z", "Zm9v\u00e9", "Zm9v Zg"],
        "canonical_json": [
            {"object": obj, "text": canonical_json(obj).decode(), "hex": canonical_json(obj).hex()}
            for obj in canonical_samples
        ],
        "license_lines": {"server_line": server_line, "feature_line": feature_line},
        "hello": {
            "request": hello_request,
            "server_time": HELLO_TIME_MS,
            "context": trust.HELLO_CONTEXT.decode(),
            "payload": hello_payload.decode(),
            "payload_hex": hello_payload.hex(),
            "signature": hello_reply["sig"],
            "reply": hello_reply,
        },
        "grant": {
            "request": CHECKOUT_REQUEST,
            "hello_time": HELLO_TIME_MS,
            "lease_key_hex": LEASE_KEY_HEX,
            "context": trust.GRANT_CONTEXT.decode(),
            "grant": grant,
            "payload": grant_payload.decode(),
            "payload_hex": grant_payload.hex(),
            "digest": trust.grant_digest(grant),
            "batch_context": trust.BATCH_CONTEXT.decode(),
            "batch": batch,
            "batch_payload": batch_payload.decode(),
            "batch_payload_hex": batch_payload.hex(),
            "signature": grant_reply["sig"],
            "reply": grant_reply,
        },
        "borrow_grant": {
            "request": borrow_request,
            "hello_time": HELLO_TIME_MS,
            "grant": borrow_grant,
            "signature": borrow_reply["sig"],
            "reply": borrow_reply,
        },
        "lease_token": {
            "lease": LEASE_ID,
            "key_hex": LEASE_KEY_HEX,
            "context": trust.TOKEN_CONTEXT.decode(),
            "token": trust.lease_token(lease_key, LEASE_ID),
        },
        "admin_proof": {
            "admin_key_hex": ADMIN_KEY_HEX,
            "nonce": NONCE,
            "context": trust.ADMIN_CONTEXT.decode(),
            "proof": trust.admin_proof(bytes.fromhex(ADMIN_KEY_HEX), NONCE),
        },
        "verify_hello_reject": hello_rejects,
        "verify_grant_reject": grant_rejects,
        "udp": {
            "lease": LEASE_ID,
            "key_hex": LEASE_KEY_HEX,
            "seq": UDP_SEQ,
            "datagram_bytes": udp.DATAGRAM_BYTES,
            "heartbeat_hex": heartbeat.hex(),
            "ack_hex": ack.hex(),
            "dropped": [
                {"name": "bad_mac", "hex": tampered_mac.hex()},
                {
                    "name": "wrong_key",
                    "hex": udp.pack(udp.HEARTBEAT, LEASE_ID, UDP_SEQ, other_key).hex(),
                },
                {"name": "short", "hex": heartbeat[:-1].hex()},
                {"name": "long", "hex": (heartbeat + b"\x00").hex()},
                {"name": "bad_magic", "hex": (b"NMH2" + heartbeat[4:]).hex()},
                {"name": "ack_sent_to_server", "hex": ack.hex()},
                {"name": "unknown_type", "hex": udp.pack(3, LEASE_ID, UDP_SEQ, lease_key).hex()},
                {"name": "empty", "hex": ""},
            ],
            "replay": replay_sequence,
        },
    }


# -- request parsing (messages.parse_request) --------------------------------------------

_HELLO = {"op": "hello", "id": 1, "protocol": 1, "nonce": NONCE}
_CHECKOUT = {
    "op": "checkout",
    "id": 2,
    "feature": "netmap",
    "version": "5.0",
    "user": "alice",
    "host": "ws-17",
}
_CHECKIN = {"op": "checkin", "id": 3, "lease": LEASE_ID, "token": "AAAAAAAAAAAAAAAAAAAAAA"}
_HEARTBEAT = {
    "op": "heartbeat",
    "id": 4,
    "lease": LEASE_ID,
    "token": "AAAAAAAAAAAAAAAAAAAAAA",
    "seq": 7,
}


def _ok(name: str, line: Any, op: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "line": line, "expect": {"op": op, "fields": fields}}


def _bad(name: str, line: Any, rid: Any = None, mentions: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "line": line,
        "expect": {"reason": "PROTOCOL_ERROR", "id": rid, "mentions": mentions},
    }


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if value is _DROP:
            out.pop(key, None)
        else:
            out[key] = value
    return out


_DROP = object()


def request_vectors() -> list[dict[str, Any]]:
    long = "x" * 257
    return [
        _ok("hello", _HELLO, "hello", {"id": 1, "protocol": 1, "nonce": NONCE, "client": ""}),
        _ok(
            "hello_with_client_and_unknown_field",
            _with(_HELLO, client="netmap-lm-py/0.1.0", future_field=[1, 2]),
            "hello",
            {"id": 1, "protocol": 1, "nonce": NONCE, "client": "netmap-lm-py/0.1.0"},
        ),
        _ok(
            "checkout_minimal",
            _CHECKOUT,
            "checkout",
            {
                "id": 2,
                "feature": "netmap",
                "version": "5.0",
                "user": "alice",
                "host": "ws-17",
                "display": "",
                "pid": 0,
                "project": "",
                "hostid": "",
                "wait": 0,
                "borrow": 0,
            },
        ),
        _ok(
            "checkout_queue_borrow_hostid",
            _with(_CHECKOUT, hostid="mac:0242ac110002", wait=600, borrow=72),
            "checkout",
            {"hostid": "mac:0242ac110002", "wait": 600, "borrow": 72},
        ),
        _ok(
            "checkout_wait_capped_at_a_day",
            _with(_CHECKOUT, wait=10**6),
            "checkout",
            {"wait": 86400},
        ),
        _ok(
            "checkout_full",
            CHECKOUT_REQUEST,
            "checkout",
            {k: v for k, v in CHECKOUT_REQUEST.items() if k != "op"},
        ),
        _ok(
            "checkout_version_defaults_to_0",
            _with(_CHECKOUT, version=_DROP),
            "checkout",
            {
                "id": 2,
                "feature": "netmap",
                "version": "0",
                "user": "alice",
                "host": "ws-17",
                "display": "",
                "pid": 0,
                "project": "",
            },
        ),
        _ok(
            "checkout_null_optional_text",
            _with(_CHECKOUT, display=None, project=None),
            "checkout",
            {
                "id": 2,
                "feature": "netmap",
                "version": "5.0",
                "user": "alice",
                "host": "ws-17",
                "display": "",
                "pid": 0,
                "project": "",
            },
        ),
        _ok(
            "checkout_256_characters",
            _with(_CHECKOUT, user="ü" * 256),
            "checkout",
            {
                "id": 2,
                "feature": "netmap",
                "version": "5.0",
                "user": "ü" * 256,
                "host": "ws-17",
                "display": "",
                "pid": 0,
                "project": "",
            },
        ),
        _ok(
            "checkin",
            _CHECKIN,
            "checkin",
            {"id": 3, "lease": LEASE_ID, "token": "AAAAAAAAAAAAAAAAAAAAAA"},
        ),
        _ok(
            "heartbeat",
            _HEARTBEAT,
            "heartbeat",
            {"id": 4, "lease": LEASE_ID, "token": "AAAAAAAAAAAAAAAAAAAAAA", "seq": 7},
        ),
        _ok(
            "checkin_without_token",  # the granting connection's (session vectors)
            _with(_CHECKIN, token=_DROP),
            "checkin",
            {"id": 3, "lease": LEASE_ID, "token": ""},
        ),
        _ok(
            "heartbeat_without_token",
            _with(_HEARTBEAT, token=_DROP),
            "heartbeat",
            {"id": 4, "lease": LEASE_ID, "token": "", "seq": 7},
        ),
        _ok(
            "heartbeat_seq_defaults_to_0",
            _with(_HEARTBEAT, seq=_DROP),
            "heartbeat",
            {"id": 4, "lease": LEASE_ID, "token": "AAAAAAAAAAAAAAAAAAAAAA", "seq": 0},
        ),
        _ok("status", {"op": "status", "id": "s-1"}, "status", {"id": "s-1", "feature": None}),
        _ok(
            "status_feature",
            {"op": "status", "id": 5, "feature": "netmap"},
            "status",
            {"id": 5, "feature": "netmap"},
        ),
        _ok(
            "status_empty_feature_means_all",
            {"op": "status", "id": 5, "feature": ""},
            "status",
            {"id": 5, "feature": None},
        ),
        _ok("id_absent", {"op": "status"}, "status", {"id": None, "feature": None}),
        _ok(
            "id_string_64",
            {"op": "status", "id": "i" * 64},
            "status",
            {"id": "i" * 64, "feature": None},
        ),
        _ok(
            "id_negative",
            {"op": "status", "id": -(2**53) + 1},
            "status",
            {"id": -(2**53) + 1, "feature": None},
        ),
        _ok(
            "crlf_line_end",
            {"text": '{"op":"status","id":6}\r'},
            "status",
            {"id": 6, "feature": None},
        ),
        _bad("hello_missing_nonce", _with(_HELLO, nonce=_DROP), 1, "nonce"),
        _bad("hello_nonce_uppercase", _with(_HELLO, nonce=NONCE.upper()), 1, "nonce"),
        _bad("hello_nonce_short", _with(_HELLO, nonce=NONCE[:-2]), 1, "nonce"),
        _bad("hello_nonce_not_hex", _with(_HELLO, nonce="g" * 32), 1, "nonce"),
        _bad("hello_protocol_string", _with(_HELLO, protocol="1"), 1, "protocol"),
        _bad("hello_protocol_bool", _with(_HELLO, protocol=True), 1, "protocol"),
        _bad("hello_protocol_float", _with(_HELLO, protocol=1.0), 1, "protocol"),
        _bad("hello_client_not_string", _with(_HELLO, client=7), 1, "client"),
        _bad("checkout_missing_feature", _with(_CHECKOUT, feature=_DROP), 2, "feature"),
        _bad("checkout_missing_user", _with(_CHECKOUT, user=_DROP), 2, "user"),
        _bad("checkout_missing_host", _with(_CHECKOUT, host=_DROP), 2, "host"),
        _bad("checkout_empty_user", _with(_CHECKOUT, user=""), 2, "user"),
        _bad("checkout_user_not_string", _with(_CHECKOUT, user=["alice"]), 2, "user"),
        _bad("checkout_user_too_long", _with(_CHECKOUT, user=long), 2, "user"),
        _bad("checkout_host_too_long", _with(_CHECKOUT, host=long), 2, "host"),
        _bad("checkout_feature_too_long", _with(_CHECKOUT, feature=long), 2, "feature"),
        _bad("checkout_display_too_long", _with(_CHECKOUT, display=long), 2, "display"),
        _bad("checkout_project_too_long", _with(_CHECKOUT, project=long), 2, "project"),
        _bad("checkout_version_not_dotted", _with(_CHECKOUT, version="5.x"), 2, "version"),
        _bad("checkout_version_five_parts", _with(_CHECKOUT, version="1.2.3.4.5"), 2, "version"),
        _bad("checkout_version_number", _with(_CHECKOUT, version=5), 2, "version"),
        _bad("checkout_pid_bool", _with(_CHECKOUT, pid=True), 2, "pid"),
        _bad("checkout_pid_negative", _with(_CHECKOUT, pid=-1), 2, "pid"),
        _bad("checkout_pid_string", _with(_CHECKOUT, pid="42"), 2, "pid"),
        _bad("checkout_pid_2_63", _with(_CHECKOUT, pid=2**63), 2, "pid"),
        _ok("checkout_pid_null_is_absent", _with(_CHECKOUT, pid=None), "checkout", {"pid": 0}),
        _bad("checkout_feature_empty", _with(_CHECKOUT, feature=""), 2, "feature"),
        _bad(
            "checkout_pid_nan",
            {"text": '{"op":"checkout","id":2,"feature":"netmap","user":"u","host":"h","pid":NaN}'},
            None,
            "JSON",
        ),
        _bad("checkout_wait_negative", _with(_CHECKOUT, wait=-1), 2, "wait"),
        _bad("checkout_wait_bool", _with(_CHECKOUT, wait=True), 2, "wait"),
        _bad("checkout_borrow_string", _with(_CHECKOUT, borrow="72"), 2, "borrow"),
        _bad("checkout_hostid_too_long", _with(_CHECKOUT, hostid="h" * 257), 2, "hostid"),
        _bad(
            "checkout_lone_surrogate",
            {"text": '{"op":"checkout","id":2,"feature":"netmap","user":"\\ud800","host":"h"}'},
            2,
            "user",
        ),
        _bad("checkin_token_not_string", _with(_CHECKIN, token=7), 3, "token"),
        _bad("checkin_lease_uppercase", _with(_CHECKIN, lease=LEASE_ID.upper()), 3, "lease"),
        _bad("checkin_lease_short", _with(_CHECKIN, lease=LEASE_ID[:30]), 3, "lease"),
        _bad("heartbeat_seq_bool", _with(_HEARTBEAT, seq=False), 4, "seq"),
        _bad("heartbeat_seq_float", _with(_HEARTBEAT, seq=7.5), 4, "seq"),
        _bad("heartbeat_missing_lease", _with(_HEARTBEAT, lease=_DROP), 4, "lease"),
        _bad("status_feature_not_string", {"op": "status", "id": 5, "feature": 1}, 5, "feature"),
        _bad("unknown_op", {"op": "launch", "id": 9}, 9, "unknown op"),
        _bad("op_missing", {"id": 9}, 9, "unknown op"),
        _bad("op_not_string", {"op": ["hello"], "id": 9}, 9, "unknown op"),
        _bad("op_wrong_case", {"op": "HELLO", "id": 9}, 9, "unknown op"),
        _bad("id_bool", {"op": "status", "id": True}, None, "id"),
        _bad("id_float", {"op": "status", "id": 1.5}, None, "id"),
        _bad("id_object", {"op": "status", "id": {"n": 1}}, None, "id"),
        _bad("id_string_65", {"op": "status", "id": "i" * 65}, None, "id"),
        _bad("id_2_53", {"op": "status", "id": 2**53}, None, "id"),
        _bad("id_lone_surrogate", {"text": '{"op":"status","id":"\\ud800"}'}, None, "id"),
        _bad("array_not_object", {"text": '[{"op":"status","id":1}]'}, None, "JSON object"),
        _bad("string_not_object", {"text": '"hello"'}, None, "JSON object"),
        _bad("number_not_object", {"text": "42"}, None, "JSON object"),
        _bad("null_not_object", {"text": "null"}, None, "JSON object"),
        _bad("not_json", {"text": "HELLO netmap_lm"}, None, "JSON object"),
        _bad("truncated_json", {"text": '{"op":"status","id":1'}, None, "JSON object"),
        _bad(
            "two_objects_one_line", {"text": '{"op":"status"}{"op":"status"}'}, None, "JSON object"
        ),
        _bad("invalid_utf8", {"hex": "7b226f70223a22ff227d"}, None, "JSON object"),
        _bad("binary_garbage", {"hex": "16030100a5010000a10303"}, None, "JSON object"),
        _bad("deep_nesting", {"text": "[" * 5000}, None, "JSON object"),
    ]


# -- connection rules (protocol.connection.ServerConnection) -----------------------------


def connection_vectors() -> list[dict[str, Any]]:
    hello = {"json": _HELLO}
    status = {"json": {"op": "status", "id": 7}}

    def err(rid: Any, close: bool = False, mentions: str = "") -> dict[str, Any]:
        return {
            "reply": {"ok": False, "reason": "PROTOCOL_ERROR", "id": rid},
            "close": close,
            "mentions": mentions,
        }

    return [
        {
            "name": "hello_then_requests",
            "feed": [hello, {"json": _CHECKOUT}, status],
            "events": [{"op": "hello"}, {"op": "checkout"}, {"op": "status"}],
            "nonce": NONCE,
        },
        {
            "name": "request_before_hello",
            "feed": [status, hello, status],
            "events": [err(7, mentions="hello"), {"op": "hello"}, {"op": "status"}],
        },
        {
            "name": "second_hello",
            "feed": [hello, _with_id(hello, 8)],
            "events": [{"op": "hello"}, err(8, mentions="already")],
        },
        {
            "name": "second_hello_other_version",
            "feed": [hello, {"json": _with(_HELLO, id=8, protocol=2)}],
            "events": [{"op": "hello"}, err(8, mentions="already")],
        },
        {
            "name": "wrong_protocol_version_closes",
            "feed": [{"json": _with(_HELLO, protocol=2)}, hello],
            "events": [err(1, close=True, mentions="protocol")],
        },
        {
            "name": "protocol_0_closes",
            "feed": [{"json": _with(_HELLO, protocol=0)}],
            "events": [err(1, close=True, mentions="protocol")],
        },
        {
            "name": "bad_hello_does_not_open_session",
            "feed": [{"json": _with(_HELLO, nonce="abc")}, status, hello],
            "events": [err(1, mentions="nonce"), err(7, mentions="hello"), {"op": "hello"}],
        },
        {
            "name": "garbage_does_not_close",
            "feed": [{"text": "GET / HTTP/1.0"}, hello],
            "events": [err(None), {"op": "hello"}],
        },
        {
            "name": "blank_lines_ignored",
            "feed": [{"text": ""}, {"text": "   \t"}, hello, {"text": "\r"}],
            "events": [{"op": "hello"}],
        },
        {
            "name": "pipelined_in_one_write",
            "feed": [{"concat": [hello, {"json": _CHECKOUT}, status]}],
            "events": [{"op": "hello"}, {"op": "checkout"}, {"op": "status"}],
        },
        {
            "name": "line_split_across_reads",
            "feed": [
                {"text": '{"op":"hel', "newline": False},
                {"text": 'lo","id":1,"protocol":1,', "newline": False},
                {"text": f'"nonce":"{NONCE}"}}'},
            ],
            "events": [{"op": "hello"}],
        },
        {
            "name": "longest_line_accepted",
            "feed": [{"json": _HELLO, "pad_to": 65535}],
            "events": [{"op": "hello"}],
        },
        {
            "name": "line_one_byte_too_long",
            "feed": [{"json": _HELLO, "pad_to": 65536}, hello],
            "events": [err(None, close=True, mentions="65536")],
        },
        {
            "name": "endless_line_without_newline",
            "feed": [
                hello,
                {"fill": "a", "bytes": 40000, "newline": False},
                {"fill": "a", "bytes": 40000, "newline": False},
                status,
            ],
            "events": [{"op": "hello"}, err(None, close=True, mentions="65536")],
        },
    ]


def _with_id(spec: dict[str, Any], rid: Any) -> dict[str, Any]:
    return {"json": {**spec["json"], "id": rid}}


def line_bytes(spec: Any) -> bytes:
    """The bytes a line spec of the vector files stands for (see their 'about')."""
    if "concat" in spec:
        return b"".join(line_bytes(part) for part in spec["concat"])
    newline = b"\n" if spec.get("newline", True) else b""
    if "json" in spec:
        obj = spec["json"]
        if "pad_to" in spec:
            bare = json.dumps({**obj, "pad": ""}, separators=(",", ":"), ensure_ascii=False)
            obj = {**obj, "pad": "x" * (spec["pad_to"] - len(bare.encode()))}
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + newline
    if "text" in spec:
        return spec["text"].encode() + newline
    if "hex" in spec:
        return bytes.fromhex(spec["hex"]) + newline
    if "fill" in spec:
        return spec["fill"].encode() * spec["bytes"] + newline
    return json.dumps(spec, separators=(",", ":"), ensure_ascii=False).encode() + newline


# -- sessions against a real server ------------------------------------------------------


def _hello_step(rid: Any = 1) -> dict[str, Any]:
    return {
        "send": {
            "op": "hello",
            "id": rid,
            "protocol": 1,
            "nonce": "$nonce",
            "client": "conformance",
        },
        "expect": {
            "id": rid,
            "ok": True,
            "verify": "hello",
            "has": [
                "server",
                "version",
                "protocol",
                "server_key",
                "server_line",
                "time",
                "heartbeat_interval",
                "lease_timeout",
                "sig",
            ],
            "equals": {
                "server": "netmap_lm",
                "protocol": 1,
                "heartbeat_interval": 1,
                "lease_timeout": 4,
            },
        },
    }


def _checkout(
    rid: Any, suffix: str = "", user: str = "alice", version: str = "5.0", feature: str = "netmap"
) -> dict[str, Any]:
    return {
        "send": {
            "op": "checkout",
            "id": rid,
            "feature": feature,
            "version": version,
            "user": user,
            "host": "ws-17",
            "display": ":0",
            "pid": 4242,
            "project": "",
        },
        "expect": {
            "id": rid,
            "ok": True,
            "verify": "grant",
            "has": ["grant", "sig", "feature_line"],
            "equals": {
                "grant.feature": feature,
                "grant.user": user,
                "grant.heartbeat_interval": 1,
                "grant.lease_timeout": 4,
                "grant.grace": 0,
            },
            "capture": {f"lease{suffix}": "grant.lease", f"key{suffix}": "grant.key"},
        },
    }


def _denied(rid: Any, reason: str, send: dict[str, Any]) -> dict[str, Any]:
    return {
        "send": {**send, "id": rid},
        "expect": {"id": rid, "ok": False, "reason": reason, "has": ["message"]},
    }


def _heartbeat(
    rid: Any, suffix: str = "", seq: int = 1, ok: bool = True, token: bool = True
) -> dict[str, Any]:
    send = {"op": "heartbeat", "id": rid, "lease": f"$lease{suffix}", "token": f"$token{suffix}"}
    step: dict[str, Any] = {"send": {**_token_or_not(send, token), "seq": seq}}
    if ok:
        step["expect"] = {
            "id": rid,
            "ok": True,
            "has": ["lease", "lease_timeout"],
            "equals": {"lease": f"$lease{suffix}", "lease_timeout": 4},
        }
    else:
        step["expect"] = {"id": rid, "ok": False, "reason": "LEASE_UNKNOWN", "has": ["message"]}
    return step


def _checkin(rid: Any, suffix: str = "", ok: bool = True, token: bool = True) -> dict[str, Any]:
    send = {"op": "checkin", "id": rid, "lease": f"$lease{suffix}", "token": f"$token{suffix}"}
    step: dict[str, Any] = {"send": _token_or_not(send, token)}
    if ok:
        step["expect"] = {"id": rid, "ok": True, "equals": {"lease": f"$lease{suffix}"}}
    else:
        step["expect"] = {"id": rid, "ok": False, "reason": "LEASE_UNKNOWN"}
    return step


def _token_or_not(send: dict[str, Any], token: bool) -> dict[str, Any]:
    return send if token else {k: v for k, v in send.items() if k != "token"}


def _token_needed(step: dict[str, Any]) -> dict[str, Any]:
    """``step``, expected to be refused for the token it leaves out."""
    rid = step["send"]["id"]
    return {**step, "expect": {"id": rid, "ok": False, "reason": "PROTOCOL_ERROR"}}


def _in_use(rid: Any, count: int) -> dict[str, Any]:
    return {
        "send": {"op": "status", "id": rid, "feature": "netmap"},
        "expect": {
            "id": rid,
            "ok": True,
            "has": ["server", "features", "problems"],
            "equals": {
                "features.0.name": "netmap",
                "features.0.seats": 3,
                "features.0.in_use": count,
            },
        },
    }


def _udp(seq: int, answered: bool, suffix: str = "", tamper: bool = False) -> dict[str, Any]:
    return {
        "udp": {"lease": f"$lease{suffix}", "key": f"$key{suffix}", "seq": seq, "tamper": tamper},
        "expect": "ack" if answered else "silence",
    }


def session_vectors() -> list[dict[str, Any]]:
    checkout_fields = {
        "op": "checkout",
        "feature": "netmap",
        "version": "5.0",
        "user": "alice",
        "host": "ws-17",
    }
    return [
        {
            "name": "checkout_heartbeat_checkin",
            "steps": [
                _hello_step(),
                _checkout(2),
                _in_use(3, 1),
                _heartbeat(4, seq=1),
                {
                    "send": {"op": "status", "id": "s"},
                    "expect": {
                        "id": "s",
                        "ok": True,
                        "has": [
                            "server.name",
                            "server.version",
                            "server.host",
                            "server.port",
                            "server.key_fingerprint",
                            "server.time",
                            "server.uptime",
                            "server.heartbeat_interval",
                            "server.lease_timeout",
                            "server.license",
                            "features.0.lines.0.id",
                            "features.0.leases.0.lease",
                            "features.0.leases.0.user",
                            "features.0.leases.0.granted_at",
                        ],
                        "equals": {
                            "features.0.leases.0.lease": "$lease",
                            "features.0.leases.0.user": "alice",
                        },
                    },
                },
                _checkin(5),
                _in_use(6, 0),
                _checkin(7, ok=False),
                _heartbeat(8, ok=False),
            ],
        },
        {
            # The connection that carried a grant may leave the lease token out
            # of its checkin and heartbeats; any other must send it, and is
            # told so whether or not the lease exists.
            "name": "token_left_out_on_the_granting_connection_only",
            "steps": [
                _hello_step(),
                _checkout(2),
                _heartbeat(3, seq=1, token=False),
                _checkout(4, "2", user="bob"),
                _checkin(5, token=False),
                _checkin(6, ok=False, token=False),
                {"reconnect": True},
                _hello_step(),
                _token_needed(_heartbeat(7, "2", seq=2, token=False)),
                _token_needed(_checkin(8, token=False)),
                _token_needed(_checkin(9, "2", token=False)),
                _checkin(10, "2"),
                _in_use(11, 0),
            ],
        },
        {
            "name": "seats_exhausted_then_freed",
            "steps": [
                _hello_step(),
                _checkout(2, "1", user="u1"),
                _checkout(3, "2", user="u2"),
                _checkout(4, "3", user="u3"),
                _denied(5, "SEATS_EXHAUSTED", {**checkout_fields, "user": "u4"}),
                _in_use(6, 3),
                _checkin(7, "2"),
                _checkout(8, "4", user="u4"),
                _in_use(9, 3),
            ],
        },
        {
            "name": "refusals",
            "steps": [
                _hello_step(),
                _denied(2, "NO_SUCH_FEATURE", {**checkout_fields, "feature": "netmap-pro"}),
                _denied(3, "VERSION_NOT_LICENSED", {**checkout_fields, "version": "6.0"}),
                _denied(4, "NO_SUCH_FEATURE", {"op": "status", "feature": "netmap-pro"}),
                _denied(
                    5,
                    "LEASE_UNKNOWN",
                    {"op": "heartbeat", "lease": LEASE_ID, "token": "AAAAAAAAAAAAAAAAAAAAAA"},
                ),
                _denied(
                    6,
                    "LEASE_UNKNOWN",
                    {"op": "checkin", "lease": LEASE_ID, "token": "AAAAAAAAAAAAAAAAAAAAAA"},
                ),
                _checkout(7),
                {
                    "send": {
                        "op": "heartbeat",
                        "id": 8,
                        "lease": "$lease",
                        "token": "AAAAAAAAAAAAAAAAAAAAAA",
                    },
                    "expect": {"id": 8, "ok": False, "reason": "LEASE_UNKNOWN"},
                },
                _denied(9, "ADMIN_REQUIRED", {"op": "remove", "lease": "$lease"}),
                _denied(10, "ADMIN_REQUIRED", {"op": "remove", "lease": "$lease", "admin": "AAAA"}),
                _in_use(11, 1),
            ],
        },
        {
            "name": "protocol_errors_keep_the_session",
            "steps": [
                _denied(1, "PROTOCOL_ERROR", {"op": "status"}),
                {
                    "send_raw": {"text": "GET / HTTP/1.0"},
                    "expect": {"id": None, "ok": False, "reason": "PROTOCOL_ERROR"},
                },
                {
                    "send_raw": {"hex": "7b226f70223a22ff227d"},
                    "expect": {"id": None, "ok": False, "reason": "PROTOCOL_ERROR"},
                },
                _hello_step(2),
                _denied(3, "PROTOCOL_ERROR", {"op": "hello", "protocol": 1, "nonce": NONCE}),
                _denied(4, "PROTOCOL_ERROR", {"op": "launch"}),
                _denied(5, "PROTOCOL_ERROR", {**checkout_fields, "user": None}),
                _denied(6, "PROTOCOL_ERROR", {**checkout_fields, "pid": True}),
                _denied(7, "PROTOCOL_ERROR", {**checkout_fields, "host": "h" * 257}),
                {
                    "send_raw": {"text": '[{"op":"status","id":8}]'},
                    "expect": {"id": None, "ok": False, "reason": "PROTOCOL_ERROR"},
                },
                _in_use(9, 0),
            ],
        },
        {
            "name": "wrong_protocol_version_closes",
            "steps": [
                {
                    "send": {"op": "hello", "id": 1, "protocol": 2, "nonce": "$nonce"},
                    "expect": {"id": 1, "ok": False, "reason": "PROTOCOL_ERROR", "closes": True},
                },
            ],
        },
        {
            "name": "oversized_line_closes",
            "steps": [
                _hello_step(),
                {
                    "send_raw": {"fill": "x", "bytes": 65536, "newline": False},
                    "expect": {"id": None, "ok": False, "reason": "PROTOCOL_ERROR", "closes": True},
                },
            ],
        },
        {
            "name": "pipelined_replies_matched_by_id",
            "steps": [
                {
                    "pipeline": [
                        {"op": "hello", "id": "h", "protocol": 1, "nonce": "$nonce"},
                        {
                            **checkout_fields,
                            "id": "c1",
                            "user": "p1",
                            "display": "",
                            "pid": 1,
                            "project": "",
                        },
                        {"op": "status", "id": "s1"},
                        {
                            **checkout_fields,
                            "id": "c2",
                            "user": "p2",
                            "display": "",
                            "pid": 2,
                            "project": "",
                        },
                        {"op": "launch", "id": "x"},
                    ],
                    "expect": [
                        {"id": "h", "ok": True, "verify": "hello"},
                        {"id": "c1", "ok": True, "verify": "grant"},
                        {"id": "s1", "ok": True, "has": ["features"]},
                        {"id": "c2", "ok": True, "verify": "grant"},
                        {"id": "x", "ok": False, "reason": "PROTOCOL_ERROR"},
                    ],
                },
                _in_use(2, 2),
            ],
        },
        {
            "name": "queued_checkout",
            "steps": [
                _hello_step(),
                _checkout(2, "1", user="u1"),
                _checkout(3, "2", user="u2"),
                _checkout(4, "3", user="u3"),
                {
                    "send": {
                        **checkout_fields,
                        "id": 5,
                        "user": "u4",
                        "display": "",
                        "pid": 4,
                        "project": "",
                        "wait": 30,
                    },
                    "expect": {
                        "id": 5,
                        "ok": True,
                        "equals": {"queued": True, "position": 1, "feature": "netmap"},
                    },
                },
                _checkin(6, "2"),
                {
                    "await": {
                        "id": 5,
                        "ok": True,
                        "verify": "grant",
                        "equals": {"grant.user": "u4"},
                        "capture": {"lease4": "grant.lease", "key4": "grant.key"},
                    },
                },
                _in_use(7, 3),
                {
                    "send": {**checkout_fields, "id": 8, "user": "u5", "wait": 1},
                    "expect": {"id": 8, "ok": True, "equals": {"queued": True, "position": 1}},
                },
                {"await": {"id": 8, "ok": False, "reason": "SEATS_EXHAUSTED"}},
                _heartbeat(9, "4", seq=1),
            ],
        },
        {
            "name": "udp_heartbeats_and_replay_floor",
            "steps": [
                _hello_step(),
                _checkout(2),
                _udp(10, True),
                _udp(10, False),
                _udp(9, False),
                _udp(11, False, tamper=True),
                _udp(11, True),
                _heartbeat(3, seq=100),
                _udp(50, False),
                _udp(101, True),
                _checkin(4),
                _udp(102, False),
            ],
        },
        {
            "name": "restart_keeps_lease_and_needs_tcp_reassertion",
            "steps": [
                _hello_step(),
                _checkout(2),
                _udp(10, True),
                {"restart": True},
                _hello_step(),
                _in_use(2, 1),
                _udp(11, False),
                _heartbeat(3, seq=20),
                _udp(15, False),
                _udp(21, True),
                _checkin(4),
            ],
        },
        {
            "name": "silent_lease_is_reclaimed",
            "steps": [
                _hello_step(),
                _checkout(2),
                {"sleep": 6.0},
                _heartbeat(3, ok=False),
                _in_use(4, 0),
            ],
        },
        {
            "name": "admin_remove_with_proof",
            "steps": [
                _hello_step(),
                _checkout(2),
                {
                    "send": {"op": "remove", "id": 3, "lease": "$lease", "admin": "$admin"},
                    "expect": {"id": 3, "ok": True, "equals": {"removed": ["$lease"]}},
                },
                _heartbeat(4, ok=False),
                _in_use(5, 0),
            ],
        },
    ]


# -- license file vectors ------------------------------------------------------------------


def license_vectors() -> dict[str, Any]:
    vendor, server = private(VENDOR_SEED), private(SERVER_SEED)
    server_fields = {**SERVER_FIELDS, "key": public_text(server)}

    def line_entry(name: str, keyword: str, fields: dict[str, Any]) -> dict[str, Any]:
        values = {k: str(v) for k, v in fields.items() if v is not None}
        canonical = lines.canonical(keyword, values)
        signed = lines.SIGNING_CONTEXT + canonical.encode()
        text = licensefile.sign_line(vendor, keyword, fields)
        return {
            "name": name,
            "keyword": keyword,
            "fields": values,
            "canonical": canonical,
            "signed_hex": signed.hex(),
            "sig": lines.tokenize(text)[1]["sig"],
            "line": text,
        }

    good = [
        line_entry("server", "SERVER", server_fields),
        line_entry("feature", "FEATURE", FEATURE_FIELDS),
        line_entry(
            "feature_quoted_values",
            "FEATURE",
            {
                "name": "netmap-pro",
                "version": "5.2",
                "seats": "uncounted",
                "type": "named",
                "expires": "permanent",
                "id": "pro-1",
                "users": "alice,bob",
                "notice": 'Say "hi" \\ cite #42 a=b',
                "customer": "",
                "dup": "user_host",
                "linger": 300,
                "borrow": 72,
            },
        ),
    ]
    feature_line = good[1]["line"]
    tampered = feature_line.replace("seats=3", "seats=30")

    def invalid(name: str, text: str, mentions: str) -> dict[str, Any]:
        return {"name": name, "line": text, "mentions": mentions}

    def signed(**changes: Any) -> str:
        fields = {**FEATURE_FIELDS, **changes}
        return sign_line(vendor, "FEATURE", {k: v for k, v in fields.items() if v is not None})

    invalid_lines = [
        invalid("tampered_seats", tampered, "signature"),
        invalid(
            "other_vendor",
            sign_line(private(OTHER_VENDOR_SEED), "FEATURE", FEATURE_FIELDS),
            "signature",
        ),
        invalid("no_sig", feature_line.rsplit(" sig=", 1)[0], "sig="),
        invalid("unknown_keyword", "INCREMENT " + feature_line.split(" ", 1)[1], "keyword"),
        invalid("lowercase_keyword", "feature " + feature_line.split(" ", 1)[1], "KEYWORD"),
        invalid("unknown_key", signed(color="red"), "color"),
        invalid("missing_expires", signed(expires=None), "expires="),
        invalid("missing_id", signed(id=None), "id="),
        invalid("seats_zero", signed(seats=0), "seats"),
        invalid("seats_word", signed(seats="many"), "seats"),
        invalid("bad_version", signed(version="5.x"), "version"),
        invalid("bad_date", signed(expires="31.12.2027"), "date"),
        invalid("expires_before_start", signed(start="2027-01-01", expires="2026-01-01"), "before"),
        invalid("bad_type", signed(type="concurrent"), "type"),
        invalid("nodelocked_without_hostid", signed(type="nodelocked"), "hostid"),
        invalid("named_without_users", signed(type="named"), "users"),
        invalid("bad_dup", signed(dup="site"), "dup"),
        invalid("bad_name", signed(name="net map"), "name"),
        invalid("grace_negative", signed(grace="-5"), "grace"),
        invalid("trailing_comment", feature_line + " # 3 seats", "key=value"),
        invalid("key_twice", feature_line.replace(" id=", " seats=3 id=", 1), "twice"),
        invalid(
            "server_bad_key", sign_line(vendor, "SERVER", {**server_fields, "key": "abc"}), "key="
        ),
        invalid(
            "server_port_range",
            sign_line(vendor, "SERVER", {**server_fields, "port": 70000}),
            "port",
        ),
    ]

    example = doc_example_file(vendor, server_fields)
    broken = (
        "# a file with problems: each bad line is named, the good ones still serve\n"
        f"{good[0]['line']}\n"
        f"{feature_line}\n"
        f"{tampered}\n"
        "\n"
        f"{feature_line}\n"
        "FEATURE name=netmap\n"
    )
    tokenize = [
        {"text": "FEATURE a=1 b=2", "keyword": "FEATURE", "fields": {"a": "1", "b": "2"}},
        {
            "text": "  SERVER\thost=x   port=1493  ",
            "keyword": "SERVER",
            "fields": {"host": "x", "port": "1493"},
        },
        {
            "text": 'FEATURE notice="two words" empty="" bare=',
            "keyword": "FEATURE",
            "fields": {"notice": "two words", "empty": "", "bare": ""},
        },
        {
            "text": r'FEATURE notice="say \"hi\" \\ ok"',
            "keyword": "FEATURE",
            "fields": {"notice": 'say "hi" \\ ok'},
        },
        {
            "text": "FEATURE sig=a-b_c id=x#1=2",
            "keyword": "FEATURE",
            "fields": {"sig": "a-b_c", "id": "x#1=2"},
        },
    ]
    tokenize_errors = [
        "feature name=x",
        "FEATURE Name=x",
        'FEATURE a="open',
        "FEATURE a=1 a=2",
        'FEATURE a="x"b=1',
        "FEATURE a=1 # comment",
        "FEATURE =1",
        "",
        "FEATURE a b",
        "FEATURE " + "a=1 " * 3000,
    ]
    quote = [
        {"value": v, "written": lines.quote(v)}
        for v in [
            "5.0",
            "",
            "ACME Mapping GmbH",
            'say "hi"',
            "back\\slash",
            "#42",
            "a=b",
            "tab\there",
            "Süd",
        ]
    ]
    return {
        "about": (
            "Vectors for docs/license-file.md: the vendor key is 'vendor' of protocol.json "
            "(RFC 8032 TEST 1 secret key). Regenerate with tests/vectors/make_vectors.py."
        ),
        "vendor_public": public_text(vendor),
        "signing_context": lines.SIGNING_CONTEXT.decode(),
        "lines": good,
        "invalid_lines": invalid_lines,
        "tokenize": tokenize,
        "tokenize_errors": tokenize_errors,
        "quote": quote,
        "example_file": example,
        "broken_file": {
            "path": "license.lic",
            "text": broken,
            "servers": 1,
            "features": [FEATURE_FIELDS["id"]],
            "problems": [
                {"prefix": "license.lic:4: LICENSE_INVALID: ", "mentions": "signature"},
                {"prefix": "license.lic:6: LICENSE_INVALID: ", "mentions": "already used"},
                {"prefix": "license.lic:7: LICENSE_INVALID: ", "mentions": "lacks"},
            ],
        },
    }


def doc_example_file(vendor: Ed25519PrivateKey, server_fields: dict[str, Any]) -> str:
    """The example license of docs/license-file.md (the doc must quote it verbatim)."""
    features: list[dict[str, Any]] = [
        {
            "name": "netmap",
            "version": "5.0",
            "seats": 10,
            "type": "floating",
            "start": "2026-01-01",
            "expires": "2026-12-31",
            "id": "netmap-2026-1",
            "grace": 60,
            "customer": "ACME Mapping GmbH",
        },
        {
            "name": "netmap",
            "version": "5.0",
            "seats": 5,
            "type": "floating",
            "start": "2026-07-01",
            "expires": "2027-06-30",
            "id": "netmap-2026-2",
            "customer": "ACME Mapping GmbH",
            "notice": "INCREMENT: 5 more seats from July",
        },
        {
            "name": "netmap",
            "version": "6.0",
            "seats": 2,
            "type": "floating",
            "expires": "permanent",
            "id": "netmap-6-beta",
            "linger": 300,
            "dup": "user_host",
        },
        {
            "name": "netmap-lab",
            "version": "5.0",
            "seats": "uncounted",
            "type": "nodelocked",
            "expires": "permanent",
            "id": "lab-1",
            "hostid": "mac:0242ac110002",
        },
        {
            "name": "netmap-report",
            "version": "1.0",
            "seats": 2,
            "type": "named",
            "expires": "2026-12-31",
            "id": "report-1",
            "users": "alice,bob",
            "borrow": 72,
        },
    ]
    out = [
        "# netmap_lm license for ACME Mapping GmbH",
        "# issued 2026-01-01 by Example Vendor; do not edit signed lines",
        licensefile.sign_line(vendor, "SERVER", server_fields),
        "",
        "# 10 seats of Netmap 5.x for 2026, plus 5 more from July (INCREMENT)",
    ]
    out += [licensefile.sign_line(vendor, "FEATURE", f) for f in features[:2]]
    out += ["", "# early access to 6.0: two seats, permanent"]
    out += [licensefile.sign_line(vendor, "FEATURE", features[2])]
    out += ["", "# lab machine and named users"]
    out += [licensefile.sign_line(vendor, "FEATURE", f) for f in features[3:]]
    return "\n".join(out) + "\n"


def build() -> dict[str, str]:
    """File name → exact file text."""
    protocol = crypto_vectors()
    protocol["line_specs"] = (
        "A line spec is an object: {json: OBJ} (compact JSON of OBJ), {json: OBJ, pad_to: N} "
        "(OBJ plus a 'pad' string of x so that the line has exactly N bytes before its "
        "newline), {text: T} (T as UTF-8), {hex: H}, {fill: C, bytes: N} (C repeated N "
        "times), {concat: [SPEC...]}; each ends with one newline byte unless newline: false. "
        "A bare object in 'line' is {json: OBJ}."
    )
    protocol["requests"] = request_vectors()
    protocol["connections"] = connection_vectors()
    protocol["sessions_about"] = (
        "Replayed over TCP and UDP against 'netmap-lm serve' with a license for netmap 5.0, "
        "3 seats, grace 0, heartbeat interval 1 s and lease timeout 4 s. '$nonce' is a fresh "
        "nonce per connection; '$leaseX'/'$keyX' are captured from replies; '$tokenX' is "
        "lease_token(base64url-decode($keyX), $leaseX); '$admin' is "
        "admin_proof(admin.token, nonce of the connection). Replies are matched by id; "
        "'has' lists dotted paths that must exist, 'equals' dotted paths and values; "
        "an 'await' step reads the next reply with that id (the final reply of a queued "
        "checkout); "
        "'verify' runs verify_hello/verify_grant; 'closes' means the server closes the "
        "connection after the reply. A udp step expects an ack (same size, type 2, same "
        "lease and seq, valid MAC) or silence. A 'reconnect' step closes the connection "
        "and opens a new one; a 'restart' step also kills the server first and starts "
        "it again on the same state."
    )
    protocol["sessions"] = session_vectors()
    return {
        PROTOCOL_FILE: json.dumps(protocol, indent=1, ensure_ascii=False) + "\n",
        LICENSE_FILE: json.dumps(license_vectors(), indent=1, ensure_ascii=False) + "\n",
    }


def main(argv: list[str] | None = None) -> int:
    for name, text in build().items():
        (HERE / name).write_text(text, encoding="utf-8")
        print(f"wrote {HERE / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
