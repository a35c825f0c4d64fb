"""A server that is not the vendor-blessed one cannot grant anything: made-up
answers, stolen lines, replayed conversations, replayed or tampered grants and
servers of another vendor all end in SERVER_NOT_TRUSTED, exit 76 (SPEC §3)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from netmap_lm import LicenseClient, LicenseDenied
from netmap_lm.encoding import b64u_encode
from netmap_lm.licensing import keys, licensefile, trust
from support import Kit, ServerProcess

from ._util import LineStream, in_use, relay, thread_server


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kit]:
    """A genuine server with plenty of seats (untrusted grants are given back best effort)."""
    kit = Kit(tmp_path_factory.mktemp("genuine"))
    kit.write_license([kit.feature_line("netmap", seats=100)])
    with ServerProcess(kit):
        yield kit


def _assert_not_trusted(result: Any) -> None:
    assert result.returncode == 76, (result.stdout, result.stderr)
    report = json.loads(result.stdout)
    assert report == {"ok": False, "reason": "SERVER_NOT_TRUSTED", "message": report["message"]}
    assert "SERVER_NOT_TRUSTED" in result.stderr
    assert "granted" not in result.stdout


def _checkout_via(kit: Kit, servers: str) -> Any:
    return kit.cli("checkout", "netmap", "--server", servers, "--json", timeout=20)


def _nothing_after_the_hello(ops: list[str]) -> None:
    """What a server whose hello does not verify gets: the checkout the client
    sends in the hello's packet, then at most the check-in giving back what
    it granted (docs/security.md, "Checkout with the hello")."""
    assert ops in (["hello"], ["hello", "checkout"], ["hello", "checkout", "checkin"]), ops


# -- forgers -----------------------------------------------------------------------------


class Forger:
    """Answers like a netmap_lm server, signing with keys of its own choice."""

    def __init__(self, kit: Kit, mode: str) -> None:
        self.kit = kit
        self.mode = mode
        self.key = Ed25519PrivateKey.generate()
        self.key_text = keys.public_text(self.key.public_key())
        self.fake_vendor = Ed25519PrivateKey.generate()
        self.requests: list[dict[str, Any]] = []

    def server_fields(self) -> tuple[str, str]:
        """(server_key, server_line) as this forger presents them."""
        genuine_line = self.kit.license.read_text().splitlines()[0]
        if self.mode == "made-up":  # its own key, blessed by its own "vendor"
            line = licensefile.sign_line(
                self.fake_vendor,
                "SERVER",
                {"host": "127.0.0.1", "port": self.kit.port, "key": self.key_text},
            )
            return self.key_text, line
        if self.mode == "stolen-line-own-key":  # genuine SERVER line, another key
            return self.key_text, genuine_line
        if self.mode == "stolen-line-and-key":  # genuine line and key, no private key
            return self.kit.identity.public_text, genuine_line
        raise AssertionError(self.mode)

    def hello(self, request: dict[str, Any]) -> dict[str, Any]:
        server_key, server_line = self.server_fields()
        now = int(time.time() * 1000)
        payload = trust.hello_payload(request["nonce"], 1, server_key, now)
        return {
            "id": request.get("id"),
            "ok": True,
            "server": "netmap_lm",
            "version": "0.1.0",
            "protocol": 1,
            "server_key": server_key,
            "server_line": server_line,
            "time": now,
            "heartbeat_interval": 1,
            "lease_timeout": 4,
            "sig": b64u_encode(self.key.sign(payload)),
        }

    def grant(self, request: dict[str, Any], nonce: str) -> dict[str, Any]:
        line = licensefile.sign_line(
            self.fake_vendor,
            "FEATURE",
            {
                "name": request["feature"],
                "version": "99.0",
                "seats": "uncounted",
                "type": "floating",
                "expires": "permanent",
                "id": "forged-1",
            },
        )
        grant = {
            "lease": os.urandom(16).hex(),
            "feature": request["feature"],
            "version": request["version"],
            "user": request["user"],
            "host": request["host"],
            "display": request["display"],
            "pid": request["pid"],
            "project": request["project"],
            "line": "forged-1",
            "time": int(time.time() * 1000),
            "nonce": nonce,
            "heartbeat_interval": 1,
            "lease_timeout": 4,
            "grace": 0,
            "key": b64u_encode(os.urandom(32)),
            "hostid": request.get("hostid", ""),
            "borrow_until": 0,
        }
        # Exactly the fields a genuine grant has, whatever the protocol adds later.
        grant = {k: v for k, v in grant.items() if k in trust.GRANT_FIELDS}
        grant.update({k: 0 for k in trust.GRANT_FIELDS - set(grant)})
        batch = [trust.grant_digest(grant)]
        sig = b64u_encode(self.key.sign(trust.batch_payload(batch)))
        return {
            "id": request.get("id"),
            "ok": True,
            "grant": grant,
            "batch": batch,
            "sig": sig,
            "feature_line": line,
        }

    def handle(self, stream: LineStream) -> None:
        nonce = ""
        while (request := stream.read_json()) is not None:
            self.requests.append(request)
            op = request.get("op")
            if op == "hello":
                nonce = request["nonce"]
                stream.write_json(self.hello(request))
            elif op == "checkout":
                stream.write_json(self.grant(request, nonce))
            else:  # checkin, heartbeat, status: "sure"
                stream.write_json(
                    {"id": request.get("id"), "ok": True, "lease": request.get("lease")}
                )


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        ("made-up", "vendor"),
        ("stolen-line-own-key", "another server key"),
        ("stolen-line-and-key", "not signed by the server key"),
    ],
)
def test_always_yes_server_is_not_trusted(kit: Kit, mode: str, why: str) -> None:
    kit.write_license()  # the genuine SERVER line a forger may steal; no genuine server runs
    forger = Forger(kit, mode)
    with thread_server(forger.handle) as fake:
        result = _checkout_via(kit, fake.servers)
    _assert_not_trusted(result)
    assert why in json.loads(result.stdout)["message"]
    _nothing_after_the_hello([r["op"] for r in forger.requests])


def test_genuine_hello_relayed_then_forged_grant_is_not_trusted(genuine: Kit) -> None:
    """A man in the middle passes the genuine hello through, then grants by itself."""
    forger = Forger(genuine, "made-up")
    forger.fake_vendor = keys.read_private(genuine.vendor_dir / "vendor.key")  # even that

    def handle(stream: LineStream) -> None:
        upstream = relay(genuine.port)
        reader = upstream.makefile("rb")
        nonce = ""
        try:
            while (line := stream.read()) is not None:
                request = json.loads(line)
                if request.get("op") == "checkout":
                    stream.write_json(forger.grant(request, nonce))
                    continue
                nonce = request.get("nonce", nonce)
                upstream.sendall(line)
                stream.write(reader.readline())
        finally:
            upstream.close()

    before = in_use(genuine)
    with thread_server(handle) as mitm:
        result = _checkout_via(genuine, mitm.servers)
    _assert_not_trusted(result)
    # Everything else about the forged grant is right, even its FEATURE line.
    assert "not signed by the server key" in json.loads(result.stdout)["message"]
    assert in_use(genuine) == before


def test_server_of_another_vendor_is_not_trusted(
    genuine: Kit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real, well-configured netmap_lm server whose license comes from another vendor."""
    other = Kit(tmp_path)
    other.write_license()
    with ServerProcess(other):
        result = _checkout_via(genuine, other.servers)  # client pins genuine's vendor key
        _assert_not_trusted(result)
        message = json.loads(result.stdout)["message"]
        # It names the key it checked against: a wrong key given looks like an impostor.
        assert message.endswith(
            f"the SERVER line is not signed by the vendor key (pinned vendor key: "
            f"{genuine.vendor_pub})"
        ), message
        assert in_use(other) == 0
        for given, named in [
            (str(genuine.vendor_pub), str(genuine.vendor_pub)),
            (genuine.vendor_pub.read_text().split()[-1], "the one given"),  # the key as text
            (None, f"{genuine.vendor_pub} from NETMAP_LM_VENDOR_KEY"),
        ]:
            monkeypatch.setenv("NETMAP_LM_VENDOR_KEY", str(genuine.vendor_pub))
            client = LicenseClient(servers=other.servers, vendor_key=given)
            with pytest.raises(LicenseDenied) as denied:
                client.checkout("netmap", heartbeat=False)
            assert denied.value.message.endswith(f"(pinned vendor key: {named})")
        # The same server is fine for its own vendor's clients.
        assert other.cli("checkout", "netmap").returncode == 0


# -- recording, replaying and tampering proxies -----------------------------------------


def _recording_proxy(port: int, record: list[bytes]) -> Callable[[LineStream], None]:
    def handle(stream: LineStream) -> None:
        upstream = relay(port)
        reader = upstream.makefile("rb")
        try:
            while (line := stream.read()) is not None:
                upstream.sendall(line)
                reply = reader.readline()
                record.append(reply)
                stream.write(reply)
        finally:
            upstream.close()

    return handle


def test_replayed_conversation_is_not_trusted(genuine: Kit) -> None:
    recorded: list[bytes] = []
    with thread_server(_recording_proxy(genuine.port, recorded)) as proxy:
        original = _checkout_via(genuine, proxy.servers)
    assert original.returncode == 0, original.stderr
    assert len(recorded) == 3  # hello, checkout, checkin
    assert json.loads(recorded[1])["grant"]["lease"] == json.loads(original.stdout)["lease"]

    served: list[bytes] = []

    def replay(stream: LineStream) -> None:
        for answer in recorded:  # by position, byte for byte
            if stream.read() is None:
                return
            served.append(answer)
            stream.write(answer)

    with thread_server(replay) as replayer:
        result = _checkout_via(genuine, replayer.servers)
    _assert_not_trusted(result)
    assert served[:1] == recorded[:1]  # the replayed hello, refused: nothing more is believed


def test_replayed_grant_is_not_trusted(genuine: Kit) -> None:
    """The genuine hello of a fresh session, then a grant recorded in an earlier
    session of the same process: everything matches except the nonce."""
    recorded: list[bytes] = []
    with thread_server(_recording_proxy(genuine.port, recorded)) as proxy:
        client = LicenseClient(servers=proxy.servers, vendor_key=str(genuine.vendor_pub))
        lease = client.checkout("netmap", "5.0", heartbeat=False)
        client.close()
    grant_line = recorded[1]
    assert json.loads(grant_line)["grant"]["lease"] == lease.id

    def hybrid(stream: LineStream) -> None:
        upstream = relay(genuine.port)
        reader = upstream.makefile("rb")
        try:
            while (line := stream.read()) is not None:
                if json.loads(line).get("op") == "checkout":
                    stream.write(grant_line)  # same id (2), same terms, old nonce
                    continue
                upstream.sendall(line)
                stream.write(reader.readline())
        finally:
            upstream.close()

    with thread_server(hybrid) as replayer:
        client = LicenseClient(servers=replayer.servers, vendor_key=str(genuine.vendor_pub))
        with pytest.raises(LicenseDenied) as denied:
            client.checkout("netmap", "5.0", heartbeat=False)
        client.close()
    assert denied.value.reason == "SERVER_NOT_TRUSTED"
    assert "nonce" in denied.value.message
    assert denied.value.exit_code == 76


def _set_grant(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def tamper(reply: dict[str, Any]) -> None:
        reply["grant"][field] = value

    return tamper


def _edit_feature_line(reply: dict[str, Any]) -> None:
    reply["feature_line"] = reply["feature_line"].replace("seats=100 ", "seats=1000 ")
    assert "seats=1000 " in reply["feature_line"]


def _drop_sig(reply: dict[str, Any]) -> None:
    del reply["sig"]


def _tamper_and_add_to_batch(reply: dict[str, Any]) -> None:
    """Longer lease terms, with the new grant's digest added to the signed batch."""
    reply["grant"]["lease_timeout"] = 86400
    reply["batch"] = [*reply["batch"], trust.grant_digest(reply["grant"])]


@pytest.mark.parametrize(
    "tamper",
    [
        _set_grant("lease_timeout", 86400),
        _set_grant("grace", 10000),
        _set_grant("version", "9.0"),
        _set_grant("user", "someone-else"),
        _edit_feature_line,
        _drop_sig,
        _tamper_and_add_to_batch,
    ],
    ids=["lease_timeout", "grace", "version", "user", "feature_line", "no-sig", "re-batched"],
)
def test_tampered_grant_is_not_trusted(
    genuine: Kit, tamper: Callable[[dict[str, Any]], None]
) -> None:
    def handle(stream: LineStream) -> None:
        upstream = relay(genuine.port)
        reader = upstream.makefile("rb")
        try:
            while (line := stream.read()) is not None:
                upstream.sendall(line)
                reply = json.loads(reader.readline())
                if json.loads(line).get("op") == "checkout" and reply.get("ok"):
                    tamper(reply)
                stream.write_json(reply)
        finally:
            upstream.close()

    with thread_server(handle) as mitm:
        client = LicenseClient(servers=mitm.servers, vendor_key=str(genuine.vendor_pub))
        try:
            with pytest.raises(LicenseDenied) as denied:
                client.checkout("netmap", "5.0", heartbeat=False)
        finally:
            client.close()
    assert denied.value.reason == "SERVER_NOT_TRUSTED"
    assert denied.value.exit_code == 76


def test_a_lease_token_never_goes_to_a_server_before_its_hello_verifies(genuine: Kit) -> None:
    """Only a checkout rides with the hello.  A check-in (or TCP heartbeat) on a
    new session carries the lease token, the lease's bearer credential: it waits
    until the hello verifies, so a fake server in the list never sees it."""
    from netmap_lm.client.environment import parse_servers

    client = LicenseClient(servers=genuine.servers, vendor_key=str(genuine.vendor_pub))
    lease = client.checkout("netmap", "5.0", heartbeat=False)
    forger = Forger(genuine, "made-up")
    with thread_server(forger.handle) as fake:
        client._drop()  # the session broke; the next request opens a new one ...
        client.servers = parse_servers(fake.servers)  # ... and finds only the fake
        lease.checkin()  # SERVER_NOT_TRUSTED: not an error for a check-in
    assert [r["op"] for r in forger.requests] == ["hello"]
    assert not any("token" in r for r in forger.requests)
    client.servers = parse_servers(genuine.servers)
    client._request({"op": "checkin", "lease": lease.id, "token": lease._token})
    client.close()
