"""Per-address budgets: how much of the server one network address may use.

Every limit has a name, a unit and a reason (STYLE principle 5).  The
budgets are pure: the caller passes ``now`` (monotonic seconds).  An address
that goes over a budget is answered with a reason (``RATE_LIMITED``) or
refused at connect time and counted; everybody else is unaffected.
"""

from __future__ import annotations

from dataclasses import dataclass

# Defaults, all overridable on the command line.
MAX_CONNECTIONS = 10_000  # open TCP connections in total; bounded by file descriptors
MAX_CONNECTIONS_PER_ADDRESS = 256  # open connections from one address: a big NAT'd office
CONNECTS_PER_SECOND = 100.0  # new connections per second from one address, sustained
CONNECT_BURST = 500.0  # … and in a burst (a NAT'd lab booting at 9:00)
REQUESTS_PER_SECOND = 1000.0  # requests per second from one address, sustained
BURST_SECONDS = 5.0  # a burst may spend this many seconds of an address's request rate
REQUEST_BURST = REQUESTS_PER_SECOND * BURST_SECONDS  # … so 5,000 requests at once
IDLE_ENTRY_SECONDS = 300.0  # forget an address's buckets after this long without traffic


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        elapsed = max(0.0, now - self.stamp)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


@dataclass
class _Address:
    connects: TokenBucket
    requests: TokenBucket
    open: int = 0
    seen: float = 0.0


@dataclass(frozen=True)
class Limits:
    max_connections: int = MAX_CONNECTIONS
    max_per_address: int = MAX_CONNECTIONS_PER_ADDRESS
    connects_per_second: float = CONNECTS_PER_SECOND
    connect_burst: float = CONNECT_BURST
    requests_per_second: float = REQUESTS_PER_SECOND  # 0: no request rate limit
    request_burst: float = REQUEST_BURST


class AddressBudgets:
    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._addresses: dict[str, _Address] = {}
        self.open_total = 0

    def _entry(self, address: str, now: float) -> _Address:
        entry = self._addresses.get(address)
        if entry is None:
            lim = self.limits
            entry = _Address(
                TokenBucket(lim.connects_per_second, lim.connect_burst, now),
                TokenBucket(lim.requests_per_second, lim.request_burst, now),
            )
            self._addresses[address] = entry
        entry.seen = now
        return entry

    def admit_connection(self, address: str, now: float) -> str | None:
        """``None`` to accept, else why the connection is refused."""
        lim = self.limits
        if self.open_total >= lim.max_connections:
            return f"server has {lim.max_connections} connections open"
        entry = self._entry(address, now)
        if entry.open >= lim.max_per_address:
            return f"{address} has {lim.max_per_address} connections open"
        if not entry.connects.take(now):
            return f"{address} opens connections faster than {lim.connects_per_second:g}/s"
        entry.open += 1
        self.open_total += 1
        return None

    def release_connection(self, address: str) -> None:
        entry = self._addresses.get(address)
        if entry is not None and entry.open > 0:
            entry.open -= 1
            self.open_total -= 1

    def admit_request(self, address: str, now: float) -> bool:
        if self.limits.requests_per_second <= 0:
            return True
        return self._entry(address, now).requests.take(now)

    def forget_idle(self, now: float) -> None:
        """Drop the buckets of addresses with nothing open and no recent traffic."""
        stale = [
            a
            for a, e in self._addresses.items()
            if e.open == 0 and now - e.seen > IDLE_ENTRY_SECONDS
        ]
        for address in stale:
            del self._addresses[address]
