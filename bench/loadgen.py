"""Closed-loop load generator for the netmap_lm protocol (and the echo baseline).

N clients, each on its own TCP connection, send ``hello`` once and then loop
``checkout`` + ``checkin`` for a fixed time, each waiting for every reply
before sending the next request (no pipelining).  Every reply must carry
``ok: true`` and the id of its request, otherwise the run is broken.  Grant
signatures are not verified (that is client cost, measured separately by
the start-cost part of ``bench/run.py``); the checkin carries no lease token,
as the reference client's does on the connection that received the grant
(docs/protocol.md §5), unless ``tokens`` asks for one (servers older than the
sixteenth session need it; ``bench/compare_servers.py``).

The same code drives the real server and ``bench/echo_server.py``, so the
two differ only in what the server does per request.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
    uvloop = None  # type: ignore[assignment]

from netmap_lm.encoding import b64u_decode
from netmap_lm.licensing.trust import lease_token

CONNECT_TIMEOUT = 10.0  # seconds
STALL_TIMEOUT = 30.0  # seconds past the window's end; a run still going has stalled


class LoadError(RuntimeError):
    """A reply was missing, late, not ok, or for another request."""


@dataclass
class LoadResult:
    clients: int
    duration: float  # seconds of the measured window
    requests: int = 0  # checkouts + checkins that completed inside the window
    pairs: int = 0  # checkout+checkin pairs whose checkin completed inside the window
    request_ns: list[int] = field(default_factory=list)
    pair_ns: list[int] = field(default_factory=list)
    samples: list[Any] = field(default_factory=list)  # probe() at the window's start and end

    @property
    def rps(self) -> float:
        return self.requests / self.duration

    @property
    def pps(self) -> float:
        return self.pairs / self.duration

    def request_pct(self, q: float) -> float:
        """Latency percentile of one request, in microseconds."""
        return percentile(self.request_ns, q) / 1000

    def pair_pct(self, q: float) -> float:
        """Latency percentile of one checkout+checkin pair, in microseconds."""
        return percentile(self.pair_ns, q) / 1000


def percentile(values: list[int], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0 for an empty list."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return float(ordered[rank - 1])


class _Conn(asyncio.Protocol):
    """One client connection: write a line, wait for the reply line."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = b""
        self._lines: deque[bytes] = deque()
        self._waiter: asyncio.Future[bytes] | None = None
        self._lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if b"\n" not in data:
            return
        *lines, self._buffer = self._buffer.split(b"\n")
        self._lines.extend(lines)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(self._lines.popleft())

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = LoadError(f"server closed the connection ({exc})")
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(self._lost)

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self.transport is not None
        if self._lost is not None:
            raise self._lost
        self.transport.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        if self._lines:
            line = self._lines.popleft()
        else:
            self._waiter = asyncio.get_running_loop().create_future()
            line = await self._waiter
            self._waiter = None
        reply = json.loads(line)
        if reply.get("id") != message["id"] or reply.get("ok") is not True:
            hint = ""
            if reply.get("reason") == "RATE_LIMITED":
                hint = " (the server's per-address request limit: see serve --rate-limit)"
            raise LoadError(f"bad reply to {message['op']}: {line[:300]!r}{hint}")
        return reply


async def _connect(host: str, port: int, source: str | None) -> _Conn:
    """A connection (from ``source``, if given) that has said hello."""
    loop = asyncio.get_running_loop()
    local = (source, 0) if source else None
    _, conn = await asyncio.wait_for(
        loop.create_connection(_Conn, host, port, local_addr=local), CONNECT_TIMEOUT
    )
    await conn.request(
        {
            "op": "hello",
            "id": 0,
            "protocol": 1,
            "nonce": os.urandom(16).hex(),
            "client": "netmap-lm-bench/1",
        }
    )
    return conn


async def _loop(
    conn: _Conn, index: int, result: LoadResult, start_ns: int, end_ns: int, tokens: bool
) -> None:
    """checkout + checkin until the window ends; record what completes inside it."""
    checkout: dict[str, Any] = {
        "op": "checkout",
        "id": 0,
        "feature": "netmap",
        "version": "5.0",
        "user": f"bench{index}",
        "host": f"bench-host-{index}",
        "display": ":0",
        "pid": 10_000 + index,
        "project": "",
    }
    request_ns = result.request_ns
    pair_ns = result.pair_ns
    clock = time.perf_counter_ns
    rid = 0
    while clock() < end_ns:
        rid += 1
        checkout["id"] = rid
        t0 = clock()
        reply = await conn.request(checkout)
        t1 = clock()
        rid += 1
        grant = reply["grant"]
        checkin = {"op": "checkin", "id": rid, "lease": grant["lease"]}
        if tokens:
            checkin["token"] = lease_token(b64u_decode(grant["key"]), grant["lease"])
        await conn.request(checkin)
        t2 = clock()
        if start_ns <= t1 < end_ns:
            result.requests += 1
            request_ns.append(t1 - t0)
        if start_ns <= t2 < end_ns:
            result.requests += 1
            result.pairs += 1
            request_ns.append(t2 - t1)
            pair_ns.append(t2 - t0)


async def run_load(
    host: str,
    port: int,
    clients: int,
    *,
    warmup: float,
    duration: float,
    probe: Callable[[], Any] | None = None,
    sources: list[str] | None = None,
    tokens: bool = False,
) -> LoadResult:
    """Connect ``clients`` sessions (hello each), then loop; measure ``duration``
        seconds after ``warmup`` seconds.  ``probe`` is called at the start and the
        end of the window (results in ``samples``).  ``sources`` are the local
        addresses of the clients, one each; ``tokens``: checkins carry the lease
    token.  Raises :class:`LoadError` if any reply
        is bad."""
    result = LoadResult(clients, duration)
    src = sources or [None] * clients  # type: ignore[list-item]
    conns = await asyncio.gather(*(_connect(host, port, src[i]) for i in range(clients)))
    try:
        start_ns = time.perf_counter_ns() + int(warmup * 1e9)
        end_ns = start_ns + int(duration * 1e9)
        if probe is not None:
            loop = asyncio.get_running_loop()
            for at in (start_ns, end_ns):
                delay = (at - time.perf_counter_ns()) / 1e9
                loop.call_later(delay, lambda: result.samples.append(probe()))
        loops = asyncio.gather(
            *(_loop(conn, i, result, start_ns, end_ns, tokens) for i, conn in enumerate(conns))
        )
        try:
            await asyncio.wait_for(loops, warmup + duration + STALL_TIMEOUT)
        except TimeoutError:
            raise LoadError("no reply within the stall timeout: the server hangs") from None
    finally:
        for conn in conns:
            if conn.transport is not None:
                conn.transport.close()
        await asyncio.sleep(0)
    return result


def measure(
    host: str,
    port: int,
    clients: int,
    *,
    warmup: float,
    duration: float,
    probe: Callable[[], Any] | None = None,
    sources: list[str] | None = None,
    tokens: bool = False,
) -> LoadResult:
    """:func:`run_load` on a fresh event loop (uvloop when available)."""
    coro = run_load(
        host,
        port,
        clients,
        warmup=warmup,
        duration=duration,
        probe=probe,
        sources=sources,
        tokens=tokens,
    )
    if uvloop is not None:
        return uvloop.run(coro)
    return asyncio.run(coro)
