"""The license server: asyncio TCP and UDP around the pure engine.

Theory of operation.  One event loop owns the :class:`SeatEngine`, so every
decision about seats is taken by one thread, in order, and seat counts are
exact.  A checkout is decided at once, then handed to the lease store and
answered only when the store says it is durable (group commit, see
``store/sqlite.py``); if the write fails the decision is rolled back and
the client sees the connection close.  A timer reclaims leases whose
heartbeats stopped.  Restarting on the same state directory restores the
held leases, each with a fresh timeout for its holder to come back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

from cryptography.hazmat.primitives import constant_time

from netmap_lm import PROTOCOL_VERSION, __version__, reasons
from netmap_lm.encoding import b64u_encode
from netmap_lm.engine.seats import CheckoutRequest, Denial, Lease, SeatEngine
from netmap_lm.licensing import keys, licensefile
from netmap_lm.protocol import messages, trust, udp
from netmap_lm.protocol.connection import Reply, ServerConnection
from netmap_lm.server.config import MAX_OUTPUT_BYTES, ServerConfig
from netmap_lm.server.identity import load_identity
from netmap_lm.store.sqlite import Grant, LeaseStore, Release

log = logging.getLogger("netmap_lm.server")

LEASE_DB = "leases.db"


class StartupError(Exception):
    """The server cannot start; the message says which file is wrong and what to do."""


class LicenseServer:
    def __init__(
        self,
        config: ServerConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        config.check()
        self.config = config
        self.clock = clock
        self.wall = wall
        self.counters: Counter[str] = Counter()
        self.started_at = wall()
        try:
            vendor_key = keys.read_public(config.vendor_key_path)
            self.identity = load_identity(config.state_dir)
            self.license = licensefile.read(config.license_path, vendor_key)
        except (keys.KeyFileError, licensefile.LicenseFileError) as exc:
            raise StartupError(str(exc)) from None
        for problem in self.license.problems:
            log.warning("%s (this line is not served)", problem)
        server_line = self.license.server_for_key(self.identity.public_text)
        if server_line is None:
            raise StartupError(
                f"{config.license_path}: no valid SERVER line for this server's key "
                f"{self.identity.public_text} (fingerprint {self.identity.fingerprint}); "
                "send that key to your vendor for a license issued to this server"
            )
        self.server_line = server_line
        self.engine = SeatEngine(
            self.license.features,
            lease_timeout=config.lease_timeout,
            invalid_names={p.feature for p in self.license.problems if p.feature},
        )
        self.store = LeaseStore(config.state_dir / LEASE_DB)
        self._tcp: asyncio.base_events.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._sessions: set[_Session] = set()
        self._stopped = asyncio.Event()
        self.port = config.port

    # -- life cycle --------------------------------------------------------------

    async def start(self) -> None:
        now = self.clock()
        restored = 0
        for lease in self.store.load_leases():
            if self.engine.restore(lease, now=now):
                restored += 1
            else:
                log.warning(
                    "lease %s of %s no longer fits the license; dropped", lease.id, lease.feature
                )
        self.store.start()
        loop = asyncio.get_running_loop()
        self._tcp = await loop.create_server(
            lambda: _Session(self), self.config.bind, self.config.port, reuse_address=True
        )
        self.port = self._tcp.sockets[0].getsockname()[1]
        if self.config.udp:
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _Heartbeats(self), local_addr=(self.config.bind, self.port)
            )
        self._sweeper = asyncio.create_task(self._sweep())
        log.info(
            "netmap_lm %s serving %s on %s:%d (tcp%s); server key %s; %d lease(s) restored",
            __version__,
            ", ".join(self.engine.feature_names()) or "no features",
            self.config.bind,
            self.port,
            "+udp" if self._udp else "",
            self.identity.fingerprint,
            restored,
        )

    async def serve_until_stopped(self) -> None:
        await self._stopped.wait()

    def request_stop(self) -> None:
        self._stopped.set()

    async def stop(self) -> None:
        if self._sweeper:
            self._sweeper.cancel()
        if self._udp:
            self._udp.close()
        if self._tcp:
            self._tcp.close()
        for session in list(self._sessions):
            session.transport.close() if session.transport else None
        if self._tcp:
            await self._tcp.wait_closed()
        await asyncio.get_running_loop().run_in_executor(None, self.store.close)
        log.info("netmap_lm stopped; %d lease(s) kept for the next start", len(self.engine.leases))

    async def _sweep(self) -> None:
        period = min(1.0, self.config.heartbeat_interval / 2)
        while True:
            await asyncio.sleep(period)
            expired = self.engine.expire(self.clock())
            if not expired:
                continue
            for lease in expired:
                self.counters["leases_timed_out"] += 1
                log.info(
                    "timeout: lease %s of %s for %s@%s reclaimed",
                    lease.id,
                    lease.feature,
                    lease.user,
                    lease.host,
                )
            try:
                await self.store.commit([Release(lease.id) for lease in expired])
            except Exception:
                log.exception("could not persist reclaimed leases")

    # -- operations ----------------------------------------------------------------

    def today(self) -> Any:
        return datetime.fromtimestamp(self.wall(), UTC).date()

    def hello(self, request: messages.Hello) -> dict[str, Any]:
        now_ms = int(self.wall() * 1000)
        payload = trust.hello_payload(
            request.nonce, PROTOCOL_VERSION, self.identity.public_text, now_ms
        )
        return messages.ok(
            request.id,
            server="netmap_lm",
            version=__version__,
            protocol=PROTOCOL_VERSION,
            server_key=self.identity.public_text,
            server_line=self.server_line.text,
            time=now_ms,
            heartbeat_interval=_whole(self.config.heartbeat_interval),
            lease_timeout=_whole(self.config.lease_timeout),
            sig=_b64(self.identity.private_key.sign(payload)),
        )

    def checkout(
        self, request: messages.Checkout, nonce: str
    ) -> tuple[dict[str, Any], Lease | None]:
        result = self.engine.checkout(
            CheckoutRequest(
                request.feature,
                request.version,
                request.user,
                request.host,
                request.display,
                request.pid,
                request.project,
            ),
            lease_id=os.urandom(16).hex(),
            key=os.urandom(32),
            now=self.clock(),
            wall_ms=int(self.wall() * 1000),
            today=self.today(),
        )
        if isinstance(result, Denial):
            self.counters[f"denials_{result.reason}"] += 1
            log.info(
                "denied %s v%s to %s@%s: %s %s",
                request.feature,
                request.version,
                request.user,
                request.host,
                result.reason,
                result.message,
            )
            return messages.error(request.id, result.reason, result.message), None
        line = self.engine.line(result.line_id)
        assert line is not None
        grant = {
            "lease": result.id,
            "feature": result.feature,
            "version": result.version,
            "user": result.user,
            "host": result.host,
            "display": result.display,
            "pid": result.pid,
            "project": result.project,
            "line": result.line_id,
            "time": result.granted_at_ms,
            "nonce": nonce,
            "heartbeat_interval": _whole(self.config.heartbeat_interval),
            "lease_timeout": _whole(self.config.lease_timeout),
            "grace": line.grace_minutes,
            "key": _b64(result.key),
        }
        sig = self.identity.private_key.sign(trust.grant_payload(grant))
        reply = messages.ok(request.id, grant=grant, sig=_b64(sig), feature_line=line.text)
        return reply, result

    def held_lease(self, lease_id: str, token: str) -> Lease | Denial:
        """The lease, if the token proves its key; else LEASE_UNKNOWN (no oracle)."""
        lease = self.engine.leases.get(lease_id)
        if lease is None or not constant_time.bytes_eq(
            trust.lease_token(lease.key, lease_id).encode(), token.encode()
        ):
            self.counters["unknown_lease_requests"] += 1
            return Denial(reasons.LEASE_UNKNOWN, f"lease {lease_id} is not held on this server")
        return lease

    def status(self, request: messages.Status) -> dict[str, Any]:
        today = self.today()
        names = self.engine.feature_names()
        if request.feature is not None:
            if request.feature not in names:
                return messages.error(
                    request.id,
                    reasons.NO_SUCH_FEATURE,
                    f"no license for feature {request.feature!r}",
                )
            names = [request.feature]
        features = []
        for name in names:
            lines = self.engine.lines_of(name)
            features.append(
                {
                    "name": name,
                    "seats": self.engine.seats(name, today),
                    "in_use": self.engine.in_use(name),
                    "lines": [_line_view(line) for line in lines],
                    "leases": [_lease_view(lease) for lease in self.engine.leases_of(name)],
                }
            )
        return messages.ok(
            request.id,
            server={
                "name": "netmap_lm",
                "version": __version__,
                "host": self.server_line.host,
                "port": self.port,
                "key_fingerprint": self.identity.fingerprint,
                "time": int(self.wall() * 1000),
                "uptime": int(self.wall() - self.started_at),
                "heartbeat_interval": _whole(self.config.heartbeat_interval),
                "lease_timeout": _whole(self.config.lease_timeout),
                "license": str(self.config.license_path),
            },
            features=features,
            problems=[str(p) for p in self.license.problems],
        )


class _Session(asyncio.Protocol):
    """One TCP connection: moves bytes between the socket and the server."""

    def __init__(self, server: LicenseServer) -> None:
        self.server = server
        self.conn = ServerConnection()
        self.transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.server._sessions.add(self)
        self.server.counters["connections"] += 1
        self._arm(self.server.config.handshake_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._sessions.discard(self)
        if self._timer:
            self._timer.cancel()

    def _arm(self, seconds: float) -> None:
        if self._timer:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(seconds, self._timed_out)

    def _timed_out(self) -> None:
        self.server.counters["connections_timed_out"] += 1
        what = "hello" if self.conn.nonce is None else "a request"
        self.send(messages.protocol_error(None, f"no {what} in time; closing"))
        self._close()

    def _close(self) -> None:
        self._closing = True
        if self.transport:
            self.transport.close()

    def pause_writing(self) -> None:
        # The peer is not reading: stop reading its requests until it does,
        # so its replies cannot pile up in our memory.
        if self.transport:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport and not self._closing:
            self.transport.resume_reading()

    def send(self, message: dict[str, Any]) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size() > MAX_OUTPUT_BYTES:
            self.server.counters["connections_not_reading"] += 1
            transport.abort()
            return
        transport.write(messages.encode(message))

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        for event in self.conn.receive(data):
            if isinstance(event, Reply):
                self.server.counters["protocol_errors"] += 1
                self.send(event.message)
                if event.close:
                    self._close()
                    return
                continue
            self._dispatch(event)
        if self.conn.nonce is not None:
            self._arm(self.server.config.idle_timeout)

    def _dispatch(self, request: messages.Request) -> None:
        server = self.server
        server.counters[f"requests_{request.op}"] += 1
        if isinstance(request, messages.Hello):
            self.send(server.hello(request))
        elif isinstance(request, messages.Checkout):
            assert self.conn.nonce is not None
            reply, lease = server.checkout(request, self.conn.nonce)
            if lease is None:
                self.send(reply)
            else:
                self._after_commit([Grant(lease)], reply, rollback=lease)
        elif isinstance(request, messages.Checkin):
            held = server.held_lease(request.lease, request.token)
            if isinstance(held, Denial):
                self.send(messages.error(request.id, held.reason, held.message))
                return
            server.engine.checkin(held.id)
            log.info(
                "checkin: lease %s of %s by %s@%s", held.id, held.feature, held.user, held.host
            )
            self._after_commit([Release(held.id)], messages.ok(request.id, lease=held.id))
        elif isinstance(request, messages.Heartbeat):
            held = server.held_lease(request.lease, request.token)
            if isinstance(held, Denial):
                self.send(messages.error(request.id, held.reason, held.message))
                return
            server.engine.heartbeat(held.id, now=server.clock())
            held.seq = max(held.seq, request.seq)
            self.send(
                messages.ok(
                    request.id, lease=held.id, lease_timeout=_whole(server.config.lease_timeout)
                )
            )
        elif isinstance(request, messages.Status):
            self.send(server.status(request))

    def _after_commit(
        self, changes: list[Any], reply: dict[str, Any], rollback: Lease | None = None
    ) -> None:
        future = self.server.store.commit(changes)

        def done(f: asyncio.Future[None]) -> None:
            if f.exception() is not None:
                log.error("%s", f.exception())
                if rollback is not None:
                    self.server.engine.checkin(rollback.id)
                self._close()
                return
            if rollback is not None:
                log.info(
                    "grant: lease %s of %s v%s to %s@%s",
                    rollback.id,
                    rollback.feature,
                    rollback.version,
                    rollback.user,
                    rollback.host,
                )
            self.send(reply)

        future.add_done_callback(done)


class _Heartbeats(asyncio.DatagramProtocol):
    """UDP heartbeats: answer only what authenticates (SPEC §5)."""

    def __init__(self, server: LicenseServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        counters = self.server.counters
        parsed = udp.unpack_unverified(data)
        if parsed is None or parsed[0] != udp.HEARTBEAT:
            counters["udp_malformed"] += 1
            return
        _, lease_id, seq = parsed
        lease = self.server.engine.leases.get(lease_id)
        if lease is None:
            counters["udp_unknown_lease"] += 1
            return
        if not udp.authentic(data, lease.key):
            counters["udp_bad_mac"] += 1
            return
        result = self.server.engine.heartbeat(lease_id, now=self.server.clock(), seq=seq)
        if isinstance(result, Denial):
            counters["udp_replayed"] += 1
            return
        counters["udp_heartbeats"] += 1
        if self.transport is not None:
            self.transport.sendto(udp.pack(udp.ACK, lease_id, seq, lease.key), addr)

    def error_received(self, exc: Exception) -> None:
        self.server.counters["udp_errors"] += 1


def _line_view(line: licensefile.FeatureLine) -> dict[str, Any]:
    return {
        "id": line.id,
        "version": line.version,
        "seats": line.seats,
        "type": line.type,
        "start": line.start.isoformat() if line.start else "permanent",
        "expires": line.expires.isoformat() if line.expires else "permanent",
        "lineno": line.lineno,
    }


def _lease_view(lease: Lease) -> dict[str, Any]:
    return {
        "lease": lease.id,
        "handle": lease.handle,
        "user": lease.user,
        "host": lease.host,
        "display": lease.display,
        "pid": lease.pid,
        "project": lease.project,
        "version": lease.version,
        "line": lease.line_id,
        "granted_at": lease.granted_at_ms,
    }


def _whole(seconds: float) -> int:
    """Lease terms travel as whole seconds (signed objects hold no floats)."""
    return max(1, round(seconds))


_b64 = b64u_encode
