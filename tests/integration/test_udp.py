"""UDP heartbeats: only authentic, fresh datagrams are answered; genuine
leases live on them (SPEC §5)."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator

import pytest

from netmap_lm import LicenseClient
from netmap_lm.encoding import b64u_decode
from netmap_lm.licensing import trust
from netmap_lm.protocol import udp
from support import Kit, ServerProcess, wait_for

from ._util import RawConnection, in_use, lease_ids

HEARTBEAT_INTERVAL = 1.0
LEASE_TIMEOUT = 3.0
NO_ANSWER_WAIT = 0.5


@pytest.fixture(scope="module")
def udp_kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kit]:
    kit = Kit(tmp_path_factory.mktemp("udp"))
    kit.write_license([kit.feature_line("netmap", seats=10)])
    with ServerProcess(kit, heartbeat_interval=HEARTBEAT_INTERVAL, lease_timeout=LEASE_TIMEOUT):
        yield kit


@pytest.fixture
def client(udp_kit: Kit) -> Iterator[LicenseClient]:
    c = LicenseClient(servers=udp_kit.servers, vendor_key=str(udp_kit.vendor_pub))
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def sock() -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(NO_ANSWER_WAIT)
    try:
        yield s
    finally:
        s.close()


def _answer(sock: socket.socket, port: int, datagram: bytes) -> bytes | None:
    sock.sendto(datagram, ("127.0.0.1", port))
    try:
        return sock.recv(65536)
    except TimeoutError:
        return None


def _no_answer_to_any(sock: socket.socket, port: int, datagrams: list[bytes]) -> bool:
    for datagram in datagrams:
        sock.sendto(datagram, ("127.0.0.1", port))
    try:
        answer = sock.recv(65536)
    except TimeoutError:
        return True
    raise AssertionError(f"the server answered {answer!r}")


def test_random_datagrams_get_no_answer(udp_kit: Kit, sock: socket.socket) -> None:
    size = udp.DATAGRAM_BYTES
    datagrams = [
        os.urandom(45),
        os.urandom(size),
        udp.MAGIC + os.urandom(size - 4),
        udp.MAGIC + bytes([udp.HEARTBEAT]) + os.urandom(size - 5),
        b"",
        b"\x00",
        udp.MAGIC + os.urandom(1400),
        b"status please\n",
    ]
    assert _no_answer_to_any(sock, udp_kit.port, datagrams)


def test_wrong_mac_for_a_held_lease_gets_no_answer(
    udp_kit: Kit, client: LicenseClient, sock: socket.socket
) -> None:
    with client.checkout("netmap", "5.0") as lease:
        report = json.loads(udp_kit.cli("status", "--json").stdout)
        (lease_id,) = {entry["lease"] for entry in report["features"][0]["leases"]}
        assert lease_id == lease.id

        wrong_key = os.urandom(32)
        forged = [
            udp.pack(udp.HEARTBEAT, lease_id, seq, wrong_key)
            for seq in (1, int(time.time() * 1000) + 10**6, 2**63 - 1, 2**64 - 1)
        ]
        # A right MAC on an ack (type 2) is not a heartbeat either.
        forged.append(udp.pack(udp.ACK, lease_id, 2**62, b64u_decode(lease.grant["key"])))
        assert _no_answer_to_any(sock, udp_kit.port, forged)

        # The forged high sequence numbers did not lock the genuine holder out.
        udp_before = lease.heartbeats_udp
        assert wait_for(lambda: lease.heartbeats_udp >= udp_before + 2, 5 * HEARTBEAT_INTERVAL)
        assert lease.lost is None
        assert lease_id in lease_ids(udp_kit)
    assert lease_id not in lease_ids(udp_kit)


def test_replayed_or_stale_datagram_gets_no_answer(
    udp_kit: Kit, client: LicenseClient, sock: socket.socket
) -> None:
    lease = client.checkout("netmap", "5.0", heartbeat=False)
    try:
        key = b64u_decode(lease.grant["key"])
        first = udp.pack(udp.HEARTBEAT, lease.id, 5000, key)
        ack = _answer(sock, udp_kit.port, first)
        assert ack is not None
        assert len(ack) == len(first) == udp.DATAGRAM_BYTES  # no amplification
        assert udp.unpack_unverified(ack) == (udp.ACK, lease.id, 5000)
        assert udp.authentic(ack, key)

        assert _answer(sock, udp_kit.port, first) is None  # the same datagram again
        assert _answer(sock, udp_kit.port, udp.pack(udp.HEARTBEAT, lease.id, 4999, key)) is None
        assert _answer(sock, udp_kit.port, udp.pack(udp.HEARTBEAT, lease.id, 5001, key))
    finally:
        lease.checkin()


def test_genuine_lease_is_kept_alive_by_udp_heartbeats(udp_kit: Kit, client: LicenseClient) -> None:
    lease = client.checkout("netmap", "5.0")
    try:
        time.sleep(2 * LEASE_TIMEOUT)
        assert lease.lost is None
        assert lease.heartbeats_udp > 0
        assert lease.heartbeats_tcp == 0  # UDP answered every time; no TCP fallback needed
        assert lease.id in lease_ids(udp_kit)
    finally:
        lease.checkin()
    assert lease.id not in lease_ids(udp_kit)


def test_heartbeat_replayed_after_server_restart_gets_no_answer(
    kit: Kit, sock: socket.socket
) -> None:
    """The replay floor survives a crash: a datagram accepted before the restart
    is not accepted again, neither before nor after the holder re-asserts its
    lease over TCP; the holder's own fresh heartbeats are."""
    kit.write_license()
    server = ServerProcess(
        kit, heartbeat_interval=HEARTBEAT_INTERVAL, lease_timeout=LEASE_TIMEOUT
    ).start()
    client = LicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub))
    try:
        lease = client.checkout("netmap", "5.0", heartbeat=False)
        key = b64u_decode(lease.grant["key"])
        captured = udp.pack(udp.HEARTBEAT, lease.id, 7000, key)
        assert _answer(sock, kit.port, captured) is not None  # genuine, accepted once
        server.kill()
        server = ServerProcess(
            kit, heartbeat_interval=HEARTBEAT_INTERVAL, lease_timeout=LEASE_TIMEOUT
        ).start()
        assert lease_ids(kit) == {lease.id}  # the lease was restored
        assert _answer(sock, kit.port, captured) is None

        # The holder re-asserts over TCP with its current sequence number ...
        conn = RawConnection(kit.port)
        try:
            conn.hello()
            token = trust.lease_token(key, lease.id)
            conn.send_json(
                {"id": 1, "op": "heartbeat", "lease": lease.id, "token": token, "seq": 7100}
            )
            reply = conn.read_json()
        finally:
            conn.close()
        assert reply is not None and reply["ok"] is True, reply
        # ... after which the old datagram is still stale and fresh ones are answered.
        assert _answer(sock, kit.port, captured) is None
        assert _answer(sock, kit.port, udp.pack(udp.HEARTBEAT, lease.id, 7050, key)) is None
        fresh = udp.pack(udp.HEARTBEAT, lease.id, 7101, key)
        assert _answer(sock, kit.port, fresh) is not None
        assert in_use(kit) == 1
    finally:
        server.kill()
        client.close()
