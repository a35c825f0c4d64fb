"""The asyncio client: the same checks as ``LicenseClient``, awaitable.

An ``AsyncLicenseClient`` keeps one verified session; a lease heartbeats
from a task on the caller's event loop over TCP (one connection serves all
leases of the client, so there is no UDP socket to manage) and is lost, with
``on_lost`` called, once no server has confirmed it for its grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

# Loaded with this module, unlike in the blocking client: imported during a
# checkout it would hold up the caller's event loop for tens of milliseconds.
from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: F401

from netmap_lm import PROTOCOL_VERSION, __version__, reasons
from netmap_lm.client.environment import format_address
from netmap_lm.client.session import (
    GIVE_BACK_WAIT,
    Refused,
    SessionError,
    checkin_for,
    reply_to,
)
from netmap_lm.client.sync import ClientSettings, _denied
from netmap_lm.encoding import b64u_decode, compact_json
from netmap_lm.licensing import trust
from netmap_lm.protocol.framing import MAX_LINE_BYTES
from netmap_lm.reasons import LicenseDenied

AsyncLostCallback = Callable[["AsyncLease", str, str], Any]


class _AsyncSession:
    def __init__(
        self, address: tuple[str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.address = address
        self.reader = reader
        self.writer = writer
        self.nonce = os.urandom(16).hex()
        self._next_id = 0
        self.server_key: Any = None
        self.server_time_ms = 0

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        return await self.receive(await self.send(message))

    async def send(self, *messages: dict[str, Any]) -> int:
        """Send requests in one write, each with a new ``id``; the first one's id."""
        lines = []
        for message in messages:
            self._next_id += 1
            message["id"] = self._next_id
            lines.append(compact_json(message).encode() + b"\n")
        self.writer.write(b"".join(lines))
        await self.writer.drain()
        return self._next_id - len(messages) + 1

    async def receive(self, rid: int) -> dict[str, Any]:
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError(f"{self.address[0]} closed the connection")
            reply = reply_to(line, rid)
            if reply is not None:
                return reply

    def close(self) -> None:
        self.writer.close()


class AsyncLicenseClient(ClientSettings):
    """``async with client.checkout("netmap", "5.0") as lease: ...``

    Takes the same arguments as :class:`LicenseClient` but ``tls``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._session: _AsyncSession | None = None
        self._lock = asyncio.Lock()

    async def _connect(self, first: dict[str, Any] | None = None) -> _AsyncSession:
        """A new verified session with the first server that answers; ``first``
        goes out in the hello's write (as ``LicenseClient`` does: see
        ``client/session.py``), its reply read with ``session.receive``."""
        untrusted, unreachable = [], []
        for address in self.servers:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(address[0], address[1], limit=MAX_LINE_BYTES * 64),
                    self.timeout,
                )
            except (OSError, TimeoutError) as exc:
                unreachable.append(f"{format_address(address)}: {exc}")
                continue
            session = _AsyncSession(address, reader, writer)
            try:
                hello_message = {
                    "op": "hello",
                    "protocol": PROTOCOL_VERSION,
                    "nonce": session.nonce,
                    "client": f"netmap-lm-py-async/{__version__}",
                }
                messages = (hello_message, first) if first else (hello_message,)
                rid = await asyncio.wait_for(session.send(*messages), self.timeout)
                hello = await asyncio.wait_for(session.receive(rid), self.timeout)
                if not hello.get("ok"):
                    raise trust.Untrusted(f"hello refused: {hello.get('message')}")
                try:
                    session.server_key, _ = trust.verify_hello(
                        hello, session.nonce, self.vendor_key, PROTOCOL_VERSION
                    )
                except trust.Untrusted:
                    if first:
                        await self._give_back_first(session, first)
                    raise
                session.server_time_ms = hello["time"]
            except Refused as exc:
                session.close()
                raise LicenseDenied(
                    exc.reason, f"{format_address(address)}: {exc.message}"
                ) from None
            except trust.Untrusted as exc:
                session.close()
                untrusted.append(f"{format_address(address)}: {exc}")
                continue
            except (OSError, TimeoutError, SessionError) as exc:
                session.close()
                unreachable.append(f"{format_address(address)}: {exc}")
                continue
            self._session = session
            return session
        if untrusted:
            raise self.not_trusted("; ".join(untrusted))
        raise LicenseDenied(reasons.SERVER_UNREACHABLE, "; ".join(unreachable))

    async def _give_back_first(self, session: _AsyncSession, first: dict[str, Any]) -> None:
        """Best effort, on a server whose hello did not verify: check in the
        seat the request sent with the hello may have been granted."""
        try:
            reply = await asyncio.wait_for(session.receive(first["id"]), GIVE_BACK_WAIT)
            message = checkin_for(reply)
            if message is not None:
                await asyncio.wait_for(session.send(message), GIVE_BACK_WAIT)
        except (OSError, TimeoutError, SessionError, trust.Untrusted):
            pass

    async def _request(
        self, message: dict[str, Any], *, with_hello: bool = False
    ) -> tuple[_AsyncSession, dict[str, Any]]:
        """As ``LicenseClient._request``: ``with_hello`` only for a message
        that holds nothing a fake server could use (never a lease token)."""
        async with self._lock:
            for attempt in (1, 2):
                session = self._session
                first = dict(message) if with_hello and session is None else None
                if session is None:
                    session = await self._connect(first)
                try:
                    if first is not None:
                        return session, await asyncio.wait_for(
                            session.receive(first["id"]), self.timeout
                        )
                    return session, await asyncio.wait_for(
                        session.request(dict(message)), self.timeout
                    )
                except Refused as exc:
                    session.close()
                    self._session = None  # the server closed it; resending would be refused too
                    raise LicenseDenied(exc.reason, exc.message) from None
                except (OSError, TimeoutError, SessionError):
                    session.close()
                    self._session = None
                    if attempt == 2:
                        raise LicenseDenied(
                            reasons.SERVER_UNREACHABLE,
                            f"lost the connection to {format_address(session.address)}",
                        ) from None
                except trust.Untrusted as exc:
                    session.close()
                    self._session = None
                    raise self.not_trusted(str(exc)) from None
        raise AssertionError("unreachable")

    async def checkout(
        self, feature: str, version: str = "0", *, on_lost: AsyncLostCallback | None = None
    ) -> AsyncLease:
        request = self.checkout_request(feature, version, hostid=False)
        session, reply = await self._request(request, with_hello=True)
        if reply.get("hostid_required") and not request["hostid"]:
            request["hostid"] = self.hostid  # a node-locked line: say who we are
            session, reply = await self._request(request)
        if not reply.get("ok"):
            raise _denied(reply)
        try:
            grant = self.verified_grant(reply, session, request)
        except trust.Untrusted as exc:
            # As LicenseClient does: a genuine server may still count the seat.
            give_back = checkin_for(reply)
            if give_back is not None:
                with contextlib.suppress(LicenseDenied):
                    await self._request(give_back)
            await self.close()
            raise self.not_trusted(str(exc)) from None
        lease = AsyncLease(self, grant, on_lost)
        lease._task = asyncio.get_running_loop().create_task(lease._heartbeats())
        return lease

    async def status(self, feature: str | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"op": "status"}
        if feature:
            message["feature"] = feature
        _, reply = await self._request(message, with_hello=True)  # names no more than a feature
        if not reply.get("ok"):
            raise _denied(reply)
        return reply

    async def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    async def __aenter__(self) -> AsyncLicenseClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncLease:
    def __init__(
        self, client: AsyncLicenseClient, grant: dict[str, Any], on_lost: AsyncLostCallback | None
    ) -> None:
        self.client = client
        self.grant = grant
        self.id: str = grant["lease"]
        self.feature: str = grant["feature"]
        self.version: str = grant["version"]
        self._token = trust.lease_token(b64u_decode(grant["key"]), self.id)
        self._on_lost = on_lost
        self._task: asyncio.Task[None] | None = None
        self.grace_seconds: int = max(grant["grace"] * 60, grant["lease_timeout"])
        self.last_confirmed = time.monotonic()
        self.lost: tuple[str, str] | None = None
        self.checked_in = False

    async def __aenter__(self) -> AsyncLease:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.checkin()

    async def checkin(self) -> None:
        if self.checked_in:
            return
        self.checked_in = True
        if self._task is not None:
            self._task.cancel()
        if self.lost:
            return
        try:
            _, reply = await self.client._request(
                {"op": "checkin", "lease": self.id, "token": self._token}
            )
        except LicenseDenied:
            return
        if not reply.get("ok") and reply.get("reason") != reasons.LEASE_UNKNOWN:
            raise _denied(reply)

    async def _heartbeats(self) -> None:
        seq = int(time.time() * 1000)
        while not self.lost:
            await asyncio.sleep(self.grant["heartbeat_interval"])
            seq += 1
            try:
                _, reply = await self.client._request(
                    {"op": "heartbeat", "lease": self.id, "token": self._token, "seq": seq}
                )
            except LicenseDenied as exc:
                if time.monotonic() - self.last_confirmed > self.grace_seconds:
                    await self._lose(exc.reason, exc.message)
                continue
            if reply.get("ok"):
                self.last_confirmed = time.monotonic()
            else:
                await self._lose(
                    reply.get("reason", reasons.PROTOCOL_ERROR), reply.get("message", "")
                )

    async def _lose(self, reason: str, message: str) -> None:
        self.lost = (reason, message)
        if self._on_lost is not None:
            result = self._on_lost(self, reason, message)
            if asyncio.iscoroutine(result):
                await result
