"""TCP on port 1493: accepting, TLS detection, and one protocol per connection.

Connections are accepted by our own loop rather than ``create_server`` so
that the allow list and the per-address budgets are applied before any
protocol work, and so that plain and TLS clients share the port: with TLS
configured, the first byte of a connection tells a TLS ClientHello (0x16)
from a JSON line (``{``), without consuming it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING, Any, cast

from netmap_lm import reasons
from netmap_lm.engine.seats import Denial, Lease
from netmap_lm.protocol import messages
from netmap_lm.protocol.connection import Reply, ServerConnection
from netmap_lm.server.config import MAX_OUTPUT_BYTES
from netmap_lm.store.sqlite import Change, Grant, Release, StoreError

if TYPE_CHECKING:
    from netmap_lm.server.app import LicenseServer

log = logging.getLogger("netmap_lm.server")

LISTEN_BACKLOG = 1024  # pending connections the kernel may queue for us
TLS_RECORD_HANDSHAKE = 0x16  # first byte of every TLS ClientHello
ACCEPT_ERROR_PAUSE = 0.05  # seconds to wait after EMFILE and friends before accepting again
REFUSAL_LINGER = 1.0  # seconds a refused connection stays half-closed so the refusal is read
GRANTS_REMEMBERED = 1024  # lease ids a connection keeps before it forgets the ones gone


class Listener:
    def __init__(self, server: LicenseServer, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.port: int = sock.getsockname()[1]
        self._opening: set[asyncio.Task[None]] = set()  # strong references until opened
        self.task = asyncio.create_task(self._accept_loop())

    def close(self) -> None:
        self.task.cancel()
        self.sock.close()

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, addr = await loop.sock_accept(self.sock)
            except asyncio.CancelledError:
                raise
            except OSError as exc:
                self.server.counters["accept_errors"] += 1
                log.warning("accept failed: %s", exc)
                await asyncio.sleep(ACCEPT_ERROR_PAUSE)
                continue
            self._admit(conn, addr[0])

    def _admit(self, conn: socket.socket, address: str) -> None:
        server = self.server
        server.counters["connections"] += 1
        if not server.allow.permits(address):
            server.counters["connections_not_allowed"] += 1
            server.note(server.abuse.not_allowed(server.wall(), address))
            _refuse(conn, reasons.NOT_AUTHORIZED, f"{address} is not in the server's allow list")
            return
        why = server.budgets.admit_connection(address, server.clock())
        if why is not None:
            server.counters["connections_refused"] += 1
            server.note(server.abuse.connection_limited(server.wall(), address, why))
            _refuse(conn, reasons.RATE_LIMITED, f"too many connections: {why}")
            return
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = asyncio.create_task(self._open(conn, address))
        self._opening.add(task)
        task.add_done_callback(self._opening.discard)

    async def _open(self, conn: socket.socket, address: str) -> None:
        server = self.server
        loop = asyncio.get_running_loop()
        context = None
        try:
            if server.tls_context is not None:
                ready: asyncio.Future[None] = loop.create_future()

                def readable() -> None:
                    if not ready.done():
                        ready.set_result(None)

                loop.add_reader(conn.fileno(), readable)
                try:
                    await asyncio.wait_for(ready, server.config.handshake_timeout)
                finally:
                    loop.remove_reader(conn.fileno())
                first = conn.recv(1, socket.MSG_PEEK)
                if first and first[0] == TLS_RECORD_HANDSHAKE:
                    context = server.tls_context
            await loop.connect_accepted_socket(
                lambda: Session(server, address),
                conn,
                ssl=context,
                ssl_handshake_timeout=server.config.handshake_timeout if context else None,
            )
        except (OSError, TimeoutError) as exc:
            server.counters["handshakes_failed"] += 1
            log.debug("connection from %s dropped before the protocol: %s", address, exc)
            server.budgets.release_connection(address)
            conn.close()


def _refuse(conn: socket.socket, reason: str, message: str) -> None:
    """Tell the peer why in one line (best effort, never blocking) and close."""
    try:
        conn.setblocking(False)
        conn.send(messages.encode(messages.error(None, reason, message)))
    except OSError:
        pass
    conn.close()


async def listen(server: LicenseServer) -> Listener:
    config = server.config
    family = socket.AF_INET6 if ":" in config.bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.bind, config.port))
    sock.listen(LISTEN_BACKLOG)
    sock.setblocking(False)
    return Listener(server, sock)


class Session(asyncio.Protocol):
    """One TCP connection: moves bytes between the socket and the server."""

    def __init__(self, server: LicenseServer, address: str) -> None:
        self.server = server
        self.address = address
        self.conn = ServerConnection()
        self.transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last_active = 0.0  # server.clock() of the last bytes received
        self._closing = False
        # Leases whose grant this connection carried: its checkins and TCP
        # heartbeats of them need no token (docs/protocol.md §5, "checkin").
        self._granted: set[str] = set()
        self._forget_at = GRANTS_REMEMBERED  # size at which the ones gone are dropped

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.server.sessions.add(self)
        self._arm(self.server.config.handshake_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.sessions.discard(self)
        self.server.leave_queue(self)
        self.server.budgets.release_connection(self.address)
        if self._timer:
            self._timer.cancel()

    def _arm(self, seconds: float) -> None:
        if self._timer:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(seconds, self._timed_out)

    def _timed_out(self) -> None:
        if self.conn.nonce is not None:
            # Past hello: idle only if nothing came for idle_timeout.  (Checked
            # when the timer fires rather than re-armed on every request.)
            quiet = self.server.clock() - self._last_active
            left = self.server.config.idle_timeout - quiet
            if left > 0:
                self._arm(left)
                return
        self.server.counters["connections_timed_out"] += 1
        what = "hello" if self.conn.nonce is None else "request"
        self.send(messages.protocol_error(None, f"no {what} in time; closing"))
        self._close()

    def _close(self) -> None:
        self._closing = True
        if self.transport:
            self.transport.close()

    def _refuse(self, message: dict[str, Any]) -> None:
        """Answer, then close gracefully: half-close so the answer is read before
        the end, keep discarding what the peer still sends (closing with unread
        data would reset the connection and lose the answer), close for good
        after REFUSAL_LINGER seconds."""
        self.send(message)
        self._closing = True
        transport = self.transport
        if transport is None:
            return
        if transport.can_write_eof():
            transport.write_eof()
            asyncio.get_running_loop().call_later(REFUSAL_LINGER, transport.close)
        else:
            transport.close()

    def shutdown_notice(self) -> None:
        """The server is stopping: say so, then close (leases are kept)."""
        self.send(
            messages.error(
                None,
                reasons.PROTOCOL_ERROR,
                "server shutting down; leases are kept, reconnect later",
                event="shutdown",
            )
        )
        self._close()

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
        server = self.server
        for event in self.conn.receive(data):
            # Every line counts against the address's budget, answerable or not.
            if not server.budgets.admit_request(self.address, server.clock()):
                server.counters["requests_rate_limited"] += 1
                server.note(server.abuse.rate_limited(server.wall(), self.address))
                rid = event.message.get("id") if isinstance(event, Reply) else event.id
                self._refuse(
                    messages.error(
                        rid, reasons.RATE_LIMITED, "too many requests from this address; slow down"
                    )
                )
                return
            if isinstance(event, Reply):
                server.counters["protocol_errors"] += 1
                self.send(event.message)
                if event.close:
                    self._close()
                    return
                continue
            self._dispatch(event)
            if self._closing:
                return
        self._last_active = server.clock()

    def _dispatch(self, request: messages.Request) -> None:
        server = self.server
        server.counters[f"requests_{request.op}"] += 1
        if isinstance(request, messages.Hello):
            self.send(server.hello(request))
        elif isinstance(request, messages.Checkout):
            assert self.conn.nonce is not None
            reply, lease = server.checkout(request, self.conn.nonce, self.address)
            if lease is not None:
                self.commit_grant(lease, reply)
            elif request.wait > 0 and reply.get("reason") == reasons.SEATS_EXHAUSTED:
                server.enqueue(request, self)
            else:
                self.send(reply)
        elif isinstance(request, messages.Checkin):
            held = self._held(request)
            if held is None:
                return
            server.checkin(held)
            # Answered at once, unlike a grant: the seat is free from now on
            # (a checkout of this turn may take it, and its grant is committed
            # with this release or after it).  A crash before the next commit
            # brings the lease back until its timeout, answered or not.
            self.send(messages.ok(request.id, lease=held.id))
            self._release(held)
            server.serve_queue()
        elif isinstance(request, messages.Heartbeat):
            held = self._held(request)
            if held is None:
                return
            server.engine.heartbeat(held.id, now=server.clock())
            held.seq = max(held.seq, request.seq)
            held.udp_ready = True
            self.send(
                messages.ok(request.id, lease=held.id, lease_timeout=server.lease_timeout(held))
            )
        elif isinstance(request, messages.Status):
            self.send(server.status(request))
        else:
            self._admin(request)

    def _held(self, request: messages.Checkin | messages.Heartbeat) -> Lease | None:
        """The lease a checkin or heartbeat names, or None once refused.

        A token, when sent, must prove the lease key, on any connection.
        Without one, only the connection that carried the grant may name the
        lease: its peer is the holder, and an application's start is spared
        the HMAC (docs/performance.md, fifteenth session).  Elsewhere a
        missing token is refused whether or not the lease exists (no oracle)."""
        if request.token:
            held = self.server.held_lease(request.lease, request.token, self.address)
        elif request.lease in self._granted:
            held = self.server.held_lease(request.lease, None, self.address)
        else:
            self.send(
                messages.error(
                    request.id,
                    reasons.PROTOCOL_ERROR,
                    f"{request.op} needs the lease token: only the connection that "
                    "received the grant may leave it out",
                )
            )
            return None
        if isinstance(held, Denial):
            self.send(messages.error(request.id, held.reason, held.message))
            return None
        return held

    def _granted_here(self, lease: Lease) -> None:
        """Remember that this connection carried ``lease``'s grant."""
        if len(self._granted) >= self._forget_at:  # amortized: the bound doubles
            held = self.server.engine.leases
            self._granted = {lease_id for lease_id in self._granted if lease_id in held}
            self._forget_at = max(GRANTS_REMEMBERED, 2 * len(self._granted))
        self._granted.add(lease.id)

    def _admin(self, request: messages.AdminRequest) -> None:
        server = self.server
        assert self.conn.nonce is not None
        if not server.admin_allowed(request, self.conn.nonce, self.address):
            server.counters["admin_refused"] += 1
            log.warning("admin %s refused for %s: no valid credential", request.op, self.address)
            self.send(
                messages.error(
                    request.id,
                    reasons.ADMIN_REQUIRED,
                    f"{request.op} needs the admin credential of the server "
                    "(DIR/admin.token written by 'netmap-lm server init')",
                )
            )
            return
        if isinstance(request, messages.Remove):
            reply, removed = server.remove(request, self.address)
            self._after_commit([Release(x.id) for x in removed], reply)
            server.serve_queue()
        elif isinstance(request, messages.Reread):
            reply, revoked = server.reread(request, self.address)
            self._after_commit([Release(x.id) for x in revoked], reply)
            server.serve_queue()
        elif isinstance(request, messages.Shutdown):
            log.info("shutdown requested by %s", self.address)
            server.record("ADMIN", action="shutdown", by=self.address)
            self.send(messages.ok(request.id, leases_kept=len(server.engine.leases)))
            asyncio.get_running_loop().call_later(0.05, server.request_stop)
        elif isinstance(request, messages.Audit):
            self.send(server.audit(request))

    def commit_grant(self, lease: Lease, reply: dict[str, Any]) -> None:
        """Answer a grant once it is durable."""
        self._after_commit([Grant(lease)], reply, granted=lease)

    def _release(self, lease: Lease) -> None:
        """Commit a checked-in lease's release, then record the checkin.  Its
        seat is free either way: a release that could not be written is
        written later (``store/sqlite.py``, which logs the failure), so the
        checkin is recorded either way.  Answered already, it does not hold
        the loop for an fsync of its own (``sync=False``)."""
        self.server.store.commit_then(
            [Release(lease.id)], lambda _: self.server.checked_in(lease, self.address), sync=False
        )

    def _after_commit(
        self, changes: list[Change], reply: dict[str, Any], granted: Lease | None = None
    ) -> None:
        """Send ``reply`` once ``changes`` are durable, then record the grant:
        the reply does not wait for the bookkeeping.  A grant that could not
        be written is undone and never recorded."""
        if not changes:
            self.send(reply)
            return

        def done(error: StoreError | None) -> None:
            if error is not None:  # the store has logged it
                if granted is not None:
                    self.server.engine.checkin(granted.id)
                self._close()
            else:
                if granted is not None:
                    self.server.signer.seal(reply)
                    self._granted_here(granted)
                self.send(reply)
                if granted is not None:
                    self.server.granted(granted, self.address)

        self.server.store.commit_then(changes, done)
