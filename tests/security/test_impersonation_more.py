"""Impersonation beyond tests/integration/test_impersonation.py (SPEC §3).

Every attack here ends in SERVER_NOT_TRUSTED on the client.  Most run the
real client library against a man in the middle (``_net.Mitm``) that relays a
genuine ``netmap-lm serve`` process and edits its JSON lines on the fly; the
attacks that need a valid server signature over edited content re-sign with
the genuine server key (an insider who copied ``server.key``: the strongest
position short of the vendor key).  The last part calls
``trust.verify_hello``/``trust.verify_grant`` directly with replies captured
from the genuine server, edited and re-signed with real keys.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from netmap_lm import LicenseClient, LicenseDenied
from netmap_lm.encoding import b64u_decode, b64u_encode
from netmap_lm.licensing import keys, licensefile, trust
from netmap_lm.server.identity import load_identity
from support import Kit, ServerProcess

from ._net import Mitm, RawSession

DAY_MS = 86_400_000
PROTOCOL = 1


def _today(delta_days: int = 0) -> str:
    return (
        datetime.datetime.now(datetime.UTC).date() + datetime.timedelta(days=delta_days)
    ).isoformat()


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kit]:
    """A genuine server: netmap 5.0 (100 seats), a netmap 6.0 line, a time-limited
    feature.  Plenty of seats: grants refused by the client are given back best effort."""
    kit = Kit(tmp_path_factory.mktemp("genuine"))
    kit.write_license(
        [
            kit.feature_line("netmap", seats=100, id="netmap-main"),
            kit.feature_line("netmap", version="6.0", seats=5, id="netmap-v6"),
            kit.feature_line("timed", seats=10, id="timed-1", expires=_today(30)),
        ]
    )
    with ServerProcess(kit, heartbeat_interval=1.0, lease_timeout=30.0):
        yield kit


def _client(kit: Kit, servers: str) -> LicenseClient:
    return LicenseClient(servers=servers, vendor_key=str(kit.vendor_pub), timeout=5.0)


def _refused(kit: Kit, servers: str, feature: str = "netmap", version: str = "5.0") -> str:
    """Check out through ``servers``; assert SERVER_NOT_TRUSTED; return the message."""
    client = _client(kit, servers)
    try:
        with pytest.raises(LicenseDenied) as denied:
            client.checkout(feature, version, heartbeat=False)
    finally:
        client.close()
    assert denied.value.reason == "SERVER_NOT_TRUSTED", denied.value
    assert denied.value.exit_code == 76
    return denied.value.message


def _nothing_after_the_hello(ops: list[str]) -> None:
    """What reaches the server once its hello fails to verify: the checkout the
    client sent in the hello's packet, then at most the give-back check-in."""
    assert ops in (["hello"], ["hello", "checkout"], ["hello", "checkout", "checkin"]), ops


def _in_use(kit: Kit, feature: str = "netmap") -> int:
    client = LicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub))
    try:
        (row,) = client.status(feature)["features"]
    finally:
        client.close()
    return int(row["in_use"])


def _server_key(kit: Kit) -> Ed25519PrivateKey:
    return load_identity(kit.state).private_key


def _sign_batch(key: Ed25519PrivateKey, reply: dict[str, Any], batch: list[Any]) -> None:
    """Sign as the server does: one signature over a batch of grant digests."""
    reply["batch"] = batch
    reply["sig"] = b64u_encode(key.sign(trust.batch_payload(batch)))


def _resign_grant(kit: Kit, reply: dict[str, Any]) -> dict[str, Any]:
    _sign_batch(_server_key(kit), reply, [trust.grant_digest(reply["grant"])])
    return reply


def _resign_hello(key: Ed25519PrivateKey, reply: dict[str, Any], nonce: str) -> dict[str, Any]:
    payload = trust.hello_payload(nonce, reply["protocol"], reply["server_key"], reply["time"])
    reply["sig"] = b64u_encode(key.sign(payload))
    return reply


def _other_server_line(kit: Kit) -> tuple[Ed25519PrivateKey, str]:
    """Another customer's server: its own key, a genuine vendor-signed SERVER line."""
    other = Ed25519PrivateKey.generate()
    line = licensefile.sign_line(
        kit.vendor_key,
        "SERVER",
        {
            "host": "127.0.0.1",
            "port": kit.port,
            "key": keys.public_text(other.public_key()),
        },
    )
    return other, line


def _on_hello(edit: Callable[[dict[str, Any], dict[str, Any]], None]) -> Any:
    def hook(request: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
        if request.get("op") == "hello":
            edit(request, reply)
        return reply

    return hook


def _on_grant(edit: Callable[[dict[str, Any]], None]) -> Any:
    def hook(request: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
        if request.get("op") == "checkout" and reply.get("ok"):
            edit(reply)
        return reply

    return hook


# -- forged hellos: a server that is not the one the vendor blessed ---------------------


def test_vendor_signed_server_line_for_another_server_key(genuine: Kit) -> None:
    """The hello carries a genuine SERVER line, but of another customer's server."""
    _, line = _other_server_line(genuine)

    def edit(request: dict[str, Any], reply: dict[str, Any]) -> None:
        reply["server_line"] = line

    with Mitm(genuine.port, on_reply=_on_hello(edit)) as mitm:
        message = _refused(genuine, mitm.servers)
        _nothing_after_the_hello(mitm.ops())
    assert "binds another server key" in message


def test_seat_granted_with_a_distrusted_hello_is_given_back(genuine: Kit) -> None:
    """The checkout rides with the hello, so a genuine server behind a hello
    that fails to verify (here: another server's SERVER line) has granted a
    seat by the time the client knows; the client checks it in at once rather
    than leave it held until the lease timeout (30 s here)."""
    _, line = _other_server_line(genuine)

    def edit(request: dict[str, Any], reply: dict[str, Any]) -> None:
        reply["server_line"] = line

    before = _in_use(genuine)
    with Mitm(genuine.port, on_reply=_on_hello(edit)) as mitm:
        _refused(genuine, mitm.servers)
        deadline = time.monotonic() + 5.0  # the give-back may still be on its way
        while time.monotonic() < deadline and (len(mitm.seen) < 3 or _in_use(genuine) != before):
            time.sleep(0.05)
        granted = [reply for request, reply in mitm.seen if request.get("op") == "checkout"]
        assert granted and granted[0]["ok"], mitm.seen  # the server did grant a seat
        assert mitm.ops() == ["hello", "checkout", "checkin"]
        assert mitm.seen[2][1]["ok"], mitm.seen[2]
    assert _in_use(genuine) == before


def test_hello_of_another_blessed_server_then_this_servers_grant(genuine: Kit) -> None:
    """A forger that holds another customer's genuine server key and SERVER line (say,
    its own site's) answers the hello itself and relays the grants of the victim's
    server: the hello verifies, the relayed grant is not signed by the key it showed."""
    other, line = _other_server_line(genuine)

    def edit(request: dict[str, Any], reply: dict[str, Any]) -> None:
        reply["server_key"] = keys.public_text(other.public_key())
        reply["server_line"] = line
        _resign_hello(other, reply, request["nonce"])

    with Mitm(genuine.port, on_reply=_on_hello(edit)) as mitm:
        message = _refused(genuine, mitm.servers)
        # (the client then gives the refused grant back: a checkin may follow)
        assert mitm.ops()[:2] == ["hello", "checkout"]
    assert "grant is not signed by the server key" in message


def test_server_line_edited_to_bind_the_forgers_key(genuine: Kit) -> None:
    """The genuine SERVER line with key= replaced by the forger's own key: the forger
    can sign the hello, but the vendor signature no longer covers the line."""
    fake = Ed25519PrivateKey.generate()
    fake_text = keys.public_text(fake.public_key())

    def edit(request: dict[str, Any], reply: dict[str, Any]) -> None:
        reply["server_line"] = reply["server_line"].replace(reply["server_key"], fake_text)
        assert fake_text in reply["server_line"]
        reply["server_key"] = fake_text
        _resign_hello(fake, reply, request["nonce"])

    with Mitm(genuine.port, on_reply=_on_hello(edit)) as mitm:
        message = _refused(genuine, mitm.servers)
    assert "SERVER line is not signed by the vendor key" in message


def test_feature_line_posing_as_the_server_line(genuine: Kit) -> None:
    """A vendor-signed line of the wrong kind is no binding of a server key."""
    feature = genuine.license.read_text().splitlines()[1]

    def edit(request: dict[str, Any], reply: dict[str, Any]) -> None:
        reply["server_line"] = feature

    with Mitm(genuine.port, on_reply=_on_hello(edit)) as mitm:
        message = _refused(genuine, mitm.servers)
    assert "SERVER line is not signed by the vendor key" in message


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        ("reply-protocol-0", "protocol 0"),
        ("reply-protocol-missing", "protocol None"),
        ("reply-protocol-string", "protocol '1'"),
        ("request-protocol-0", "hello refused: PROTOCOL_ERROR"),
    ],
)
def test_downgrade_to_another_protocol_version(genuine: Kit, edit: str, why: str) -> None:
    """A man in the middle claims (or asks for) an older protocol version."""

    def on_request(request: dict[str, Any]) -> dict[str, Any]:
        if edit == "request-protocol-0" and request.get("op") == "hello":
            request["protocol"] = 0
        return request

    def on_reply(request: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
        if request.get("op") == "hello" and reply.get("ok"):
            if edit == "reply-protocol-0":
                reply["protocol"] = 0
            elif edit == "reply-protocol-missing":
                del reply["protocol"]
            elif edit == "reply-protocol-string":
                reply["protocol"] = "1"
        return reply

    with Mitm(genuine.port, on_request=on_request, on_reply=on_reply) as mitm:
        message = _refused(genuine, mitm.servers)
        _nothing_after_the_hello(mitm.ops())
    assert why in message


def test_cli_exits_76_on_a_downgraded_hello(genuine: Kit) -> None:
    def edit(request: dict[str, Any], reply: dict[str, Any]) -> None:
        reply["protocol"] = 0

    with Mitm(genuine.port, on_reply=_on_hello(edit)) as mitm:
        result = genuine.cli("checkout", "netmap", "--server", mitm.servers, "--json")
    assert result.returncode == 76, (result.stdout, result.stderr)
    assert '"SERVER_NOT_TRUSTED"' in result.stdout
    assert "SERVER_NOT_TRUSTED" in result.stderr


# -- grants from the wrong session or the wrong server -----------------------------------


def test_grant_for_another_nonce_from_a_parallel_session(genuine: Kit) -> None:
    """The man in the middle relays the client's hello, but asks for the seat in a
    session of its own: a genuine, correctly signed grant -- for another nonce."""
    side = RawSession(genuine.port)
    assert side.hello() is not None

    def local(request: dict[str, Any]) -> dict[str, Any]:
        reply = side.request({k: v for k, v in request.items() if k != "id"})
        assert reply is not None and reply["ok"], reply
        assert reply["grant"]["nonce"] == side.nonce
        return {**reply, "id": request["id"]}

    def on_request(request: dict[str, Any]) -> dict[str, Any] | None:
        return None if request.get("op") == "checkout" else request

    try:
        with Mitm(genuine.port, on_request=on_request, on_local=local) as mitm:
            message = _refused(genuine, mitm.servers)
            assert mitm.ops()[:2] == ["hello", "checkout"]
            assert not mitm.errors, mitm.errors
    finally:
        side.close()
    assert "nonce differs" in message


def test_grant_spliced_from_another_genuine_server_of_the_same_vendor(
    genuine: Kit, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Two genuine servers of one vendor: the hello comes from one, the grant (for the
    client's very nonce, in a session the man in the middle opened with it) from the
    other.  Each is signed; together they are not one server's word."""
    other = Kit(tmp_path_factory.mktemp("other-site"))
    other.vendor_key = genuine.vendor_key  # same vendor, another customer's server
    other.vendor_pub = genuine.vendor_pub
    other.write_license([other.feature_line("netmap", seats=100, id="netmap-main")])
    with ServerProcess(other, heartbeat_interval=1.0, lease_timeout=30.0):
        sessions: dict[str, RawSession] = {}

        def on_request(request: dict[str, Any]) -> dict[str, Any] | None:
            if request.get("op") == "hello":
                side = RawSession(other.port)
                side.nonce = request["nonce"]  # the client's nonce, replayed to the other
                assert side.hello() is not None
                sessions["side"] = side
                return request
            return None

        def local(request: dict[str, Any]) -> dict[str, Any]:
            reply = sessions["side"].request({k: v for k, v in request.items() if k != "id"})
            assert reply is not None and reply["ok"], reply
            return {**reply, "id": request["id"]}

        try:
            with Mitm(genuine.port, on_request=on_request, on_local=local) as mitm:
                message = _refused(genuine, mitm.servers)
                assert not mitm.errors, mitm.errors
        finally:
            for side in sessions.values():
                side.close()
    assert "grant is not signed by the server key" in message


# -- grants edited after signing ------------------------------------------------------


def _set(field: str, value: Callable[[Any], Any]) -> Callable[[dict[str, Any]], None]:
    def edit(reply: dict[str, Any]) -> None:
        assert field in reply["grant"], f"grant has no {field!r}: {sorted(reply['grant'])}"
        reply["grant"][field] = value(reply["grant"][field])

    return edit


def _add_field(reply: dict[str, Any]) -> None:
    reply["grant"]["seats"] = 1000


def _drop_field(reply: dict[str, Any]) -> None:
    del reply["grant"]["lease_timeout"]


def _signed_by_another_key(reply: dict[str, Any]) -> None:
    _sign_batch(Ed25519PrivateKey.generate(), reply, reply["batch"])


def _batch_emptied(reply: dict[str, Any]) -> None:
    reply["batch"] = []


def _batch_without_this_grant(reply: dict[str, Any]) -> None:
    mine = trust.grant_digest(reply["grant"])
    reply["batch"] = [b64u_encode(os.urandom(32)) if d == mine else d for d in reply["batch"]]


# The integration suite already edits lease_timeout, grace, version, user, the seat
# count of the FEATURE line and drops the signature; these are the other fields, and
# the batch of grant digests the signature covers.
EDITED = "grant is not in the signed batch"
GRANT_EDITS = {
    "heartbeat_interval": (_set("heartbeat_interval", lambda v: 3600), EDITED),
    "time": (_set("time", lambda v: v + 1), EDITED),
    "key": (_set("key", lambda v: b64u_encode(os.urandom(32))), EDITED),
    "lease": (_set("lease", lambda v: os.urandom(16).hex()), EDITED),
    "host": (_set("host", lambda v: "elsewhere"), EDITED),
    "display": (_set("display", lambda v: ":99"), EDITED),
    "pid": (_set("pid", lambda v: v + 1), EDITED),
    "project": (_set("project", lambda v: "other-project"), EDITED),
    "line": (_set("line", lambda v: "netmap-v6"), EDITED),
    "nonce": (_set("nonce", lambda v: os.urandom(16).hex()), EDITED),
    "hostid": (_set("hostid", lambda v: "mac=de:ad:be:ef:00:01"), EDITED),
    "borrow_until": (_set("borrow_until", lambda v: 2**40), EDITED),
    "extra-field": (_add_field, "missing or extra fields"),
    "missing-field": (_drop_field, "missing or extra fields"),
    "signed-by-another-key": (_signed_by_another_key, "grant is not signed by the server key"),
    "batch-emptied": (_batch_emptied, "no valid batch"),
    "batch-without-this-grant": (_batch_without_this_grant, EDITED),
}


@pytest.mark.parametrize("name", list(GRANT_EDITS))
def test_grant_field_edited_after_signing(genuine: Kit, name: str) -> None:
    edit, why = GRANT_EDITS[name]
    with Mitm(genuine.port, on_reply=_on_grant(edit)) as mitm:
        message = _refused(genuine, mitm.servers)
        assert not mitm.errors, mitm.errors
    assert why in message


def _edit_line(old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def edit(reply: dict[str, Any]) -> None:
        assert old in reply["feature_line"], reply["feature_line"]
        reply["feature_line"] = reply["feature_line"].replace(old, new)

    return edit


def _genuine_line(kit: Kit, line_id: str) -> Callable[[dict[str, Any]], None]:
    def edit(reply: dict[str, Any]) -> None:
        reply["feature_line"] = next(
            line for line in kit.license.read_text().splitlines() if f"id={line_id}" in line
        )

    return edit


def _line_of_another_vendor(reply: dict[str, Any]) -> None:
    _, fields = licensefile.lines.tokenize(reply["feature_line"])
    fields.pop("sig")
    reply["feature_line"] = licensefile.sign_line(Ed25519PrivateKey.generate(), "FEATURE", fields)


FEATURE_LINE_EDITS = {
    "seats-uncounted": (_edit_line("seats=100", "seats=uncounted"), "not signed by the vendor"),
    "version-99": (_edit_line("version=5.0", "version=99.0"), "not signed by the vendor"),
    "expires-edited": (
        _edit_line("expires=permanent", "expires=2999-12-31"),
        "not signed by the vendor",
    ),
    "another-genuine-line": (None, "not the one the grant draws from"),
    "genuine-line-of-another-feature": (None, "not the one the grant draws from"),
    "another-vendor": (_line_of_another_vendor, "not signed by the vendor"),
}


@pytest.mark.parametrize("name", list(FEATURE_LINE_EDITS))
def test_feature_line_of_a_grant_edited_or_swapped(genuine: Kit, name: str) -> None:
    edit, why = FEATURE_LINE_EDITS[name]
    if name == "another-genuine-line":
        edit = _genuine_line(genuine, "netmap-v6")  # a bigger, genuine line of the file
    elif name == "genuine-line-of-another-feature":
        edit = _genuine_line(genuine, "timed-1")
    assert edit is not None
    with Mitm(genuine.port, on_reply=_on_grant(edit)) as mitm:
        message = _refused(genuine, mitm.servers)
        assert not mitm.errors, mitm.errors
    assert why in message


# -- an insider with the genuine server key: still bound by time and the vendor's dates -----


def _expired_line(kit: Kit) -> Callable[[dict[str, Any]], None]:
    """Swap in a genuine vendor-signed line of the same id that expired long ago."""
    old = kit.feature_line(
        "netmap", seats=100, id="netmap-main", start="2020-01-01", expires="2020-12-31"
    )

    def edit(reply: dict[str, Any]) -> None:
        reply["feature_line"] = old
        _resign_grant(kit, reply)

    return edit


def _future_line(kit: Kit) -> Callable[[dict[str, Any]], None]:
    later = kit.feature_line(
        "netmap", seats=100, id="netmap-main", start=_today(10), expires=_today(40)
    )

    def edit(reply: dict[str, Any]) -> None:
        reply["feature_line"] = later
        _resign_grant(kit, reply)

    return edit


def _shift_time(kit: Kit, days: float) -> Callable[[dict[str, Any]], None]:
    def edit(reply: dict[str, Any]) -> None:
        reply["grant"]["time"] += int(days * DAY_MS)
        _resign_grant(kit, reply)

    return edit


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("grant-two-days-before-the-hello", "outside this session"),
        ("grant-two-days-after-the-hello", "outside this session"),
        ("grant-a-year-after-the-hello", "outside this session"),
        ("feature-line-expired-at-grant-time", "not valid on the grant's date"),
        ("feature-line-not-yet-valid-at-grant-time", "not valid on the grant's date"),
    ],
)
def test_grant_resigned_with_the_genuine_server_key_but_out_of_date(
    genuine: Kit, name: str, why: str
) -> None:
    edit = {
        "grant-two-days-before-the-hello": _shift_time(genuine, -2),
        "grant-two-days-after-the-hello": _shift_time(genuine, 2),
        "grant-a-year-after-the-hello": _shift_time(genuine, 365),
        "feature-line-expired-at-grant-time": _expired_line(genuine),
        "feature-line-not-yet-valid-at-grant-time": _future_line(genuine),
    }[name]
    with Mitm(genuine.port, on_reply=_on_grant(edit)) as mitm:
        message = _refused(genuine, mitm.servers)
        assert not mitm.errors, mitm.errors
    assert why in message


def test_resigned_but_untouched_grant_is_accepted(genuine: Kit) -> None:
    """Control for the tests above: re-signing alone changes nothing, so each refusal
    there is caused by its edit."""
    edit = _shift_time(genuine, 0)
    with Mitm(genuine.port, on_reply=_on_grant(edit)) as mitm:
        client = _client(genuine, mitm.servers)
        try:
            lease = client.checkout("netmap", "5.0", heartbeat=False)
            lease.checkin()
        finally:
            client.close()
        assert mitm.ops() == ["hello", "checkout", "checkin"]


# -- the trust functions themselves, with replies captured from the genuine server --------


@pytest.fixture(scope="module")
def captured(genuine: Kit) -> dict[str, Any]:
    """A genuine hello and checkout reply, with the nonce and request that made them."""
    with RawSession(genuine.port) as session:
        hello = session.hello()
        request = {
            "op": "checkout",
            "feature": "netmap",
            "version": "5.0",
            "user": "ann",
            "host": "ws1",
            "display": ":0",
            "pid": 4242,
            "project": "p",
        }
        reply = session.request(dict(request))
        assert reply is not None and reply["ok"], reply
        session.request(
            {
                "op": "checkin",
                "lease": reply["grant"]["lease"],
                "token": trust.lease_token(
                    b64u_decode(reply["grant"]["key"]), reply["grant"]["lease"]
                ),
            }
        )
    assert hello is not None and hello["ok"]
    return {
        "nonce": session.nonce,
        "hello": hello,
        "reply": reply,
        "request": {**request, "hostid": reply["grant"].get("hostid", "")},
    }


def _copy(obj: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(obj))


def _verify_hello(
    kit: Kit, captured: dict[str, Any], hello: dict[str, Any], nonce: str | None = None
) -> Any:
    return trust.verify_hello(
        hello, nonce or captured["nonce"], keys.read_public(kit.vendor_pub), PROTOCOL
    )


def _verify_grant(
    kit: Kit, captured: dict[str, Any], reply: dict[str, Any], **overrides: Any
) -> Any:
    args: dict[str, Any] = {
        "nonce": captured["nonce"],
        "server_key": _server_key(kit).public_key(),
        "vendor_key": keys.read_public(kit.vendor_pub),
        "request": captured["request"],
        "hello_time_ms": captured["hello"]["time"],
    }
    args.update(overrides)
    return trust.verify_grant(reply, **args)


def test_captured_genuine_replies_verify(genuine: Kit, captured: dict[str, Any]) -> None:
    _verify_hello(genuine, captured, _copy(captured["hello"]))
    grant = _verify_grant(genuine, captured, _copy(captured["reply"]))
    assert grant["feature"] == "netmap"


def _hello_protocol_0(kit: Kit, hello: dict[str, Any], nonce: str) -> None:
    hello["protocol"] = 0
    _resign_hello(_server_key(kit), hello, nonce)


def _hello_time_text(kit: Kit, hello: dict[str, Any], nonce: str) -> None:
    hello["time"] = str(hello["time"])
    _resign_hello(_server_key(kit), hello, nonce)


def _hello_other_line(kit: Kit, hello: dict[str, Any], nonce: str) -> None:
    hello["server_line"] = _other_server_line(kit)[1]
    _resign_hello(_server_key(kit), hello, nonce)


def _hello_grant_context(kit: Kit, hello: dict[str, Any], nonce: str) -> None:
    """The hello fields signed under the grant context: a signature of another kind."""
    fields = {
        "nonce": nonce,
        "protocol": hello["protocol"],
        "server_key": hello["server_key"],
        "time": hello["time"],
    }
    hello["sig"] = b64u_encode(_server_key(kit).sign(trust.grant_payload(fields)))


def _hello_for_another_nonce(kit: Kit, hello: dict[str, Any], nonce: str) -> None:
    _resign_hello(_server_key(kit), hello, os.urandom(16).hex())


HELLO_FORGERIES = {
    "protocol-0-signed-by-the-server": (_hello_protocol_0, "protocol 0"),
    "time-as-text": (_hello_time_text, "server time"),
    "server-line-of-another-key": (_hello_other_line, "binds another server key"),
    "signature-of-another-context": (_hello_grant_context, "not signed by the server key"),
    "signed-for-another-nonce": (_hello_for_another_nonce, "not signed by the server key"),
}


@pytest.mark.parametrize("name", list(HELLO_FORGERIES))
def test_verify_hello_refuses_forged_hellos_signed_by_real_keys(
    genuine: Kit, captured: dict[str, Any], name: str
) -> None:
    forge, why = HELLO_FORGERIES[name]
    hello = _copy(captured["hello"])
    forge(genuine, hello, captured["nonce"])
    with pytest.raises(trust.Untrusted, match=why):
        _verify_hello(genuine, captured, hello)


def _grant_terms(**terms: Any) -> Callable[[Kit, dict[str, Any]], None]:
    def forge(kit: Kit, reply: dict[str, Any]) -> None:
        reply["grant"].update(terms)
        _resign_grant(kit, reply)

    return forge


def _grant_shift(days: float) -> Callable[[Kit, dict[str, Any]], None]:
    def forge(kit: Kit, reply: dict[str, Any]) -> None:
        _shift_time(kit, days)(reply)

    return forge


def _grant_line(**fields: Any) -> Callable[[Kit, dict[str, Any]], None]:
    def forge(kit: Kit, reply: dict[str, Any]) -> None:
        line = {"seats": 100, "id": reply["grant"]["line"], **fields}
        reply["feature_line"] = kit.feature_line("netmap", **line)
        _resign_grant(kit, reply)

    return forge


def _grant_seats_edited(kit: Kit, reply: dict[str, Any]) -> None:
    reply["feature_line"] = reply["feature_line"].replace("seats=100", "seats=1000000")
    _resign_grant(kit, reply)


def _grant_under_hello_context(kit: Kit, reply: dict[str, Any]) -> None:
    batch = [trust.grant_digest(reply["grant"])]
    payload = trust.HELLO_CONTEXT + trust.batch_payload(batch)[len(trust.BATCH_CONTEXT) :]
    reply["batch"] = batch
    reply["sig"] = b64u_encode(_server_key(kit).sign(payload))


def _grant_signed_alone(kit: Kit, reply: dict[str, Any]) -> None:
    """The grant itself signed (no batch): a signature over the wrong bytes."""
    reply["sig"] = b64u_encode(_server_key(kit).sign(trust.grant_payload(reply["grant"])))


def _batch(make: Callable[[str], list[Any]]) -> Callable[[Kit, dict[str, Any]], None]:
    def forge(kit: Kit, reply: dict[str, Any]) -> None:
        _sign_batch(_server_key(kit), reply, make(trust.grant_digest(reply["grant"])))

    return forge


def _other_digests(count: int) -> list[str]:
    return [b64u_encode(os.urandom(32)) for _ in range(count)]


GRANT_FORGERIES = {
    "another-nonce": (_grant_terms(nonce="0" * 32), "nonce differs"),
    "another-user": (_grant_terms(user="mallory"), "not the one requested"),
    "seat-count-edited-in-the-feature-line": (_grant_seats_edited, "not signed by the vendor"),
    "two-days-before-the-hello": (_grant_shift(-2), "outside this session"),
    "two-days-after-the-hello": (_grant_shift(2), "outside this session"),
    "feature-line-expired": (
        _grant_line(start="2020-01-01", expires="2020-12-31"),
        "not valid on the grant's date",
    ),
    "feature-line-not-yet-valid": (
        _grant_line(start="2999-01-01", expires="2999-12-31"),
        "not valid on the grant's date",
    ),
    "feature-line-licenses-a-lower-version": (
        _grant_line(version="4.9"),
        "does not license the granted version",
    ),
    "interval-not-below-timeout": (
        _grant_terms(heartbeat_interval=30, lease_timeout=30),
        "do not make sense",
    ),
    "interval-zero": (_grant_terms(heartbeat_interval=0), "do not make sense"),
    "timeout-as-float": (_grant_terms(lease_timeout=30.5), "not integers"),
    "timeout-as-bool": (_grant_terms(grace=True), "not integers"),
    "signature-of-another-context": (_grant_under_hello_context, "not signed by the server key"),
    "signature-over-the-grant-not-the-batch": (_grant_signed_alone, "not signed by the server"),
    "signed-batch-without-this-grant": (_batch(lambda mine: _other_digests(3)), EDITED),
    "signed-batch-too-long": (
        _batch(lambda mine: [*_other_digests(trust.MAX_BATCH_DIGESTS), mine]),
        "no valid batch",
    ),
    "signed-batch-of-numbers": (_batch(lambda mine: [mine, 7]), "no valid batch"),
    "signed-batch-empty": (_batch(lambda mine: []), "no valid batch"),
}


@pytest.mark.parametrize("name", list(GRANT_FORGERIES))
def test_verify_grant_refuses_forged_grants_signed_by_real_keys(
    genuine: Kit, captured: dict[str, Any], name: str
) -> None:
    forge, why = GRANT_FORGERIES[name]
    reply = _copy(captured["reply"])
    forge(genuine, reply)
    with pytest.raises(trust.Untrusted, match=why):
        _verify_grant(genuine, captured, reply)


@pytest.mark.parametrize("when", [10**20, -(10**20)])
def test_verify_grant_with_a_time_out_of_range_is_untrusted_not_a_crash(
    genuine: Kit, captured: dict[str, Any], when: int
) -> None:
    reply = _copy(captured["reply"])
    reply["grant"]["time"] = when
    _resign_grant(genuine, reply)
    with pytest.raises(trust.Untrusted):
        _verify_grant(genuine, captured, reply, hello_time_ms=when)
