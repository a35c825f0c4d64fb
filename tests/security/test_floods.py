"""Port 1493 under load and abuse (SPEC §5, §8): budgets, timeouts, floods,
the allow list and the clock guard, against real ``netmap-lm serve`` processes
on loopback (the clock test runs the server in-process with an injected wall
clock).  Hostile traffic comes from 127.0.0.2 and up; the genuine client is
always 127.0.0.1, and must be served normally throughout.

Every test is bounded in time and count, and closes what it opened.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import random
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from netmap_lm import LicenseClient, LicenseDenied
from netmap_lm.encoding import b64u_decode
from netmap_lm.licensing import trust
from netmap_lm.protocol import udp
from netmap_lm.server.abuse import MAX_TRACKED
from support import Kit, ServerProcess, wait_for

from ._net import (
    GENUINE,
    InProcessServer,
    RawSession,
    admin_key,
    audit,
    connect_from,
    findings,
    sockets,
    source,
    vm_rss,
)

HANDSHAKE_TIMEOUT = 2.0  # seconds, for the idle-connection test
EOF_SLACK = 8.0  # seconds beyond the handshake timeout for 1,000 closes on a busy 2-core box


def _client(kit: Kit, servers: str | None = None) -> LicenseClient:
    return LicenseClient(
        servers=servers or kit.servers, vendor_key=str(kit.vendor_pub), timeout=10.0
    )


def _timed_checkout(kit: Kit) -> float:
    """Seconds for a complete genuine checkout from 127.0.0.1: connect, hello,
    checkout (durable), checkin."""
    client = _client(kit)
    try:
        start = time.monotonic()
        lease = client.checkout("netmap", "5.0", heartbeat=False)
        lease.checkin()
        return time.monotonic() - start
    finally:
        client.close()


def _refusal(sock: socket.socket, wait: float) -> dict[str, Any] | None:
    """The one-line refusal the server sends before closing, if it sends one in time."""
    sock.settimeout(wait)
    data = b""
    try:
        while b"\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    if b"\n" not in data:
        return None
    return json.loads(data.split(b"\n", 1)[0])


def _ready_lines(conns: list[socket.socket], wait: float) -> dict[int, bytes]:
    """What each connection received within ``wait`` seconds, by index, for those that
    received anything; the rest stay silent (accepted and waiting for hello)."""
    selector = selectors.DefaultSelector()
    for index, sock in enumerate(conns):
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, index)
    got: dict[int, bytes] = {}
    deadline = time.monotonic() + wait
    try:
        while (left := deadline - time.monotonic()) > 0 and selector.get_map():
            for key, _ in selector.select(min(left, 0.2)):
                index = key.data
                try:
                    chunk = conns[index].recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    chunk = b""
                got[index] = got.get(index, b"") + chunk
                if not chunk or b"\n" in got[index]:
                    selector.unregister(conns[index])
    finally:
        selector.close()
    return got


# -- idle connections and a slow loris ------------------------------------------------


class SlowLoris(threading.Thread):
    """Sends a hello one byte a second; notes when the server closes on it."""

    def __init__(self, port: int, address: str) -> None:
        super().__init__(daemon=True)
        self.sock = connect_from(address, port)
        self.hello = (
            json.dumps(
                {"id": 1, "op": "hello", "protocol": 1, "nonce": os.urandom(16).hex()}
            ).encode()
            + b"\n"
        )
        self.started = time.monotonic()
        self.sent = 0
        self.closed_after: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        self.sock.settimeout(1.0)
        try:
            while self.sent < len(self.hello) and not self.stop.is_set():
                try:
                    self.sock.sendall(self.hello[self.sent : self.sent + 1])
                    self.sent += 1
                    if not self.sock.recv(4096):  # the timeout of recv paces the bytes
                        break
                    while self.sock.recv(4096):  # an error line, then EOF
                        pass
                    break
                except TimeoutError:
                    continue
                except OSError:
                    break
            if not self.stop.is_set():
                self.closed_after = time.monotonic() - self.started
        finally:
            self.sock.close()


def test_idle_connections_and_a_slow_loris_do_not_delay_a_genuine_checkout(kit: Kit) -> None:
    kit.write_license()
    with (
        ServerProcess(kit, "--handshake-timeout", str(HANDSHAKE_TIMEOUT)) as server,
        sockets() as idle,
    ):
        baseline = min(_timed_checkout(kit) for _ in range(3))
        opened = time.monotonic()
        for i in range(1000):  # 250 from each of four addresses: under the 256 per address
            idle.append(connect_from(source(2 + i % 4), kit.port))
        loris = SlowLoris(kit.port, source(6))
        loris.start()
        try:
            # 3 baseline checkouts, 1,000 idle, the loris and the first audit itself.
            assert wait_for(lambda: audit(kit)["counters"].get("connections", 0) >= 1005, 10)
            busy = _timed_checkout(kit)
            assert busy <= 5 * baseline + 0.5, (busy, baseline)

            # Every idle connection is told and closed once the handshake timeout is up.
            got = _ready_lines(idle, HANDSHAKE_TIMEOUT + EOF_SLACK - (time.monotonic() - opened))
            told = [json.loads(data.split(b"\n", 1)[0]) for data in got.values() if data]
            assert len(got) == len(idle), f"{len(idle) - len(got)} idle connections still open"
            assert len(told) >= 990  # each is told why before the close (a few may RST)
            assert all(
                t["reason"] == "PROTOCOL_ERROR" and "no hello in time" in t["message"] for t in told
            )
            loris.join(HANDSHAKE_TIMEOUT + EOF_SLACK)
            assert loris.closed_after is not None, "slow loris still connected"
            assert loris.closed_after <= HANDSHAKE_TIMEOUT + EOF_SLACK
            assert loris.sent < len(loris.hello)
        finally:
            loris.stop.set()
            loris.join(5)
        counters = audit(kit)["counters"]
        assert counters["connections_timed_out"] >= 1001
        assert _timed_checkout(kit) <= 5 * baseline + 0.5
        assert server.proc is not None and server.proc.poll() is None


# -- connection budgets per address --------------------------------------------------------


def test_connections_held_open_by_one_address_are_limited_and_reported(
    kit: Kit, server: ServerProcess
) -> None:
    flood = source(7)
    with sockets() as conns:
        for _ in range(400):
            conns.append(connect_from(flood, kit.port))
        assert _timed_checkout(kit) < 5.0  # 127.0.0.1 is served meanwhile
        got = _ready_lines(conns, 2.0)
        refusals = [json.loads(data.split(b"\n", 1)[0]) for data in got.values() if data]
    assert len(refusals) >= 400 - 256, len(refusals)
    assert len(conns) - len(got) <= 256  # at most the budget was accepted
    for refusal in refusals:
        assert refusal["ok"] is False and refusal["id"] is None
        assert refusal["reason"] == "RATE_LIMITED"
        assert f"{flood} has 256 connections open" in refusal["message"]

    result = kit.cli("audit", "--json", "--state", str(kit.state))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    (finding,) = [f for f in findings(report, "connection_limited") if f["address"] == flood]
    assert finding["count"] >= 1 and "256 connections" in finding["detail"]
    assert report["counters"]["connections_refused"] >= 400 - 256
    assert not [f for f in report["findings"] if f["address"] == GENUINE]


def test_one_address_opening_connections_in_a_loop_is_limited(kit: Kit) -> None:
    """With no cap on open connections per address, the connect rate (burst 500,
    then 100/s) still stops a loop of connects; other addresses are unaffected."""
    kit.write_license()
    flood = source(8)
    with ServerProcess(kit, "--max-connections-per-address", "5000"), sockets() as conns:
        start = time.monotonic()
        for _ in range(900):
            conns.append(connect_from(flood, kit.port))
        took = time.monotonic() - start
        assert _timed_checkout(kit) < 5.0
        got = _ready_lines(conns, 2.0)
        refusals = [json.loads(data.split(b"\n", 1)[0]) for data in got.values() if data]
        # Tokens: a burst of 500, then 100/s while the loop ran (1 s slack for the server).
        assert len(refusals) >= 900 - 500 - 100 * (took + 1.0), (len(refusals), took)
        assert refusals, "no connection of the loop was refused"
        assert all(
            r["reason"] == "RATE_LIMITED" and "faster than 100/s" in r["message"] for r in refusals
        )
        report = audit(kit)
        assert [f for f in findings(report, "connection_limited") if f["address"] == flood]
        assert report["counters"]["connections_refused"] >= len(refusals)


# -- a client that never reads ------------------------------------------------------


def test_a_client_that_never_reads_cannot_grow_server_memory(kit: Kit) -> None:
    """200,000 pipelined status requests, replies never read.  Without backpressure
    the replies would take ~150 MB; the server stops reading (pause_writing) or
    drops the connection (MAX_OUTPUT_BYTES), and serves others meanwhile."""
    kit.write_license()
    with ServerProcess(kit, "--rate-limit", "0") as server:
        assert server.proc is not None
        pid = server.proc.pid
        for _ in range(3):
            _timed_checkout(kit)
        before = vm_rss(pid)
        peak = [before]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                with contextlib.suppress(OSError, AssertionError):
                    peak.append(vm_rss(pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        flood = RawSession(kit.port, source(9))
        try:
            assert flood.hello() is not None
            payload = b"".join(b'{"id":%d,"op":"status"}\n' % i for i in range(200_000))
            flood.sock.setblocking(False)
            sent, last_progress, served_meanwhile, dropped = 0, time.monotonic(), None, False
            deadline = time.monotonic() + 20
            while sent < len(payload) and time.monotonic() < deadline:
                try:
                    n = flood.sock.send(payload[sent : sent + 65536])
                    sent += n
                    last_progress = time.monotonic()
                except BlockingIOError:
                    time.sleep(0.01)
                except OSError:  # reset: the server dropped the connection
                    dropped = True
                    break
                if served_meanwhile is None and sent > 1 << 20:
                    served_meanwhile = _timed_checkout(kit)
                if time.monotonic() - last_progress > 2.0:  # the server stopped reading
                    break
            if served_meanwhile is None:
                served_meanwhile = _timed_checkout(kit)
            assert served_meanwhile < 5.0
            time.sleep(0.5)  # whatever the server still does with what it read
            grown = max(peak) - before
            assert grown < 64 << 20, f"server memory grew by {grown >> 20} MiB"
            counters = audit(kit)["counters"]
            print(
                f"sent {sent} of {len(payload)} bytes; dropped={dropped}; grown "
                f"{grown >> 20} MiB; not_reading={counters.get('connections_not_reading', 0)}"
            )
            assert _timed_checkout(kit) < 5.0
        finally:
            stop.set()
            sampler.join(5)
            flood.close()
        assert server.proc.poll() is None


# -- the request rate ------------------------------------------------------------------


@pytest.fixture(scope="module")
def rate_limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kit]:
    """A server with --rate-limit 50 (requests per second per address)."""
    kit = Kit(tmp_path_factory.mktemp("rate"))
    kit.write_license()
    with ServerProcess(kit, "--rate-limit", "50"):
        yield kit


def _pipeline(session: RawSession, lines: bytes, wait: float = 15.0) -> tuple[list[dict], bool]:
    """Send ``lines`` from a thread while reading every reply; (replies, closed)."""

    def send() -> None:
        with contextlib.suppress(OSError):
            session.sock.sendall(lines)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    replies: list[dict] = []
    closed = False
    session.sock.settimeout(2.0)
    deadline = time.monotonic() + wait
    expected = lines.count(b"\n")
    try:
        while time.monotonic() < deadline and len(replies) < expected:
            reply = session.read()
            if reply is None:
                closed = True
                break
            replies.append(reply)
    except TimeoutError:
        pass
    sender.join(5)
    return replies, closed


def _requests(count: int, template: bytes = b'{"id":%d,"op":"status","feature":"none"}\n') -> bytes:
    return b"".join(template % i for i in range(1, count + 1))


def test_request_flood_gets_rate_limited_and_closed(rate_limited: Kit) -> None:
    """A pipelining flooder is cut off long before its 12,000 requests are answered
    (it may not read the RATE_LIMITED line: the close with its requests unread makes
    the kernel send a reset); a client sending one request after the other as fast
    as it can reads RATE_LIMITED, then the close."""
    kit = rate_limited
    pipeliner, sprinter = source(10), source(13)
    with RawSession(kit.port, pipeliner) as session:
        assert session.hello() is not None
        replies, closed = _pipeline(session, _requests(12_000))
    assert closed, f"{len(replies)} replies and the connection is still open"
    assert len(replies) < 12_000
    assert {r["reason"] for r in replies} <= {"NO_SUCH_FEATURE", "RATE_LIMITED"}

    with RawSession(kit.port, sprinter) as session:
        assert session.hello() is not None
        session.sock.settimeout(5.0)
        start = time.monotonic()
        for count in range(1, 20_001):  # the burst (5,000) plus what refills meanwhile
            reply = session.request({"op": "status", "feature": "none"})
            assert reply is not None, f"closed without a reason after {count} requests"
            if reply["reason"] == "RATE_LIMITED":
                break
            assert reply["reason"] == "NO_SUCH_FEATURE"
        rate = count / (time.monotonic() - start)
        assert reply["reason"] == "RATE_LIMITED", f"{count} requests at {rate:.0f}/s"
        assert reply["id"] == session._next and "slow down" in reply["message"]
        assert session.read() is None  # and closed
    assert rate > 50

    # Another address is unaffected.
    assert _timed_checkout(kit) < 5.0
    report = audit(kit)
    limited = {f["address"] for f in findings(report, "rate_limited")}
    assert {pipeliner, sprinter} <= limited
    assert report["counters"]["requests_rate_limited"] >= 2
    assert not [f for f in report["findings"] if f["address"] == GENUINE]


def test_rate_limit_50_stops_a_burst_of_a_thousand_requests(rate_limited: Kit) -> None:
    with RawSession(rate_limited.port, source(11)) as session:
        assert session.hello() is not None
        replies, _ = _pipeline(session, _requests(1000))
    assert any(r.get("reason") == "RATE_LIMITED" for r in replies)


def test_invalid_requests_count_against_the_rate_limit(rate_limited: Kit) -> None:
    with RawSession(rate_limited.port, source(12)) as session:
        assert session.hello() is not None
        replies, closed = _pipeline(session, _requests(12_000, b'{"id":%d,"op":"nope"}\n'))
    reasons = {r.get("reason") for r in replies}
    assert "RATE_LIMITED" in reasons, f"{len(replies)} replies {reasons}; closed={closed}"


# -- forged UDP heartbeats -------------------------------------------------------------


def test_udp_flood_gets_no_answer_and_changes_no_lease(kit: Kit) -> None:
    """10,000 forged datagrams over ~5.5 s, longer than the 4 s lease timeout, while a
    genuine lease heartbeats over UDP through it all."""
    kit.write_license([kit.feature_line("netmap", seats=10)])
    with ServerProcess(kit, heartbeat_interval=1.0, lease_timeout=4.0) as server:
        client = _client(kit)
        capture = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
        try:
            lease = client.checkout("netmap", "5.0")  # heartbeats every second
            victim = client.checkout("netmap", "5.0", heartbeat=False)
            assert wait_for(lambda: lease.heartbeats_udp >= 1, 5)
            # A genuine datagram of `victim`, captured on the wire after the server took it.
            key = b64u_decode(victim.grant["key"])
            captured = udp.pack(udp.HEARTBEAT, victim.id, 10**9, key)
            capture.settimeout(2)
            capture.sendto(captured, ("127.0.0.1", kit.port))
            assert udp.authentic(capture.recv(100), key)
            # Genuine datagrams of `lease` it sent earlier (sequence numbers now stale).
            floor = lease._seq - 1
            stale = [udp.pack(udp.HEARTBEAT, lease.id, floor - i, lease._key) for i in range(1000)]
            rng = random.Random(1493)
            forged: list[bytes] = []
            forged += [rng.randbytes(rng.randrange(0, 1400)) for _ in range(3000)]
            forged += [
                udp.MAGIC
                + bytes([udp.HEARTBEAT])
                + bytes.fromhex(lease.id)
                + rng.randbytes(8 + udp.MAC_BYTES)
                for _ in range(3000)
            ]
            forged += [
                udp.pack(udp.HEARTBEAT, os.urandom(16).hex(), rng.randrange(2**64), os.urandom(32))
                for _ in range(1000)
            ]
            forged += [captured] * 2000 + stale
            rng.shuffle(forged)
            assert len(forged) == 10_000
            before = {x["lease"] for x in client.status()["features"][0]["leases"]}
            assert before == {lease.id, victim.id}
            udp_before = lease.heartbeats_udp

            for index, sock in enumerate(senders):
                sock.bind((source(20 + index), 0))
                sock.setblocking(False)
            start = time.monotonic()
            for batch in range(100):  # 100 datagrams every 55 ms: ~5.5 s
                for i, datagram in enumerate(forged[batch * 100 : (batch + 1) * 100]):
                    with contextlib.suppress(BlockingIOError):
                        senders[i % 3].sendto(datagram, ("127.0.0.1", kit.port))
                time.sleep(max(0.0, start + (batch + 1) * 0.055 - time.monotonic()))
            assert time.monotonic() - start > 4.0
            time.sleep(0.5)

            answers = 0
            for sock in senders:
                with contextlib.suppress(BlockingIOError):
                    while sock.recv(100):
                        answers += 1
            assert answers == 0
            assert lease.lost is None
            assert lease.heartbeats_udp > udp_before, (udp_before, lease.heartbeats_udp)
            # The genuine lease is held; the victim's replayed datagram kept nothing alive:
            # it timed out like any lease nobody heartbeats.
            after = {x["lease"] for x in client.status()["features"][0]["leases"]}
            assert after == {lease.id}
            report = audit(kit)
            counters = report["counters"]
            # Each kind counted (a few datagrams may be dropped by a busy kernel).  The
            # victim's captured datagram counts as replayed while the lease lives and
            # as an unknown lease once it has timed out.
            assert counters["udp_malformed"] >= 2700
            assert counters["udp_bad_mac"] >= 2700
            assert counters["udp_replayed"] >= 1500
            assert counters["udp_replayed"] + counters["udp_unknown_lease"] >= 0.9 * 4000
            assert (
                sum(
                    counters[k]
                    for k in ("udp_malformed", "udp_bad_mac", "udp_replayed", "udp_unknown_lease")
                )
                >= 9500
            )
            assert {f["address"] for f in findings(report, "bad_mac")} <= {
                source(20),
                source(21),
                source(22),
            }
            assert findings(report, "bad_mac") and findings(report, "unknown_lease")
        finally:
            for sock in [capture, *senders]:
                sock.close()
            client.close()
        assert server.proc is not None and server.proc.poll() is None


def test_datagrams_from_many_source_addresses_cannot_grow_server_memory(kit: Kit) -> None:
    kit.write_license()
    with ServerProcess(kit) as server:
        assert server.proc is not None
        time.sleep(0.3)
        before = vm_rss(server.proc.pid)
        datagram = udp.pack(udp.HEARTBEAT, "00" * 16, 1, b"k" * 32)  # an unknown lease
        sent = 0
        for b in range(256):  # 127.2.b.c: 65,024 distinct sources, one datagram each
            for c in range(1, 255):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    sock.bind((f"127.2.{b}.{c}", 0))
                    sock.sendto(datagram, ("127.0.0.1", kit.port))
                sent += 1
            if b % 8 == 7:
                time.sleep(0.05)  # let a busy machine's server drain its socket buffer
        time.sleep(1.0)
        counters = audit(kit)["counters"]
        # UDP may drop some on a loaded machine; what matters is that far more
        # sources reached the server than the monitor may track at once.
        assert counters["udp_unknown_lease"] >= 3 * MAX_TRACKED, counters
        assert sent > 6 * MAX_TRACKED
        grown = vm_rss(server.proc.pid) - before
        assert grown < 16 << 20, f"{sent} sources grew server memory by {grown >> 20} MiB"


# -- the allow list -----------------------------------------------------------------------


def test_allow_list_refuses_and_counts_other_networks(kit: Kit) -> None:
    """--allow 127.0.0.2/32 --allow 10.0.0.0/8: 127.0.0.1 is outside, refused with
    NOT_AUTHORIZED by the server itself (TCP) or ignored (UDP); 127.0.0.2 is served."""
    kit.write_license()
    allowed = source(2)
    with ServerProcess(kit, "--allow", "127.0.0.2/32", "--allow", "10.0.0.0/8"):
        for _ in range(12):
            sock = connect_from(GENUINE, kit.port)
            try:
                refusal = _refusal(sock, 3.0)
                assert refusal is not None
                assert (refusal["ok"], refusal["reason"]) == (False, "NOT_AUTHORIZED")
                assert f"{GENUINE} is not in the server's allow list" in refusal["message"]
                assert sock.recv(100) == b""
            finally:
                sock.close()
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.settimeout(0.5)
            probe.sendto(udp.pack(udp.HEARTBEAT, "00" * 16, 1, b"k" * 32), ("127.0.0.1", kit.port))
            with pytest.raises(TimeoutError):
                probe.recv(100)
        finally:
            probe.close()

        with RawSession(kit.port, allowed) as session:  # an allowed client is served
            assert session.hello() is not None
            reply = session.request(
                {
                    "op": "checkout",
                    "feature": "netmap",
                    "version": "5.0",
                    "user": "ann",
                    "host": "ws2",
                }
            )
            assert reply is not None and reply["ok"] is True, reply
            grant = reply["grant"]
            token = trust.lease_token(b64u_decode(grant["key"]), grant["lease"])
            reply = session.request({"op": "checkin", "lease": grant["lease"], "token": token})
            assert reply is not None and reply["ok"] is True
            reply = session.admin("audit", admin_key(kit))
        assert reply is not None and reply["ok"], reply
        counters = reply["counters"]
        assert 12 <= counters["connections_not_allowed"] <= 13  # + ServerProcess's probe
        assert counters["udp_not_allowed"] == 1
        (finding,) = findings(reply, "not_allowed")
        assert finding["address"] == GENUINE


def test_cli_outside_the_allow_list_exits_77_not_authorized(kit: Kit) -> None:
    kit.write_license()
    with ServerProcess(kit, "--allow", "10.0.0.0/8"):
        result = kit.cli("checkout", "netmap", "--json")
    assert json.loads(result.stdout)["reason"] == "NOT_AUTHORIZED", result.stdout
    assert result.returncode == 77
    assert "NOT_AUTHORIZED" in result.stderr


# -- the clock set back ---------------------------------------------------------------


def test_clock_set_back_two_days_refuses_time_limited_features(kit: Kit) -> None:
    """The server keeps the latest time it has seen (saved at stop() and every 60 s).
    Started again with the clock two days behind, a feature with an expiry date is
    refused with CLOCK_TAMPERED, a permanent one is still granted, and status says so;
    with the clock right again, everything is granted."""
    later = datetime.datetime.now(datetime.UTC).date() + datetime.timedelta(days=30)
    kit.write_license(
        [
            kit.feature_line("netmap", seats=3, expires="permanent"),
            kit.feature_line("timed", seats=3, expires=later.isoformat()),
        ]
    )

    def checkout_all(servers: str) -> dict[str, str]:
        outcome: dict[str, str] = {}
        client = _client(kit, servers)
        try:
            for feature in ("netmap", "timed"):
                try:
                    client.checkout(feature, "5.0", heartbeat=False).checkin()
                    outcome[feature] = "granted"
                except LicenseDenied as exc:
                    outcome[feature] = exc.reason
            outcome["clock_tampered"] = client.status()["server"]["clock_tampered"]
        finally:
            client.close()
        return outcome

    with InProcessServer(kit, wall=time.time, udp=False) as first:
        assert checkout_all(first.servers) == {
            "netmap": "granted",
            "timed": "granted",
            "clock_tampered": False,
        }

    def two_days_ago() -> float:
        return time.time() - 2 * 86_400

    with InProcessServer(kit, wall=two_days_ago, udp=False) as rolled_back:
        assert checkout_all(rolled_back.servers) == {
            "netmap": "granted",
            "timed": "CLOCK_TAMPERED",
            "clock_tampered": True,
        }
        client = _client(kit, rolled_back.servers)
        try:
            with pytest.raises(LicenseDenied) as denied:
                client.checkout("timed", "5.0", heartbeat=False)
        finally:
            client.close()
        assert "set back" in denied.value.message and denied.value.exit_code == 77

    with InProcessServer(kit, wall=time.time, udp=False) as corrected:
        assert checkout_all(corrected.servers) == {
            "netmap": "granted",
            "timed": "granted",
            "clock_tampered": False,
        }
