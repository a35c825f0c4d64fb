"""Socket-level fuzz of a real ``netmap-lm serve``: random and mutated frames
derived from valid requests, pipelined or split at random, cut connections,
over-long lines and random or mutated UDP datagrams, from sixteen loopback
addresses -- while a genuine lease heartbeats through it all.

Every reply the server sends must be one JSON object with ``ok`` and, when
refused, a stable reason code and a message; a session that stays open answers
every non-blank line.  At the end the server must be healthy: process alive, no
traceback in its log, status answering, the genuine lease held and a new
genuine checkout granted.

``NETMAP_LM_FUZZ_SECONDS`` sets the duration (default a few seconds);
``NETMAP_LM_FUZZ_SEED`` replays a run (the seed is in every failure message).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import struct
import time
from collections import Counter
from typing import Any

import pytest

from netmap_lm import LicenseClient, reasons
from netmap_lm.protocol import udp
from netmap_lm.protocol.framing import MAX_LINE_BYTES
from support import Kit, ServerProcess, wait_for

from ._settings import SOCKET_FUZZ_SECONDS, TIMEOUT

pytestmark = pytest.mark.timeout(TIMEOUT)

SOURCES = [f"127.0.0.{n}" for n in range(30, 46)]
READ_WAIT = 5.0  # seconds to wait for the replies a session is owed (a busy box)
# Alphabet of random text values: printable and control characters, and one beyond
# the Basic Multilingual Plane, whose JSON escape is a surrogate pair: a mutation that
# cuts the pair leaves a lone surrogate (this fuzzer found that crashing a session).
ALPHABET = 'abcXYZ019 _-.:/@\t"\\{}[],\x00\x1b\x7féß€中😀'


class Fuzzer:
    def __init__(self, kit: Kit, rng: random.Random, genuine_lease: Any) -> None:
        self.kit = kit
        self.rng = rng
        self.lease = genuine_lease  # its key makes mutated genuine datagrams
        self.stats: Counter[str] = Counter()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((rng.choice(SOURCES), 0))
        self.udp.setblocking(False)

    def close(self) -> None:
        self.udp.close()

    # -- building frames ----------------------------------------------------------------

    def text(self, limit: int = 20) -> str:
        return "".join(self.rng.choice(ALPHABET) for _ in range(self.rng.randrange(limit)))

    def value(self, depth: int = 0) -> Any:
        """A JSON value of any type (nested at most two deep)."""
        kind = self.rng.randrange(9 if depth < 2 else 7)
        if kind == 0:
            return None
        if kind == 1:
            return self.rng.random() < 0.5
        if kind == 2:
            return self.rng.randrange(-(2**70), 2**70)
        if kind == 3:
            return self.rng.random() * 1e300
        if kind == 4:
            return self.text()
        if kind == 5:
            return self.rng.randrange(100)
        if kind == 6:
            return "0123456789abcdef" * 2
        if kind == 7:
            return [self.value(depth + 1) for _ in range(self.rng.randrange(3))]
        return {self.text(5): self.value(depth + 1) for _ in range(self.rng.randrange(3))}

    def valid(self) -> dict[str, Any]:
        hexid = os.urandom(16).hex()
        return self.rng.choice(
            [
                {"op": "status"},
                {"op": "status", "feature": "netmap"},
                {
                    "op": "checkout",
                    "feature": "netmap",
                    "version": "5.0",
                    "user": "fuzz",
                    "host": "fuzzhost",
                    "display": ":0",
                    "pid": 1,
                    "project": "p",
                },
                {"op": "checkout", "feature": "nosuch", "version": "1", "user": "u", "host": "h"},
                {"op": "checkin", "lease": hexid, "token": "AAAA"},
                {"op": "heartbeat", "lease": self.lease.id, "token": "forged", "seq": 5},
                {"op": "remove", "lease": hexid, "admin": "bogus"},
                {"op": "reread"},
                {"op": "shutdown", "admin": "x" * 43},
                {"op": "audit"},
                {"op": "hello", "protocol": 1, "nonce": hexid},
            ]
        )

    def request(self) -> dict[str, Any]:
        obj = self.valid()
        obj["id"] = self.rng.choice([self.rng.randrange(2**53), self.text(10), None])
        for _ in range(self.rng.choice([0, 0, 1, 2])):
            key = self.rng.choice([*obj, "extra", "id", "op"])
            if self.rng.random() < 0.3:
                obj.pop(key, None)
            else:
                obj[key] = self.value()
        return obj

    def mutate(self, data: bytes) -> bytes:
        buf = bytearray(data)
        for _ in range(self.rng.randrange(1, 4)):
            pos = self.rng.randrange(max(1, len(buf)))
            op = self.rng.randrange(5)
            if op == 0 and buf:
                buf[pos] ^= 1 << self.rng.randrange(8)
            elif op == 1:
                buf[pos:pos] = self.rng.randbytes(self.rng.randrange(1, 6))
            elif op == 2:
                del buf[pos : pos + self.rng.randrange(1, 6)]
            elif op == 3:
                buf[pos:pos] = self.rng.choice([b'"', b"{", b"}", b"[", b"\\", b",", b":"])
            else:
                buf[pos:pos] = buf[pos : pos + self.rng.randrange(1, 20)]
        return bytes(buf).replace(b"\n", b" ")

    def line(self) -> bytes:
        obj = self.request()
        raw = json.dumps(obj, ensure_ascii=self.rng.random() < 0.5).encode()
        roll = self.rng.random()
        if roll < 0.5:
            return raw + b"\n"
        if roll < 0.85:
            return self.mutate(raw) + b"\n"
        if roll < 0.95:
            return self.rng.randbytes(self.rng.randrange(1, 200)).replace(b"\n", b"") + b"\n"
        return b" \t\r\n"  # blank: no reply owed

    # -- talking ---------------------------------------------------------------------------

    def connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(5)
        sock.bind((self.rng.choice(SOURCES), 0))
        sock.connect(("127.0.0.1", self.kit.port))
        return sock

    def hang_up(self, sock: socket.socket) -> None:
        if self.rng.random() < 0.5:  # a cut cable: RST
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    def send(self, sock: socket.socket, data: bytes) -> None:
        """In random pieces, as the network may cut it."""
        while data:
            cut = self.rng.randrange(1, len(data) + 1) if self.rng.random() < 0.5 else len(data)
            sock.sendall(data[:cut])
            data = data[cut:]

    def replies(self, sock: socket.socket, owed: int) -> tuple[list[dict[str, Any]], bool]:
        """Up to ``owed`` replies; and whether the server closed the connection."""
        buffer, got = b"", []
        deadline = time.monotonic() + READ_WAIT
        while len(got) < owed and (left := deadline - time.monotonic()) > 0:
            if b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                got.append(self.check(line))
                continue
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                return got, True
            if not chunk:
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    got.append(self.check(line))
                return got, True
            buffer += chunk
        return got, False

    def check(self, line: bytes) -> dict[str, Any]:
        reply = json.loads(line)  # one JSON object per line, UTF-8
        assert isinstance(reply, dict) and reply.get("ok") in (True, False), reply
        if reply["ok"] is False:
            assert reply["reason"] in reasons.SERVER_REASONS, reply
            assert isinstance(reply["message"], str) and reply["message"], reply
            self.stats[f"reply {reply['reason']}"] += 1
        else:
            self.stats["reply ok"] += 1
        return reply

    # -- actions ---------------------------------------------------------------------------

    def session(self) -> None:
        """hello (or not), then mutated lines, pipelined; every line answered."""
        sock = self.connect()
        try:
            data = b""
            if self.rng.random() < 0.8:
                nonce = os.urandom(16).hex()
                data += (
                    json.dumps({"id": 0, "op": "hello", "protocol": 1, "nonce": nonce}).encode()
                    + b"\n"
                )
            lines = [self.line() for _ in range(self.rng.randrange(1, 12))]
            data += b"".join(lines)
            owed = sum(1 for line in data.split(b"\n")[:-1] if line.strip())
            self.send(sock, data)
            got, closed = self.replies(sock, owed)
            self.stats["sessions"] += 1
            if not closed:
                assert len(got) == owed, f"{owed} lines sent, {len(got)} answered: {data!r}"
            elif got and len(got) < owed:
                # The server hangs up only after saying why (or when rate limited).
                assert got[-1]["ok"] is False, got[-1]
                self.stats["sessions closed by the server"] += 1
        finally:
            self.hang_up(sock)

    def garbage(self) -> None:
        sock = self.connect()
        try:
            with contextlib.suppress(OSError):
                self.send(sock, self.rng.randbytes(self.rng.randrange(1, 3000)))
            self.stats["garbage"] += 1
        finally:
            self.hang_up(sock)

    def cut(self) -> None:
        sock = self.connect()
        try:
            data = self.line()
            with contextlib.suppress(OSError):
                sock.sendall(data[: self.rng.randrange(len(data))])
            self.stats["cut mid-line"] += 1
        finally:
            self.hang_up(sock)

    def oversize(self) -> None:
        sock = self.connect()
        try:
            with contextlib.suppress(OSError):
                sock.sendall(b"{" + b"x" * (MAX_LINE_BYTES + self.rng.randrange(10)))
            got, closed = self.replies(sock, 1)
            assert closed or (got and got[0]["reason"] == "PROTOCOL_ERROR"), got
            self.stats["over-long lines"] += 1
        finally:
            self.hang_up(sock)

    def datagrams(self) -> None:
        genuine = udp.pack(udp.HEARTBEAT, self.lease.id, 1, self.lease._key)  # stale seq
        for _ in range(self.rng.randrange(1, 50)):
            roll = self.rng.random()
            if roll < 0.4:
                data = self.rng.randbytes(self.rng.randrange(0, 600))
            elif roll < 0.8:
                data = self.mutate(genuine)
            else:
                data = genuine  # an old datagram of the genuine lease, replayed
            with contextlib.suppress(BlockingIOError):
                self.udp.sendto(data, ("127.0.0.1", self.kit.port))
            self.stats["datagrams"] += 1

    def udp_answers(self) -> list[Any]:
        answers = []
        with contextlib.suppress(BlockingIOError):
            while data := self.udp.recv(100):
                answers.append(udp.unpack_unverified(data) or data)
        return answers

    def run(self, seconds: float) -> None:
        actions = [self.session] * 6 + [self.garbage, self.cut, self.datagrams, self.datagrams]
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.rng.choice(actions)()
            if self.rng.random() < 0.02:
                self.oversize()


def test_socket_fuzz_leaves_the_server_healthy(kit: Kit) -> None:
    seed = int(os.environ.get("NETMAP_LM_FUZZ_SEED") or random.randrange(2**32))
    kit.write_license([kit.feature_line("netmap", seats=10_000)])
    with ServerProcess(
        kit, "--handshake-timeout", "2", heartbeat_interval=1.0, lease_timeout=4.0
    ) as server:
        client = LicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub), timeout=10)
        lease = client.checkout("netmap", "5.0")  # heartbeats through the whole run
        # After its first UDP heartbeat, the lease's old datagrams (seq 1) are stale.
        assert wait_for(lambda: lease.heartbeats_udp >= 1, 5)
        fuzzer = Fuzzer(kit, random.Random(seed), lease)
        try:
            try:
                fuzzer.run(SOCKET_FUZZ_SECONDS)
                time.sleep(0.3)
                assert fuzzer.udp_answers() == [], "a fuzzed datagram was answered"
            except (AssertionError, ValueError) as exc:
                raise AssertionError(f"NETMAP_LM_FUZZ_SEED={seed}: {exc}") from exc
            print(
                f"\nsocket fuzz seed {seed}: "
                + ", ".join(f"{k} {v}" for k, v in sorted(fuzzer.stats.items()))
            )

            # The fuzz got past the parser both ways, and hit every kind of input.
            assert fuzzer.stats["reply PROTOCOL_ERROR"] and fuzzer.stats["reply ok"]
            assert fuzzer.stats["garbage"] and fuzzer.stats["datagrams"]
            assert server.proc is not None and server.proc.poll() is None, server.log()[-3000:]
            assert lease.lost is None, lease.lost
            status = client.status()
            assert lease.id in {x["lease"] for x in status["features"][0]["leases"]}
            other = LicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub))
            try:
                other.checkout("netmap", "5.0", heartbeat=False).checkin()
            finally:
                other.close()
            lease.checkin()
        finally:
            fuzzer.close()
            client.close()
        log = server.log()
        assert "Traceback" not in log and "Fatal error" not in log, (
            f"NETMAP_LM_FUZZ_SEED={seed}\n" + log[-5000:]
        )
