"""UDP on port 1493: authenticated heartbeats (SPEC §5).

Nothing that does not authenticate gets an answer, and an answer is never
larger than its request, so the port can neither be probed for leases nor
used to amplify a flood.  Each drop is counted by kind.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any, cast

from netmap_lm.engine.seats import Denial
from netmap_lm.protocol import udp

if TYPE_CHECKING:
    from netmap_lm.server.app import LicenseServer


class Heartbeats(asyncio.DatagramProtocol):
    def __init__(self, server: LicenseServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        server = self.server
        counters = server.counters
        if not server.allow.permits(addr[0]):
            counters["udp_not_allowed"] += 1
            return
        parsed = udp.unpack_unverified(data)
        if parsed is None or parsed[0] != udp.HEARTBEAT:
            counters["udp_malformed"] += 1
            return
        _, lease_id, seq = parsed
        lease = server.engine.leases.get(lease_id)
        if lease is None:
            counters["udp_unknown_lease"] += 1
            server.note(server.abuse.unknown_lease(server.wall(), addr[0]))
            return
        if not udp.authentic(data, lease.key):
            counters["udp_bad_mac"] += 1
            server.note(server.abuse.bad_mac(server.wall(), addr[0]))
            return
        if not lease.udp_ready:
            # Restored after a restart: the holder re-asserts over TCP first.
            counters["udp_before_reassert"] += 1
            return
        result = server.engine.heartbeat(lease_id, now=server.clock(), seq=seq)
        if isinstance(result, Denial):
            counters["udp_replayed"] += 1
            return
        counters["udp_heartbeats"] += 1
        if self.transport is not None:
            self.transport.sendto(udp.pack(udp.ACK, lease_id, seq, lease.key), addr)

    def error_received(self, exc: Exception) -> None:
        self.server.counters["udp_errors"] += 1


async def listen(server: LicenseServer) -> Heartbeats:
    config = server.config
    family = socket.AF_INET6 if ":" in config.bind else socket.AF_INET
    _, protocol = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: Heartbeats(server), local_addr=(config.bind, server.port), family=family
    )
    return cast(Heartbeats, protocol)
