"""Replay the conformance vectors of docs/protocol.md and docs/license-file.md.

The vectors live in ``tests/vectors/*.json`` and are what another
implementation tests itself against.  Three layers:

* deterministic crypto and encodings (signed payloads, signatures, lease
  token, UDP datagrams, license lines) and the checks a client must make
  (``verify_hello``/``verify_grant`` reject every negative vector);
* request parsing, through ``messages.parse_request`` and the sans-IO
  ``ServerConnection``;
* scripted sessions replayed over TCP and UDP against a real server process.

The stored files are also compared with what ``make_vectors.py`` produces
now, so a change of the wire format fails here until the vectors are
deliberately regenerated (and the documents updated).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import importlib.util
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from netmap_lm.encoding import b64u_decode, b64u_encode, canonical_json
from netmap_lm.engine.seats import CheckoutRequest, Denial, SeatEngine
from netmap_lm.licensing import keys, licensefile, lines, trust
from netmap_lm.protocol import messages, udp
from netmap_lm.protocol.connection import Reply, ServerConnection
from netmap_lm.server.admin import read_admin_token
from support import Kit, ServerProcess

VECTORS = Path(__file__).parent / "vectors"
PROTOCOL = json.loads((VECTORS / "protocol.json").read_text(encoding="utf-8"))
LICENSE = json.loads((VECTORS / "license.json").read_text(encoding="utf-8"))
REPLY_TIMEOUT = 5.0  # seconds to wait for a TCP reply or a UDP ack
SILENCE = 0.5  # seconds of UDP silence that count as "no answer"


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("make_vectors", VECTORS / "make_vectors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = _load_generator()
line_bytes = GENERATOR.line_bytes


def _private(role: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(PROTOCOL["keys"][role]["seed_hex"]))


def _public(role: str) -> Ed25519PublicKey:
    return keys.public_from_text(PROTOCOL["keys"][role]["public"])


def _names(case: dict[str, Any]) -> str:
    return str(case["name"])


# -- the files themselves ------------------------------------------------------------------


@pytest.mark.parametrize("name", [GENERATOR.PROTOCOL_FILE, GENERATOR.LICENSE_FILE])
def test_stored_vectors_are_what_the_generator_makes(name: str) -> None:
    stored = (VECTORS / name).read_text(encoding="utf-8")
    assert GENERATOR.build()[name] == stored, (
        f"tests/vectors/{name} is stale: the wire or license format changed. If that is "
        "intended, run tests/vectors/make_vectors.py and update docs/protocol.md and "
        "docs/license-file.md"
    )


# -- keys and encodings -----------------------------------------------------------------------


@pytest.mark.parametrize("role", sorted(PROTOCOL["keys"]))
def test_public_keys_follow_from_the_seeds(role: str) -> None:
    entry = PROTOCOL["keys"][role]
    assert keys.public_text(_private(role).public_key()) == entry["public"]
    assert b64u_decode(entry["public"]).hex() == entry["public_hex"]


def test_rfc8032_public_keys() -> None:
    # RFC 8032 §7.1 TEST 1 and TEST 2: the seeds are the RFC's, so are the keys.
    assert PROTOCOL["keys"]["vendor"]["public_hex"] == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )
    assert PROTOCOL["keys"]["server"]["public_hex"] == (
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
    )


@pytest.mark.parametrize("case", PROTOCOL["base64url"], ids=lambda c: c["text"] or "empty")
def test_base64url(case: dict[str, str]) -> None:
    assert b64u_encode(bytes.fromhex(case["hex"])) == case["text"]
    assert b64u_decode(case["text"]).hex() == case["hex"]


@pytest.mark.parametrize("text", PROTOCOL["base64url_invalid"])
def test_base64url_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        b64u_decode(text)


@pytest.mark.parametrize("case", PROTOCOL["canonical_json"], ids=lambda c: c["text"][:20])
def test_canonical_json(case: dict[str, Any]) -> None:
    encoded = canonical_json(case["object"])
    assert encoded == case["text"].encode()
    assert encoded.hex() == case["hex"]


# -- hello, grant, token ------------------------------------------------------------------------


def test_hello_payload_and_signature() -> None:
    hello = PROTOCOL["hello"]
    reply = hello["reply"]
    payload = trust.hello_payload(
        hello["request"]["nonce"], 1, PROTOCOL["keys"]["server"]["public"], hello["server_time"]
    )
    assert payload == hello["payload"].encode()
    assert payload.hex() == hello["payload_hex"]
    assert payload.startswith(trust.HELLO_CONTEXT) and hello["context"] == "netmap_lm-hello-v1\n"
    assert b64u_encode(_private("server").sign(payload)) == hello["signature"] == reply["sig"]


def test_hello_reply_verifies() -> None:
    hello = PROTOCOL["hello"]
    server_key, fields = trust.verify_hello(
        hello["reply"], hello["request"]["nonce"], _public("vendor"), 1
    )
    assert keys.public_text(server_key) == PROTOCOL["keys"]["server"]["public"]
    assert fields["key"] == PROTOCOL["keys"]["server"]["public"]
    assert hello["reply"]["server_line"] == PROTOCOL["license_lines"]["server_line"]


def test_grant_payload_digest_batch_and_signature() -> None:
    vec = PROTOCOL["grant"]
    payload = trust.grant_payload(vec["grant"])
    assert payload == vec["payload"].encode()
    assert payload.hex() == vec["payload_hex"]
    assert payload.startswith(trust.GRANT_CONTEXT) and vec["context"] == "netmap_lm-grant-v1\n"
    assert set(vec["grant"]) == trust.GRANT_FIELDS
    assert b64u_encode(hashlib.sha256(payload).digest()) == vec["digest"]
    assert trust.grant_digest(vec["grant"]) == vec["digest"] == vec["batch"][0]
    batch_payload = trust.batch_payload(vec["batch"])
    assert batch_payload == vec["batch_payload"].encode()
    assert batch_payload.hex() == vec["batch_payload_hex"]
    assert vec["batch_context"] == trust.BATCH_CONTEXT.decode() == "netmap_lm-grant-batch-v1\n"
    signature = b64u_encode(_private("server").sign(batch_payload))
    assert signature == vec["signature"] == vec["reply"]["sig"]
    assert vec["reply"]["batch"] == vec["batch"]
    assert b64u_decode(vec["grant"]["key"]).hex() == vec["lease_key_hex"]


def test_grant_reply_verifies() -> None:
    vec = PROTOCOL["grant"]
    grant = trust.verify_grant(
        vec["reply"],
        nonce=vec["grant"]["nonce"],
        server_key=_public("server"),
        vendor_key=_public("vendor"),
        request=vec["request"],
        hello_time_ms=vec["hello_time"],
    )
    assert grant == vec["grant"]


def test_borrow_grant_verifies() -> None:
    vec = PROTOCOL["borrow_grant"]
    batch = [trust.grant_digest(vec["grant"])]
    assert vec["reply"]["batch"] == batch
    assert b64u_encode(_private("server").sign(trust.batch_payload(batch))) == vec["signature"]
    grant = trust.verify_grant(
        vec["reply"],
        nonce=vec["grant"]["nonce"],
        server_key=_public("server"),
        vendor_key=_public("vendor"),
        request=vec["request"],
        hello_time_ms=vec["hello_time"],
    )
    assert grant["borrow_until"] == grant["time"] + vec["request"]["borrow"] * 3_600_000


def test_lease_token() -> None:
    vec = PROTOCOL["lease_token"]
    token = trust.lease_token(bytes.fromhex(vec["key_hex"]), vec["lease"])
    assert token == vec["token"]
    assert vec["context"] == trust.TOKEN_CONTEXT.decode()
    assert len(b64u_decode(token)) == 16


def test_admin_proof() -> None:
    vec = PROTOCOL["admin_proof"]
    assert trust.admin_proof(bytes.fromhex(vec["admin_key_hex"]), vec["nonce"]) == vec["proof"]
    assert vec["context"] == trust.ADMIN_CONTEXT.decode()


@pytest.mark.parametrize("case", PROTOCOL["verify_hello_reject"], ids=_names)
def test_verify_hello_rejects(case: dict[str, Any]) -> None:
    with pytest.raises(trust.Untrusted):
        trust.verify_hello(case["reply"], case["nonce"], _public("vendor"), 1)


@pytest.mark.parametrize("case", PROTOCOL["verify_grant_reject"], ids=_names)
def test_verify_grant_rejects(case: dict[str, Any]) -> None:
    with pytest.raises(trust.Untrusted):
        trust.verify_grant(
            case["reply"],
            nonce=case["nonce"],
            server_key=_public("server"),
            vendor_key=_public("vendor"),
            request=case["request"],
            hello_time_ms=case["hello_time"],
        )


# -- UDP ------------------------------------------------------------------------------------------


def test_udp_heartbeat_and_ack() -> None:
    vec = PROTOCOL["udp"]
    key = bytes.fromhex(vec["key_hex"])
    heartbeat = bytes.fromhex(vec["heartbeat_hex"])
    ack = bytes.fromhex(vec["ack_hex"])
    assert udp.pack(udp.HEARTBEAT, vec["lease"], vec["seq"], key) == heartbeat
    assert udp.pack(udp.ACK, vec["lease"], vec["seq"], key) == ack
    assert len(heartbeat) == len(ack) == vec["datagram_bytes"] == udp.DATAGRAM_BYTES
    assert udp.unpack_unverified(heartbeat) == (udp.HEARTBEAT, vec["lease"], vec["seq"])
    assert udp.unpack_unverified(ack) == (udp.ACK, vec["lease"], vec["seq"])
    assert udp.authentic(heartbeat, key) and udp.authentic(ack, key)
    # The layout, byte by byte, as docs/protocol.md draws it.
    assert heartbeat[:4] == b"NMH1" and heartbeat[4] == 1 and ack[4] == 2
    assert heartbeat[5:21].hex() == vec["lease"]
    assert int.from_bytes(heartbeat[21:29], "big") == vec["seq"]
    assert heartbeat[29:] == _hmac(key, heartbeat[:29])


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


@pytest.mark.parametrize("case", PROTOCOL["udp"]["dropped"], ids=_names)
def test_udp_datagrams_the_server_drops(case: dict[str, str]) -> None:
    data = bytes.fromhex(case["hex"])
    key = bytes.fromhex(PROTOCOL["udp"]["key_hex"])
    parsed = udp.unpack_unverified(data)
    assert parsed is None or parsed[0] != udp.HEARTBEAT or not udp.authentic(data, key)


def test_udp_replay_rule() -> None:
    """Only a seq above every one seen before is answered; a TCP heartbeat's
    seq raises the same floor (server/tcp.py)."""
    feature = licensefile.parse_line(
        PROTOCOL["license_lines"]["feature_line"], 1, _public("vendor")
    )
    assert isinstance(feature, licensefile.FeatureLine)
    engine = SeatEngine([feature], lease_timeout=120)
    lease = engine.checkout(
        CheckoutRequest("netmap", "5.0", "alice", "ws-17"),
        lease_id=PROTOCOL["udp"]["lease"],
        key=bytes.fromhex(PROTOCOL["udp"]["key_hex"]),
        now=0.0,
        wall_ms=PROTOCOL["grant"]["grant"]["time"],
        today=feature.start,
    )
    assert not isinstance(lease, Denial)
    for step in PROTOCOL["udp"]["replay"]:
        if "tcp_heartbeat_seq" in step:
            lease.seq = max(lease.seq, step["tcp_heartbeat_seq"])
            continue
        result = engine.heartbeat(lease.id, now=1.0, seq=step["seq"])
        assert (not isinstance(result, Denial)) == step["answered"], step


# -- request parsing -------------------------------------------------------------------------------


def _line(spec: Any) -> bytes:
    if isinstance(spec, dict) and {"text", "hex", "json", "fill", "concat"} & set(spec):
        return line_bytes(spec)
    return line_bytes({"json": spec})


@pytest.mark.parametrize("case", PROTOCOL["requests"], ids=_names)
def test_parse_request(case: dict[str, Any]) -> None:
    line = _line(case["line"]).rstrip(b"\n")
    expect = case["expect"]
    if "op" in expect:
        request = messages.parse_request(line)
        assert request.op == expect["op"]
        parsed = dataclasses.asdict(request)
        assert {k: parsed.get(k, "<absent>") for k in expect["fields"]} == expect["fields"]
    else:
        with pytest.raises(messages.ProtocolViolation) as info:
            messages.parse_request(line)
        assert info.value.request_id == expect["id"]
        assert expect["mentions"] in info.value.message


@pytest.mark.parametrize("case", PROTOCOL["requests"], ids=_names)
def test_request_through_a_connection(case: dict[str, Any]) -> None:
    """The same lines in a session (after hello), as the server sees them."""
    conn = ServerConnection()
    expect = case["expect"]
    if expect.get("op") != "hello" and not case["name"].startswith("hello"):
        [opened] = conn.receive(
            _line({"op": "hello", "id": 0, "protocol": 1, "nonce": GENERATOR.NONCE})
        )
        assert isinstance(opened, messages.Hello)
    [event] = conn.receive(_line(case["line"]))
    if "op" in expect:
        assert not isinstance(event, Reply)
        assert event.op == expect["op"]
        parsed = dataclasses.asdict(event)
        assert {k: parsed.get(k, "<absent>") for k in expect["fields"]} == expect["fields"]
    else:
        assert isinstance(event, Reply) and not event.close
        assert event.message["ok"] is False
        assert event.message["reason"] == "PROTOCOL_ERROR"
        assert event.message["id"] == expect["id"]
        assert expect["mentions"] in event.message["message"]
        assert not conn.closed


@pytest.mark.parametrize("case", PROTOCOL["connections"], ids=_names)
def test_connection_rules(case: dict[str, Any]) -> None:
    conn = ServerConnection()
    events: list[Any] = []
    for spec in case["feed"]:
        for event in conn.receive(line_bytes(spec)):
            events.append(event)
            if isinstance(event, Reply) and event.close:
                break  # the I/O shell sends this reply, closes, and reads no further
        if events and isinstance(events[-1], Reply) and events[-1].close:
            break
    assert len(events) == len(case["events"]), events
    for event, expect in zip(events, case["events"], strict=True):
        if "op" in expect:
            assert not isinstance(event, Reply), event
            assert event.op == expect["op"]
        else:
            assert isinstance(event, Reply), event
            for key, value in expect["reply"].items():
                assert event.message[key] == value, (key, event.message)
            assert event.close == expect["close"]
            assert expect["mentions"] in event.message["message"]
    if "nonce" in case:
        assert conn.nonce == case["nonce"]


# -- license lines ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", LICENSE["lines"], ids=_names)
def test_license_line_canonical_form_and_signature(case: dict[str, Any]) -> None:
    canonical = lines.canonical(case["keyword"], case["fields"])
    assert canonical == case["canonical"]
    signed = lines.SIGNING_CONTEXT + canonical.encode()
    assert signed.hex() == case["signed_hex"]
    assert b64u_encode(_private("vendor").sign(signed)) == case["sig"]
    keyword, fields = lines.tokenize(case["line"])
    assert keyword == case["keyword"]
    assert fields == {**case["fields"], "sig": case["sig"]}
    assert lines.signature_valid(_public("vendor"), keyword, fields)
    assert not lines.signature_valid(_public("other_vendor"), keyword, fields)
    licensefile.parse_line(case["line"], 1, _public("vendor"))


def test_license_vectors_share_the_vendor_key() -> None:
    assert LICENSE["vendor_public"] == PROTOCOL["keys"]["vendor"]["public"]
    assert LICENSE["signing_context"] == lines.SIGNING_CONTEXT.decode()
    assert LICENSE["lines"][0]["line"] == PROTOCOL["license_lines"]["server_line"]
    assert LICENSE["lines"][1]["line"] == PROTOCOL["license_lines"]["feature_line"]


@pytest.mark.parametrize("case", LICENSE["invalid_lines"], ids=_names)
def test_invalid_license_lines(case: dict[str, str]) -> None:
    with pytest.raises(ValueError) as info:
        licensefile.parse_line(case["line"], 1, _public("vendor"))
    assert case["mentions"] in str(info.value)


@pytest.mark.parametrize("case", LICENSE["tokenize"], ids=lambda c: c["text"])
def test_tokenize(case: dict[str, Any]) -> None:
    assert lines.tokenize(case["text"]) == (case["keyword"], case["fields"])


@pytest.mark.parametrize("text", LICENSE["tokenize_errors"], ids=lambda t: t[:30])
def test_tokenize_errors(text: str) -> None:
    with pytest.raises(lines.LineSyntaxError):
        lines.tokenize(text)


@pytest.mark.parametrize("case", LICENSE["quote"], ids=lambda c: repr(c["value"]))
def test_quote(case: dict[str, str]) -> None:
    assert lines.quote(case["value"]) == case["written"]
    assert lines.tokenize(f"FEATURE notice={case['written']}")[1]["notice"] == case["value"]


def test_example_license_file() -> None:
    parsed = licensefile.parse(LICENSE["example_file"], "license.lic", _public("vendor"))
    assert parsed.problems == []
    assert len(parsed.servers) == 1 and len(parsed.features) == 5


def test_broken_license_file() -> None:
    vec = LICENSE["broken_file"]
    parsed = licensefile.parse(vec["text"], vec["path"], _public("vendor"))
    assert len(parsed.servers) == vec["servers"]
    assert [f.id for f in parsed.features] == vec["features"]
    assert len(parsed.problems) == len(vec["problems"])
    for problem, expect in zip(parsed.problems, vec["problems"], strict=True):
        assert str(problem).startswith(expect["prefix"]), str(problem)
        assert expect["mentions"] in str(problem)


# -- sessions against a real server ---------------------------------------------------------


def _path(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if isinstance(obj, list):
            obj = obj[int(part)]
        elif isinstance(obj, dict):
            obj = obj[part]
        else:
            raise KeyError(dotted)
    return obj


class SessionReplay:
    """Runs the steps of one session vector against a live server."""

    def __init__(self, kit: Kit, server: ServerProcess) -> None:
        self.kit = kit
        self.server = server
        self.vendor_key = keys.read_public(kit.vendor_pub)
        self.admin_key = read_admin_token(kit.state / "admin.token")
        self.vars: dict[str, str] = {}
        self.sock: socket.socket | None = None
        self.connect()

    def connect(self) -> None:
        self.close()
        self.sock = socket.create_connection(("127.0.0.1", self.kit.port), timeout=REPLY_TIMEOUT)
        self.buffer = b""
        self.nonce = os.urandom(16).hex()
        self.server_key: Ed25519PublicKey | None = None
        self.hello_time = 0
        self.sent: dict[str, dict[str, Any]] = {}
        self.unclaimed: list[dict[str, Any]] = []

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    # -- placeholders

    def value(self, obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: self.value(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.value(v) for v in obj]
        if not isinstance(obj, str) or not obj.startswith("$"):
            return obj
        name = obj[1:]
        if name == "nonce":
            return self.nonce
        if name == "admin":
            return trust.admin_proof(self.admin_key, self.nonce)
        if name.startswith("token"):
            suffix = name[len("token") :]
            key = b64u_decode(self.vars["key" + suffix])
            return trust.lease_token(key, self.vars["lease" + suffix])
        return self.vars[name]

    # -- TCP

    def write(self, data: bytes) -> None:
        assert self.sock is not None
        self.sock.sendall(data)

    def send(self, request: dict[str, Any]) -> dict[str, Any]:
        message = self.value(request)
        self.sent[json.dumps(message.get("id"))] = message
        return message

    def _read_line(self) -> bytes | None:
        assert self.sock is not None
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def reply(self, rid: Any) -> dict[str, Any]:
        for reply in self.unclaimed:
            if reply.get("id") == rid:
                self.unclaimed.remove(reply)
                return reply
        while True:
            line = self._read_line()
            assert line is not None, f"connection closed while waiting for reply {rid!r}"
            reply = json.loads(line)
            assert isinstance(reply, dict)
            if reply.get("id") == rid:
                return reply
            self.unclaimed.append(reply)

    def closed_by_server(self) -> bool:
        assert self.sock is not None
        self.sock.settimeout(REPLY_TIMEOUT)
        try:
            while self._read_line() is not None:
                pass
        except ConnectionResetError:
            return True  # closed with our unread bytes still queued: the kernel resets
        except TimeoutError:
            return False
        return True

    def check(self, expect: dict[str, Any], reply: dict[str, Any]) -> None:
        expect = {k: (v if k == "capture" else self.value(v)) for k, v in expect.items()}
        assert reply.get("id") == expect["id"], reply
        assert reply.get("ok") is expect["ok"], reply
        if not expect["ok"]:
            assert reply.get("reason") == expect["reason"], reply
            assert isinstance(reply.get("message"), str) and reply["message"], reply
        for path in expect.get("has", []):
            _path(reply, path)
        for path, value in expect.get("equals", {}).items():
            assert _path(reply, path) == value, (path, reply)
        if expect.get("verify") == "hello":
            self.server_key, _ = trust.verify_hello(reply, self.nonce, self.vendor_key, 1)
            self.hello_time = reply["time"]
        elif expect.get("verify") == "grant":
            assert self.server_key is not None, "verify the hello first"
            trust.verify_grant(
                reply,
                nonce=self.nonce,
                server_key=self.server_key,
                vendor_key=self.vendor_key,
                request=self.sent[json.dumps(reply["id"])],
                hello_time_ms=self.hello_time,
            )
        for name, path in expect.get("capture", {}).items():
            self.vars[name] = _path(reply, path)
        if expect.get("closes"):
            assert self.closed_by_server(), "the server should have closed the connection"

    # -- UDP

    def udp(self, step: dict[str, Any], expect: str) -> None:
        lease = self.value(step["lease"])
        key = b64u_decode(self.value(step["key"]))
        datagram = udp.pack(udp.HEARTBEAT, lease, step["seq"], key)
        if step.get("tamper"):
            datagram = datagram[:-1] + bytes([datagram[-1] ^ 0x01])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("127.0.0.1", self.kit.port))
            sock.send(datagram)
            sock.settimeout(REPLY_TIMEOUT if expect == "ack" else SILENCE)
            try:
                answer = sock.recv(2048)
            except TimeoutError:
                answer = None
        if expect == "silence":
            assert answer is None, f"unexpected answer to seq {step['seq']}: {answer!r}"
            return
        assert answer is not None, f"no ack for seq {step['seq']}"
        assert len(answer) <= len(datagram)
        assert udp.unpack_unverified(answer) == (udp.ACK, lease, step["seq"])
        assert udp.authentic(answer, key)

    # -- steps

    def run(self, step: dict[str, Any]) -> None:
        if "send" in step:
            message = self.send(step["send"])
            self.write(json.dumps(message, ensure_ascii=False).encode() + b"\n")
            self.check(step["expect"], self.reply(step["expect"]["id"]))
        elif "await" in step:
            self.check(step["await"], self.reply(step["await"]["id"]))
        elif "send_raw" in step:
            self.write(line_bytes(step["send_raw"]))
            self.check(step["expect"], self.reply(step["expect"]["id"]))
        elif "pipeline" in step:
            batch = [self.send(request) for request in step["pipeline"]]
            self.write(b"".join(json.dumps(m).encode() + b"\n" for m in batch))
            for expect in step["expect"]:
                self.check(expect, self.reply(expect["id"]))
        elif "udp" in step:
            self.udp(step["udp"], step["expect"])
        elif "sleep" in step:
            time.sleep(step["sleep"])
        elif "reconnect" in step:
            self.connect()
        elif "restart" in step:
            self.close()
            self.server.kill()
            self.server.start()
            self.connect()
        else:
            raise AssertionError(f"unknown step {step}")


@pytest.mark.parametrize("session", PROTOCOL["sessions"], ids=_names)
def test_session(session: dict[str, Any], kit: Kit, server: ServerProcess) -> None:
    replay = SessionReplay(kit, server)
    try:
        for number, step in enumerate(session["steps"], 1):
            try:
                replay.run(step)
            except AssertionError as exc:
                log = server.log()[-3000:]
                raise AssertionError(f"step {number} {step}: {exc}\n{log}") from None
    finally:
        replay.close()
