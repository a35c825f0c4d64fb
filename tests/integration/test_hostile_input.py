"""Bad input of any kind gets a PROTOCOL_ERROR line or a closed connection,
never crashes the server and never disturbs other clients (SPEC §5)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
from collections.abc import Iterator

import pytest

from netmap_lm import LicenseClient
from support import Kit, ServerProcess, wait_for

from ._util import RawConnection, in_use, status

NONCE = "0123456789abcdef0123456789abcdef"
# Floods come from another loopback address than the genuine client (127.0.0.1):
# per-address budgets may refuse the flood, but must not refuse anybody else.
FLOOD_SOURCE = "127.0.0.2"


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Kit, ServerProcess]]:
    kit = Kit(tmp_path_factory.mktemp("hostile"))
    kit.write_license()
    with ServerProcess(kit) as server:
        yield kit, server


def _genuine_checkout_works(kit: Kit, server: ServerProcess) -> None:
    assert server.proc is not None and server.proc.poll() is None, server.log()[-2000:]
    client = LicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub))
    try:
        with client.checkout("netmap", "5.0", heartbeat=False) as lease:
            assert lease.id
    finally:
        client.close()


def _replies_until_closed(conn: RawConnection, limit: int = 10) -> tuple[list[dict], bool]:
    """Every reply line, parsed, and whether the server closed the connection."""
    replies: list[dict] = []
    for _ in range(limit):
        conn.sock.settimeout(0.05 if replies else 3.0)
        try:
            line = conn.read_line()
        except TimeoutError:
            return replies, False
        if line is None:
            return replies, True
        reply = json.loads(line)
        assert isinstance(reply, dict), line
        replies.append(reply)
    return replies, False


def _assert_refused(replies: list[dict], closed: bool, *, echo_id: object = "any") -> None:
    assert replies or closed, "neither an error reply nor a closed connection"
    for reply in replies:
        assert reply["ok"] is False, reply
        assert reply["reason"] == "PROTOCOL_ERROR", reply
        assert isinstance(reply["message"], str) and reply["message"], reply
    if replies and echo_id != "any":
        assert replies[0]["id"] == echo_id, replies[0]


HOSTILE = {
    "garbage-bytes": (False, b"\x00\xff\xfe\xfd\x80\x81garbage\x00\x01\n", None),
    "binary-garbage": (False, bytes(range(256)).replace(b"\n", b"") + b"\n", None),
    "invalid-json": (False, b'{"id": 1, "op": "hello",\n', None),
    "wrong-types-hello": (
        False,
        b'{"id":1,"op":"hello","protocol":"one","nonce":5}\n',
        1,
    ),
    "nonce-not-hex": (
        False,
        b'{"id":2,"op":"hello","protocol":1,"nonce":"zz23456789abcdef0123456789abcdef"}\n',
        2,
    ),
    "status-before-hello": (False, b'{"id":3,"op":"status"}\n', 3),
    "checkout-before-hello": (
        False,
        b'{"id":4,"op":"checkout","feature":"netmap","version":"5.0","user":"u","host":"h"}\n',
        4,
    ),
    "json-array": (False, b'[{"id":1,"op":"hello","protocol":1}]\n', None),
    "json-string": (False, b'"hello"\n', None),
    "json-null": (False, b"null\n", None),
    "deep-nesting": (False, b"[" * 60000 + b"\n", None),
    "huge-integer": (False, b'{"id":' + b"9" * 50000 + b',"op":"hello"}\n', None),
    "float-id": (False, b'{"id":1.5,"op":"status"}\n', None),
    "nan-id": (False, b'{"id":NaN,"op":"status"}\n', None),
    "bool-id": (False, b'{"id":true,"op":"status"}\n', None),
    "unknown-op": (False, b'{"id":5,"op":"grant_me_everything"}\n', 5),
    "invalid-utf8-in-string": (
        False,
        b'{"id":6,"op":"hello","protocol":1,"nonce":"\xff\xfe"}\n',
        None,
    ),
    "lone-surrogate-id": (False, b'{"id":"\\ud800","op":"nope"}\n', None),
    "unsupported-protocol": (
        False,
        b'{"id":7,"op":"hello","protocol":2,"nonce":"' + NONCE.encode() + b'"}\n',
        7,
    ),
    "second-hello": (
        True,
        b'{"id":8,"op":"hello","protocol":1,"nonce":"' + NONCE.encode() + b'"}\n',
        8,
    ),
    "checkout-pid-string": (
        True,
        b'{"id":9,"op":"checkout","feature":"netmap","version":"5.0","user":"u","host":"h",'
        b'"pid":"1"}\n',
        9,
    ),
    "checkout-negative-pid": (
        True,
        b'{"id":10,"op":"checkout","feature":"netmap","version":"5.0","user":"u","host":"h",'
        b'"pid":-1}\n',
        10,
    ),
    "checkout-feature-list": (
        True,
        b'{"id":11,"op":"checkout","feature":["netmap"],"version":"5.0","user":"u","host":"h"}\n',
        11,
    ),
    "checkout-bad-version": (
        True,
        b'{"id":12,"op":"checkout","feature":"netmap","version":"5.0; DROP","user":"u",'
        b'"host":"h"}\n',
        12,
    ),
    "checkout-empty-user": (
        True,
        b'{"id":13,"op":"checkout","feature":"netmap","version":"5.0","user":"","host":"h"}\n',
        13,
    ),
    "checkout-long-user": (
        True,
        b'{"id":14,"op":"checkout","feature":"netmap","version":"5.0","user":"'
        + b"u" * 5000
        + b'","host":"h"}\n',
        14,
    ),
    "checkin-bad-lease": (True, b'{"id":15,"op":"checkin","lease":"../../etc","token":"x"}\n', 15),
    "heartbeat-huge-seq": (
        True,
        b'{"id":16,"op":"heartbeat","lease":"'
        + b"0" * 32
        + b'","token":"x","seq":'
        + str(2**64).encode()
        + b"}\n",
        16,
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_line_gets_protocol_error_or_close(
    target: tuple[Kit, ServerProcess], name: str
) -> None:
    kit, server = target
    hello_first, payload, echo_id = HOSTILE[name]
    conn = RawConnection(kit.port)
    try:
        if hello_first:
            conn.hello()
        conn.send(payload)
        replies, closed = _replies_until_closed(conn)
    finally:
        conn.close()
    _assert_refused(replies, closed, echo_id="any" if echo_id is None else echo_id)
    assert in_use(kit) == 0  # nothing was granted by any of it
    _genuine_checkout_works(kit, server)


def test_all_hostile_lines_at_once_then_a_genuine_cli_checkout(
    target: tuple[Kit, ServerProcess],
) -> None:
    """Every hostile line on its own connection, all open at the same time; then
    the command line client, on a separate connection, still gets its seat."""
    kit, server = target
    conns: list[RawConnection] = []
    try:
        for hello_first, payload, _ in HOSTILE.values():
            conn = RawConnection(kit.port)
            conns.append(conn)
            if hello_first:
                conn.hello()
            with contextlib.suppress(OSError):
                conn.send(payload)
        for conn in conns:
            _assert_refused(*_replies_until_closed(conn))
        result = kit.cli("checkout", "netmap", "--json")
    finally:
        for conn in conns:
            conn.close()
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert json.loads(result.stdout)["ok"] is True
    assert server.proc is not None and server.proc.poll() is None
    assert in_use(kit) == 0


def test_unencodable_request_id_gets_a_protocol_error_reply(
    target: tuple[Kit, ServerProcess],
) -> None:
    kit, server = target
    conn = RawConnection(kit.port)
    try:
        conn.send(b'{"id":"\\ud800","op":"status"}\n')
        replies, _ = _replies_until_closed(conn)
    finally:
        conn.close()
    assert len(replies) == 1, "no error reply"
    _assert_refused(replies, False)
    _genuine_checkout_works(kit, server)


def test_connection_goes_on_after_a_bad_line(target: tuple[Kit, ServerProcess]) -> None:
    """A recoverable error is answered and the session stays usable (ids echoed)."""
    kit, _ = target
    conn = RawConnection(kit.port)
    try:
        conn.hello()
        conn.send(b'{"id":"a","op":"status","feature":7}\n{"id":"b","op":"status"}\n')
        first, second = conn.read_json(), conn.read_json()
    finally:
        conn.close()
    assert first is not None and second is not None
    assert (first["id"], first["ok"], first["reason"]) == ("a", False, "PROTOCOL_ERROR")
    assert (second["id"], second["ok"]) == ("b", True)
    assert second["features"][0]["name"] == "netmap"


def test_oversized_line_is_refused_and_closed(target: tuple[Kit, ServerProcess]) -> None:
    kit, server = target
    conn = RawConnection(kit.port)
    try:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.send(b"a" * 70000)  # no newline
        replies, closed = _replies_until_closed(conn)
        if not closed:  # the error line came; the close may lag behind it a little
            conn.sock.settimeout(3.0)
            closed = conn.read_line() is None
    finally:
        conn.close()
    assert closed, "the server kept an over-long line open"
    _assert_refused(replies, closed, echo_id=None)
    _genuine_checkout_works(kit, server)


def test_endless_line_is_not_buffered(target: tuple[Kit, ServerProcess]) -> None:
    """A peer streaming megabytes without a newline is cut off, not buffered."""
    kit, server = target
    conn = RawConnection(kit.port)
    sent = 0
    try:
        with pytest.raises(OSError):  # BrokenPipe / ConnectionReset once the server closed
            chunk = b"x" * 65536
            while sent < 64 * 1024 * 1024:
                conn.send(chunk)
                sent += len(chunk)
    finally:
        conn.close()
    assert sent < 64 * 1024 * 1024
    _genuine_checkout_works(kit, server)


def _flood_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.bind((FLOOD_SOURCE, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def test_many_half_open_connections_do_not_stop_a_genuine_checkout(
    target: tuple[Kit, ServerProcess],
) -> None:
    kit, server = target
    conns: list[socket.socket] = []
    try:
        for i in range(200):
            sock = _flood_socket(kit.port)
            conns.append(sock)
            with contextlib.suppress(OSError):  # a refused flood connection is fine
                if i % 2:
                    sock.sendall(b'{"id":1,"op":"hello","protocol":1,"non')  # mid-line
                else:
                    sock.sendall(b"\x00\xff" * 100)  # garbage, no newline
        result = kit.cli("checkout", "netmap", "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["ok"] is True
    finally:
        for sock in conns:  # dropped hard: RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
    result = kit.cli("checkout", "netmap")
    assert result.returncode == 0, result.stderr
    assert server.proc is not None and server.proc.poll() is None


def test_connections_dropped_mid_request_leave_no_seat_taken(
    target: tuple[Kit, ServerProcess],
) -> None:
    """200 sessions that say hello, send half a checkout and vanish."""
    kit, server = target
    conns: list[socket.socket] = []
    try:
        for _ in range(200):
            sock = _flood_socket(kit.port)
            conns.append(sock)
            hello = {"id": 0, "op": "hello", "protocol": 1, "nonce": os.urandom(16).hex()}
            with contextlib.suppress(OSError):
                sock.sendall(json.dumps(hello).encode() + b"\n")
                sock.sendall(b'{"id":1,"op":"checkout","feature":"netmap","vers')
    finally:
        for sock in conns:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
    assert wait_for(lambda: in_use(kit) == 0, 5.0)
    result = kit.cli("checkout", "netmap")
    assert result.returncode == 0, result.stderr
    assert server.proc is not None and server.proc.poll() is None


def test_lone_surrogate_user_takes_no_seat_and_breaks_nothing(kit: Kit) -> None:
    kit.write_license()
    with ServerProcess(kit, heartbeat_interval=1.0, lease_timeout=30.0) as server:
        for _ in range(3):
            conn = RawConnection(kit.port)
            try:
                conn.hello()
                conn.send(
                    b'{"id":1,"op":"checkout","feature":"netmap","version":"5.0",'
                    b'"user":"\\ud800","host":"h"}\n'
                )
                replies, closed = _replies_until_closed(conn)
            finally:
                conn.close()
            _assert_refused(replies, closed, echo_id=1)
        assert server.proc is not None and server.proc.poll() is None
        result = kit.cli("checkout", "netmap", "--json")
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert status(kit)["features"][0]["in_use"] == 0
