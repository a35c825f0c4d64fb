"""A TCP relay that delays every byte by a fixed time each way: a server
``--rtt-ms`` away on loopback (this kernel has no ``netem``).

Usage: ``python bench/delay_proxy.py --port P --to PORT --rtt-ms MS``.  Each
chunk read from one side is written to the other half the round-trip time
later, in order; the TCP handshake itself is not delayed.  For measurements
only (``bench/compare_start.py --rtt-ms``); loopback only.
"""

from __future__ import annotations

import argparse
import asyncio


class _Half(asyncio.Protocol):
    """One side of a relayed connection: what it reads goes to ``peer`` late."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.transport: asyncio.Transport | None = None
        self.peer: _Half | None = None
        self.pending: list[bytes] = []  # read before the peer was connected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        asyncio.get_running_loop().call_later(self.delay, self._forward, data)

    def _forward(self, data: bytes) -> None:
        peer = self.peer
        if peer is None or peer.transport is None:
            self.pending.append(data)
        elif not peer.transport.is_closing():
            peer.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            asyncio.get_running_loop().call_later(self.delay, peer.transport.close)


async def serve(port: int, target: int, rtt: float) -> None:
    loop = asyncio.get_running_loop()
    delay = rtt / 2
    connecting: set[asyncio.Task[None]] = set()  # strong references until connected

    def accept() -> _Half:
        client = _Half(delay)

        async def connect() -> None:
            try:
                _, upstream = await loop.create_connection(
                    lambda: _Half(delay), "127.0.0.1", target
                )
            except OSError:
                if client.transport is not None:
                    client.transport.close()
                return
            upstream.peer, client.peer = client, upstream
            for data in client.pending:
                upstream.transport.write(data)  # type: ignore[union-attr]
            client.pending.clear()

        task = loop.create_task(connect())
        connecting.add(task)
        task.add_done_callback(connecting.discard)
        return client

    server = await loop.create_server(accept, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--to", type=int, required=True, help="the server's port")
    parser.add_argument("--rtt-ms", type=float, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.to, args.rtt_ms / 1000))


if __name__ == "__main__":
    main()
