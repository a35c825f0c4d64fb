"""Seat accounting for floating licenses (SPEC §4, §6).

Theory of operation.  Every valid FEATURE line is a *pool* of seats.  Lines
of one name add up (FlexLM INCREMENT), but a lease always draws from one
line, so that version limits and dates stay exact: a checkout of version V
on day D may take a seat from any line of that name whose version is >= V
and whose dates cover D.  Among those we take the lowest version first (keep
the high-version seats for the ones who need them) and then the earliest
expiry (use seats before they lapse).

Checks run in this order and the first that fails names the refusal:
no line of that name (NO_SUCH_FEATURE, or LICENSE_INVALID when only bad lines
bear it) → version (VERSION_NOT_LICENSED) → dates (NOT_YET_VALID, EXPIRED)
→ free seats (SEATS_EXHAUSTED).

Time comes in as arguments: ``now`` is a monotonic reading in seconds, used
for lease timeouts; ``today`` is the calendar date (UTC) for license dates.
The engine never reads a clock, opens a socket or touches a disk; the server
persists what the engine decided before it answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from netmap_lm import reasons
from netmap_lm.licensing.licensefile import FeatureLine, parse_version


@dataclass(frozen=True)
class CheckoutRequest:
    feature: str
    version: str
    user: str
    host: str
    display: str = ""
    pid: int = 0
    project: str = ""
    hostid: str = ""  # the client's host id (node-locked lines)
    address: str = ""  # the client's network address (options file INTERNET)
    borrow_hours: int = 0  # > 0: a borrow (SPEC §4 borrow=)


@dataclass
class Lease:
    id: str
    feature: str
    version: str
    user: str
    host: str
    display: str
    pid: int
    project: str
    line_id: str
    granted_at_ms: int  # wall clock, for people and reports
    key: bytes  # per-lease HMAC key for heartbeats (SPEC §5)
    hostid: str = ""  # the client's host id, as sent
    address: str = ""  # the client's network address
    borrow_until_ms: int = 0  # wall clock; > 0: borrowed, needs no heartbeat until then
    last_seen: float = 0.0  # monotonic; for the timeout
    seq: int = 0  # highest heartbeat sequence number accepted
    handle: int = 0  # small number for people (lmstat, remove); new after a restart
    # False after a restart until the holder re-asserts the lease over TCP with its
    # current sequence number: the replay floor is not persisted, so until then a
    # UDP heartbeat captured before the restart could be replayed (SPEC §5).
    udp_ready: bool = True
    end_reason: str = ""  # why it ended, once it has: timeout, linger, borrow_end, ...


@dataclass(frozen=True)
class Denial:
    reason: str
    message: str


@dataclass
class _Pool:
    line: FeatureLine
    version_key: tuple[int, ...]
    leases: set[str] = field(default_factory=set)

    def has_free_seat(self) -> bool:
        return self.line.seats is None or len(self.leases) < self.line.seats


class SeatEngine:
    """All leases of one server, and the license lines they draw from."""

    def __init__(
        self,
        features: Iterable[FeatureLine],
        *,
        lease_timeout: float,
        invalid_names: Iterable[str] = (),
    ) -> None:
        if lease_timeout <= 0:
            raise ValueError("lease_timeout must be positive")
        self.lease_timeout = lease_timeout
        self._pools: dict[str, list[_Pool]] = {}
        for line in features:
            self._pools.setdefault(line.name, []).append(_Pool(line, parse_version(line.version)))
        for pools in self._pools.values():
            pools.sort(key=lambda p: (p.version_key, p.line.expires or date.max))
        self._invalid_names = frozenset(invalid_names) - set(self._pools)
        self._by_line = {p.line.id: p for pools in self._pools.values() for p in pools}
        self.leases: dict[str, Lease] = {}
        self._last_handle = 0

    # -- decisions ---------------------------------------------------------

    def checkout(
        self,
        request: CheckoutRequest,
        *,
        lease_id: str,
        key: bytes,
        now: float,
        wall_ms: int,
        today: date,
        clock_tampered: bool = False,
    ) -> Lease | Denial:
        """Grant a seat or say why not.  ``lease_id`` and ``key`` come from the
        caller (randomness is I/O too).  With ``clock_tampered`` (see
        ``clockguard.py``) only lines without dates can serve."""
        pool_or_denial = self._choose_pool(request, today, clock_tampered)
        if isinstance(pool_or_denial, Denial):
            return pool_or_denial
        lease = Lease(
            id=lease_id,
            feature=request.feature,
            version=request.version,
            user=request.user,
            host=request.host,
            display=request.display,
            pid=request.pid,
            project=request.project,
            line_id=pool_or_denial.line.id,
            granted_at_ms=wall_ms,
            key=key,
            hostid=request.hostid,
            address=request.address,
            last_seen=now,
        )
        self._add(lease, pool_or_denial)
        return lease

    def _choose_pool(
        self, request: CheckoutRequest, today: date, clock_tampered: bool = False
    ) -> _Pool | Denial:
        name = request.feature
        pools = self._pools.get(name)
        if not pools:
            if name in self._invalid_names:
                return Denial(
                    reasons.LICENSE_INVALID,
                    f"every license line for {name!r} is invalid; see 'netmap-lm license verify'",
                )
            return Denial(reasons.NO_SUCH_FEATURE, f"no license for feature {name!r}")
        wanted = parse_version(request.version)
        pools = [p for p in pools if p.version_key >= wanted]
        if not pools:
            highest = max(p.line.version for p in self._pools[name])
            return Denial(
                reasons.VERSION_NOT_LICENSED,
                f"{name} version {request.version} requested; licensed up to {highest}",
            )
        if clock_tampered:
            pools = [p for p in pools if p.line.start is None and p.line.expires is None]
            if not pools:
                return Denial(
                    reasons.CLOCK_TAMPERED,
                    f"the server clock was set back; {name} is time-limited and refused "
                    "until the clock is right",
                )
        current = [p for p in pools if _covers(p.line, today)]
        if not current:
            if any(p.line.expires and p.line.expires < today for p in pools):
                last = max(p.line.expires for p in pools if p.line.expires)
                return Denial(reasons.EXPIRED, f"the license for {name} expired on {last}")
            first = min(p.line.start for p in pools if p.line.start)
            return Denial(reasons.NOT_YET_VALID, f"the license for {name} starts on {first}")
        for pool in current:
            if pool.has_free_seat():
                return pool
        total = sum(p.line.seats or 0 for p in current)
        return Denial(
            reasons.SEATS_EXHAUSTED,
            f"all {total} seat{'s' if total != 1 else ''} of {name} are in use",
        )

    def checkin(self, lease_id: str) -> Lease | Denial:
        lease = self.leases.get(lease_id)
        if lease is None:
            return _unknown(lease_id)
        self._remove(lease)
        return lease

    def heartbeat(self, lease_id: str, *, now: float, seq: int | None = None) -> Lease | Denial:
        """Renew a lease.  With ``seq`` (UDP), only a number above every one
        seen before counts; replays and reordered datagrams are refused."""
        lease = self.leases.get(lease_id)
        if lease is None:
            return _unknown(lease_id)
        if seq is not None:
            if seq <= lease.seq:
                return Denial(reasons.PROTOCOL_ERROR, "heartbeat sequence number replayed")
            lease.seq = seq
        lease.last_seen = max(lease.last_seen, now)
        return lease

    def expire(self, now: float) -> list[Lease]:
        """Reclaim every lease not heard from for ``lease_timeout`` seconds."""
        deadline = now - self.lease_timeout
        expired = [lease for lease in self.leases.values() if lease.last_seen < deadline]
        for lease in expired:
            self._remove(lease)
        return expired

    def restore(self, lease: Lease, *, now: float | None, today: date | None = None) -> bool:
        """Take back a lease persisted before a restart (its holder gets a full
        timeout from ``now`` to come back) or held before a reread (``now=None``
        keeps its timing).  It keeps its license line when that line is still
        there with a free seat; else, given ``today``, it moves to any line that
        could grant it now.  False when none can: the lease is revoked."""
        if lease.id in self.leases:
            return False
        pool = self._by_line.get(lease.line_id)
        if pool is None or not pool.has_free_seat():
            if today is None:
                return False
            request = CheckoutRequest(lease.feature, lease.version, lease.user, lease.host,
                                      lease.display, lease.pid, lease.project)
            chosen = self._choose_pool(request, today)
            if isinstance(chosen, Denial):
                return False
            pool = chosen
            lease.line_id = pool.line.id
        if now is not None:
            lease.last_seen = now
            lease.udp_ready = False
        self._add(lease, pool)
        return True

    # -- views ---------------------------------------------------------------

    def feature_names(self) -> list[str]:
        return sorted(self._pools)

    def lines_of(self, name: str) -> list[FeatureLine]:
        return [p.line for p in self._pools.get(name, [])]

    def line(self, line_id: str) -> FeatureLine | None:
        pool = self._by_line.get(line_id)
        return pool.line if pool else None

    def in_use(self, name: str) -> int:
        return sum(len(p.leases) for p in self._pools.get(name, []))

    def seats(self, name: str, today: date) -> int | None:
        """Seats licensed today; ``None`` when any current line is uncounted."""
        current = [p.line for p in self._pools.get(name, []) if _covers(p.line, today)]
        if any(line.seats is None for line in current):
            return None
        return sum(line.seats or 0 for line in current)

    def leases_of(self, name: str) -> list[Lease]:
        ids = [i for p in self._pools.get(name, []) for i in p.leases]
        return sorted((self.leases[i] for i in ids), key=lambda lease: lease.granted_at_ms)

    # -- bookkeeping ------------------------------------------------------------

    def _add(self, lease: Lease, pool: _Pool) -> None:
        if lease.handle == 0:
            self._last_handle += 1
            lease.handle = self._last_handle
        else:
            self._last_handle = max(self._last_handle, lease.handle)
        self.leases[lease.id] = lease
        pool.leases.add(lease.id)

    def _remove(self, lease: Lease) -> None:
        del self.leases[lease.id]
        self._by_line[lease.line_id].leases.discard(lease.id)


def _covers(line: FeatureLine, today: date) -> bool:
    return (line.start is None or line.start <= today) and (
        line.expires is None or today <= line.expires
    )


def _unknown(lease_id: str) -> Denial:
    return Denial(reasons.LEASE_UNKNOWN, f"lease {lease_id} is not held on this server")
