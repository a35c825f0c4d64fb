"""Property fuzzing of every parser that reads bytes an attacker controls.

The invariant is the same everywhere: any input is either parsed into what the
parser produces, or rejected the one documented way (a PROTOCOL_ERROR reply, a
``LineProblem``, ``None``, ``Untrusted``) -- never any other exception.

Inputs are built from two sources: values of every JSON type (so wrong types
reach every field), and valid messages or signed license lines that are then
mutated (so the fuzz gets past the first check).  ``_settings.FUZZ`` scales the
example count with ``NETMAP_LM_FUZZ_SECONDS``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import example, given
from hypothesis import strategies as st

from netmap_lm import reasons
from netmap_lm.encoding import b64u_encode
from netmap_lm.licensing import keys, licensefile, lines, trust
from netmap_lm.protocol import messages, udp
from netmap_lm.protocol.connection import Reply, ServerConnection
from netmap_lm.protocol.framing import MAX_LINE_BYTES

from ._settings import FUZZ, TIMEOUT

pytestmark = pytest.mark.timeout(TIMEOUT)

# -- strategies ------------------------------------------------------------------------

# Text of every kind, lone surrogates included (they survive JSON as "\ud800").
surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
any_char = st.one_of(st.characters(), surrogates, st.sampled_from("\n\r\t\x00\x1b\x7f\u2028"))
texts = st.text(any_char, max_size=40)
hex32 = st.text("0123456789abcdef", min_size=32, max_size=32)
versions = st.from_regex(r"\d{1,3}(\.\d{1,3}){0,3}", fullmatch=True)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)

# Plausible values for each field a request may carry, or anything at all.
FIELD_VALUES = {
    "id": st.integers(min_value=-(2**60), max_value=2**60) | st.text(max_size=70),
    "protocol": st.sampled_from([0, 1, 2]),
    "nonce": hex32,
    "client": st.text(max_size=20),
    "feature": st.sampled_from(["netmap", "other", ""]),
    "version": versions,
    "user": st.text(min_size=1, max_size=20),
    "host": st.text(min_size=1, max_size=20),
    "display": st.text(max_size=10),
    "pid": st.integers(min_value=0, max_value=2**31),
    "project": st.text(max_size=10),
    "hostid": st.text(max_size=20),
    "wait": st.integers(min_value=0, max_value=10**6),
    "borrow": st.integers(min_value=0, max_value=10**4),
    "lease": hex32,
    "token": st.text(max_size=30),
    "seq": st.integers(min_value=0, max_value=2**64),
    "admin": st.text(max_size=50),
}
MOSTLY = st.sampled_from([True] * 8 + [False])  # (integers() would favour its bounds)
OP_FIELDS = {
    "hello": ("protocol", "nonce", "client"),
    "checkout": (
        "feature",
        "version",
        "user",
        "host",
        "display",
        "pid",
        "project",
        "hostid",
        "wait",
        "borrow",
    ),
    "checkin": ("lease", "token"),
    "heartbeat": ("lease", "token", "seq"),
    "status": ("feature",),
    "remove": ("admin", "lease", "feature", "user", "host"),
    "reread": ("admin",),
    "shutdown": ("admin",),
    "audit": ("admin",),
}


@st.composite
def request_objects(draw: st.DrawFn) -> dict[str, Any]:
    """A request of a known op with plausible fields, a few of them dropped or replaced
    by JSON values of any type, sometimes with unknown extra fields."""
    op = draw(st.sampled_from(sorted(OP_FIELDS)))
    obj: dict[str, Any] = {"op": op, "id": draw(FIELD_VALUES["id"] | st.none())}
    for name in OP_FIELDS[op]:
        if draw(MOSTLY):  # mostly present
            obj[name] = draw(FIELD_VALUES[name])
    for name in draw(st.lists(st.sampled_from([*sorted(FIELD_VALUES), "op", "x"]), max_size=2)):
        obj[name] = draw(json_values)
    return obj


def _encode(obj: Any, ascii_only: bool) -> bytes:
    """JSON text as a peer could send it: escaped, or raw UTF-8 (lone surrogates
    then become bytes that are not UTF-8 at all)."""
    return json.dumps(obj, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


request_lines = st.builds(
    _encode, st.one_of(request_objects(), request_objects(), json_values), st.booleans()
)


@st.composite
def mutated(draw: st.DrawFn, source: st.SearchStrategy[bytes]) -> bytes:
    """A valid-looking byte string with a few random edits."""
    data = bytearray(draw(source))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "duplicate", "truncate"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[pos:pos] = draw(
                st.binary(min_size=1, max_size=8)
                | st.sampled_from([b"\n", b'"', b"{", b"}", b"\\", b"\\u"])
            )
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "duplicate" and data:
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


# -- the TCP protocol: framing, session rules, requests ------------------------------------


def _check_reply(message: dict[str, Any]) -> None:
    assert message["ok"] is False
    assert message["reason"] == reasons.PROTOCOL_ERROR
    assert isinstance(message["message"], str) and message["message"]
    assert message["id"] is None or isinstance(message["id"], int | str)
    messages.encode(message)  # it can be sent: one UTF-8 JSON line


def _check_request(request: Any) -> None:
    assert isinstance(request, tuple(messages.REQUEST_TYPES.values())), request
    assert request.id is None or isinstance(request.id, int | str)
    messages.encode(messages.ok(request.id))  # its id can be echoed


chunk = st.one_of(
    st.binary(max_size=300),
    request_lines.map(lambda line: line + b"\n"),
    mutated(request_lines.map(lambda line: line + b"\n")),
    st.sampled_from([b"\n", b"\r\n", b" \n", b"{", b"}\n", b"\x16\x03\x01"]),
    st.integers(MAX_LINE_BYTES - 2, MAX_LINE_BYTES + 2).map(lambda n: b"x" * n),
)
hello_line = st.builds(
    lambda nonce: _encode({"id": 0, "op": "hello", "protocol": 1, "nonce": nonce}, True) + b"\n",
    hex32,
)


@FUZZ
@given(st.one_of(st.just([]), hello_line.map(lambda h: [h])), st.lists(chunk, max_size=12))
def test_server_connection_turns_any_bytes_into_requests_or_protocol_errors(
    prefix: list[bytes], chunks: list[bytes]
) -> None:
    conn = ServerConnection()
    hellos = 0
    for data in prefix + chunks:
        was_closed = conn.closed
        events = conn.receive(data)
        if was_closed:
            assert events == []
        for event in events:
            if isinstance(event, Reply):
                _check_reply(event.message)
                if event.close:
                    return  # the session closes the connection here
                continue
            _check_request(event)
            if isinstance(event, messages.Hello):
                hellos += 1
                assert hellos == 1, "a second hello was accepted"
                assert event.protocol == 1 and conn.nonce == event.nonce
            else:
                assert hellos == 1, f"{event.op} accepted before hello"
        assert conn._buffer.pending_bytes < MAX_LINE_BYTES


@FUZZ
@given(request_lines | mutated(request_lines) | st.binary(max_size=200))
@example(b'{"op":' + b"[" * 5000 + b"]" * 5000 + b"}")
@example(b'{"id":' + b"9" * 5000 + b',"op":"status"}')
@example(b'{"op":"hello","protocol":1e400,"nonce":"' + b"0" * 32 + b'"}')
def test_parse_request_returns_a_request_or_raises_protocol_violation(line: bytes) -> None:
    try:
        request = messages.parse_request(line)
    except messages.ProtocolViolation as exc:
        assert isinstance(exc.message, str) and exc.message
        _check_reply(messages.protocol_error(exc.request_id, exc.message))
    else:
        _check_request(request)


@pytest.mark.parametrize(
    "line",
    [
        b'{"id":"\\ud800","op":"nope"}',
        b'{"id":"\\udfff","op":"hello","protocol":1,"nonce":"' + b"0" * 32 + b'"}',
    ],
)
def test_every_reply_to_any_line_can_be_sent(line: bytes) -> None:
    """A lone surrogate in the id once crashed the session (found by the socket fuzz)."""
    conn = ServerConnection()
    for event in conn.receive(line + b"\n"):
        rid = event.message["id"] if isinstance(event, Reply) else event.id
        messages.encode(messages.ok(rid))  # raises for an id that is not Unicode


@pytest.mark.parametrize(
    "obj",
    [
        {"op": "hello", "protocol": 1, "nonce": "0" * 31 + "\n"},
        {"op": "checkin", "lease": "0" * 31 + "\n", "token": "t"},
        {"op": "checkout", "feature": "netmap", "version": "5.0\n", "user": "u", "host": "h"},
    ],
)
def test_fields_documented_as_hex_or_dotted_numbers_refuse_a_trailing_newline(obj: dict) -> None:
    try:
        request = messages.parse_request(json.dumps(obj).encode())
    except messages.ProtocolViolation:
        return
    raise AssertionError(f"accepted: {request!r}")


# -- license lines and files ------------------------------------------------------------

VENDOR = Ed25519PrivateKey.generate()
VENDOR_PUB = VENDOR.public_key()
SERVER_KEY = keys.public_text(Ed25519PrivateKey.generate().public_key())
SIGNED_LINES = [
    licensefile.sign_line(VENDOR, "SERVER", {"host": "lm1", "port": 1493, "key": SERVER_KEY}),
    licensefile.sign_line(
        VENDOR,
        "FEATURE",
        {
            "name": "netmap",
            "version": "5.0",
            "seats": 25,
            "type": "floating",
            "start": "2024-01-01",
            "expires": "2030-12-31",
            "id": "netmap-1",
            "grace": 60,
            "customer": "ACME Networks, Inc.",
            "notice": 'say "hi" \\ # = x',
        },
    ),
    licensefile.sign_line(
        VENDOR,
        "FEATURE",
        {
            "name": "netmap-pro",
            "version": "6.1",
            "seats": "uncounted",
            "type": "nodelocked",
            "expires": "permanent",
            "id": "pro-1",
            "hostid": "mac=00:11:22:33:44:55",
            "dup": "user_host",
            "linger": 30,
            "borrow": 72,
        },
    ),
    licensefile.sign_line(
        VENDOR,
        "FEATURE",
        {
            "name": "viewer",
            "version": "1",
            "seats": 3,
            "type": "named",
            "expires": "permanent",
            "id": "v-1",
            "users": "ann,bob",
        },
    ),
]
ORIGINAL = {lines.canonical(*lines.tokenize(text)) for text in SIGNED_LINES}

line_texts = st.one_of(
    st.text(any_char, max_size=120),
    st.sampled_from(SIGNED_LINES),
    mutated(st.sampled_from(SIGNED_LINES).map(str.encode)).map(
        lambda b: b.decode("utf-8", "replace")
    ),
)


@FUZZ
@given(line_texts)
@example("FEATURE " + "a=b " * 3000)
@example('FEATURE name="unterminated')
def test_tokenize_returns_fields_or_raises_line_syntax_error(text: str) -> None:
    try:
        keyword, fields = lines.tokenize(text)
    except lines.LineSyntaxError as exc:
        assert str(exc)
        return
    assert isinstance(keyword, str) and keyword
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())
    # What tokenizes survives the canonical form: the signature covers exactly it.
    again = lines.tokenize(lines.format_line(keyword, fields, fields.get("sig", "x")))
    assert {k: v for k, v in again[1].items() if k != "sig"} == {
        k: v for k, v in fields.items() if k != "sig"
    }


@FUZZ
@given(st.lists(line_texts | st.sampled_from(["", "# comment", "   "]), max_size=8), st.booleans())
def test_license_parse_gives_records_or_line_problems_and_no_forgery(
    texts_: list[str], check_signatures: bool
) -> None:
    text = "\n".join(texts_)
    parsed = licensefile.parse(text, "fuzz.lic", VENDOR_PUB if check_signatures else None)
    counted = [ln for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    records = parsed.servers + parsed.features
    assert len(records) + len(parsed.problems) == len(counted)
    for problem in parsed.problems:
        assert isinstance(problem, licensefile.LineProblem) and problem.message
        assert str(problem).startswith("fuzz.lic:")
    if check_signatures:
        # No edit of a signed line yields a valid record that says something else.
        for record in records:
            assert lines.canonical(*lines.tokenize(record.text)) in ORIGINAL, record.text


# -- UDP datagrams ----------------------------------------------------------------------

KEY = os.urandom(32)
LEASE = os.urandom(16).hex()
GENUINE_DATAGRAM = udp.pack(udp.HEARTBEAT, LEASE, 12345, KEY)


@FUZZ
@given(
    st.binary(max_size=200)
    | mutated(st.just(GENUINE_DATAGRAM))
    | st.binary(min_size=udp.DATAGRAM_BYTES, max_size=udp.DATAGRAM_BYTES).map(
        lambda b: udp.MAGIC + b[4:]
    )
)
def test_udp_unpack_returns_a_header_or_none_and_only_genuine_datagrams_authenticate(
    data: bytes,
) -> None:
    parsed = udp.unpack_unverified(data)
    if parsed is not None:
        kind, lease, seq = parsed
        assert len(data) == udp.DATAGRAM_BYTES and data.startswith(udp.MAGIC)
        assert kind in (udp.HEARTBEAT, udp.ACK) and data[4] == kind
        assert len(lease) == 32 and int(lease, 16) >= 0 and 0 <= seq < 2**64
    assert udp.authentic(data, KEY) is (data == GENUINE_DATAGRAM)


# -- what a malicious server sends the client -------------------------------------------

SERVER = Ed25519PrivateKey.generate()
SERVER_TEXT = keys.public_text(SERVER.public_key())
SERVER_LINE = licensefile.sign_line(
    VENDOR, "SERVER", {"host": "lm1", "port": 1493, "key": SERVER_TEXT}
)
NONCE = "0123456789abcdef" * 2


@FUZZ
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "ok": json_values,
            "protocol": st.just(1) | json_values,
            "server_key": st.just(SERVER_TEXT) | json_values,
            "server_line": st.sampled_from([SERVER_LINE, *SIGNED_LINES]) | line_texts | json_values,
            "time": st.integers() | json_values,
            "sig": st.text(max_size=90) | json_values,
        },
    ),
    st.booleans(),
)
def test_verify_hello_returns_the_server_key_or_raises_untrusted(
    reply: dict[str, Any], sign: bool
) -> None:
    if sign and isinstance(reply.get("time"), int) and isinstance(reply.get("server_key"), str):
        payload = trust.hello_payload(NONCE, 1, reply["server_key"], reply["time"])
        reply["sig"] = b64u_encode(SERVER.sign(payload))
    try:
        trust.verify_hello(reply, NONCE, VENDOR_PUB, 1)
    except trust.Untrusted:
        pass


REQUEST = {
    "feature": "netmap",
    "version": "5.0",
    "user": "ann",
    "host": "ws1",
    "display": ":0",
    "pid": 7,
    "project": "",
    "hostid": "",
}


@st.composite
def grant_replies(draw: st.DrawFn) -> dict[str, Any]:
    """Replies with every grant field present, a few of them anything at all, signed by
    the session's server key (mostly), with a genuine, edited or foreign FEATURE line."""
    now = int(time.time() * 1000)
    right = {
        **REQUEST,
        "lease": os.urandom(16).hex(),
        "line": "netmap-1",
        "time": now,
        "nonce": NONCE,
        "heartbeat_interval": 30,
        "lease_timeout": 120,
        "grace": 0,
        "key": b64u_encode(os.urandom(32)),
        "borrow_until": 0,
    }
    grant = {name: right.get(name, "") for name in sorted(trust.GRANT_FIELDS)}
    for name in draw(st.lists(st.sampled_from(sorted(grant)), max_size=2)):
        grant[name] = draw(json_values | st.integers(-(10**8), 10**8).map(lambda d: now + d))
    if not draw(MOSTLY):
        grant[draw(texts)] = draw(json_values)  # an extra field
    line = draw(st.sampled_from([SIGNED_LINES[1]] * 3 + SIGNED_LINES) | line_texts)
    reply: dict[str, Any] = {"ok": True, "grant": grant, "feature_line": line}
    try:
        digest = trust.grant_digest(grant)
    except UnicodeEncodeError:  # a lone surrogate: no server can sign this grant
        digest = None
    if digest is not None and draw(MOSTLY):  # signed as the server does: digests, one sig
        batch = [digest]
        if not draw(MOSTLY):
            batch = draw(st.lists(st.text(max_size=50) | json_values, max_size=3)) + batch
        reply["batch"] = batch
        reply["sig"] = b64u_encode(SERVER.sign(trust.batch_payload(batch)))
    else:
        reply["batch"] = draw(st.lists(json_values, max_size=3) | json_values)
        reply["sig"] = draw(st.text(max_size=90) | json_values)
    return reply


@FUZZ
@given(grant_replies())
def test_verify_grant_returns_the_grant_or_raises_untrusted(reply: dict[str, Any]) -> None:
    try:
        grant = trust.verify_grant(
            reply,
            nonce=NONCE,
            server_key=SERVER.public_key(),
            vendor_key=VENDOR_PUB,
            request=REQUEST,
            hello_time_ms=int(time.time() * 1000),
        )
    except trust.Untrusted:
        return
    assert grant is reply["grant"]
    assert grant["nonce"] == NONCE and grant["feature"] == "netmap"
