"""Seat accounting (SPEC §4, §6, §7).

Theory of operation.  Every valid FEATURE line is a *pool* of seats.  Lines
of one name add up (FlexLM INCREMENT), but a seat always comes from one
line, so that version limits, dates, host ids and named users stay exact: a
checkout of version V on day D may take a seat from any line of that name
whose version is >= V, whose dates cover D and that admits the client.
Among those the engine prefers uncounted lines (they never run out), then
node-locked and named lines (they serve few, so keep the floating seats for
everybody else), then the lowest version (keep the high-version seats for
the ones who need them) and then the earliest expiry (use seats before they
lapse).

A *lease* is one process's hold: its own id, key and heartbeats.  A *seat*
is what is counted.  Usually one lease holds one seat, but with ``dup=`` on
the line, leases of one *dup group* (same user, same host, or both) share a
seat, and with ``linger=`` (or the options file's LINGER) a seat stays
counted for a while after its last lease is checked in; a checkout by the
same user on the same host (or of the same dup group) takes it back.

Checks run in this order and the first that fails names the refusal:
no line of that name (NO_SUCH_FEATURE, or LICENSE_INVALID when only bad lines
bear it) → version (VERSION_NOT_LICENSED) → clock set back (CLOCK_TAMPERED)
→ dates (NOT_YET_VALID, EXPIRED) → who may use the line: host id of a
node-locked line (HOSTID_MISMATCH), named users and the options file's
EXCLUDE/INCLUDE (NOT_AUTHORIZED) → borrowing allowed (NOT_AUTHORIZED)
→ a seat: joining a dup group or taking back a lingering seat costs none;
else a reserved seat for a member of a RESERVE, else an unreserved seat
within MAX (SEATS_EXHAUSTED, saying when MAX or reservations were the cause).
``policy.py`` holds the options-file rules and their precedence.

Every count the hot path needs is kept as a counter (seats used per line,
unreserved seats used, reservation and MAX counts), so a checkout costs the
same with ten leases or a hundred thousand.

Time comes in as arguments: ``now`` is a monotonic reading in seconds, used
for lease timeouts and linger; ``wall_ms`` is the wall clock, used for
borrow ends; ``today`` is the calendar date (UTC) for license dates.  The
engine never reads a clock, opens a socket or touches a disk; the server
persists what the engine decided before it answers.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from netmap_lm import reasons
from netmap_lm.engine.policy import LinePolicy, Policy, Reservation
from netmap_lm.licensing.licensefile import FeatureLine, near_names, parse_version
from netmap_lm.licensing.options import Options

HOUR_MS = 3600 * 1000
ANY_HOST = "any"  # hostid=ANY on a node-locked line: every machine (FlexLM)


@dataclass(slots=True)  # read-only; not frozen, which costs a microsecond a checkout
class CheckoutRequest:
    feature: str
    version: str
    user: str
    host: str
    display: str = ""
    pid: int = 0
    project: str = ""
    hostid: str = ""  # the client's host id(s), comma-separated (node-locked lines)
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
    end_reason: str = ""  # why it ended, once it has: checkin, timeout, linger, borrow_end


@dataclass(frozen=True)
class Denial:
    reason: str
    message: str


class _Pool:
    """One license line: its seats, its leases and its rules."""

    __slots__ = (
        "borrow_hours",
        "borrow_limited",
        "cap",
        "dup",
        "gated",
        "groups",
        "hostids",
        "leases",
        "line",
        "linger",
        "lingering",
        "policy",
        "shared_cap",
        "shared_used",
        "timeout",
        "used",
        "users",
        "version_key",
    )

    def __init__(self, line: FeatureLine) -> None:
        self.line = line
        self.version_key = parse_version(line.version)
        self.cap = line.seats  # None: uncounted
        self.leases: dict[str, Lease] = {}
        self.used = 0  # seats held, lingering ones included
        self.shared_used = 0  # of them, the unreserved ones
        self.shared_cap = line.seats
        self.policy: LinePolicy | None = None  # only when some rule must be checked
        self.hostids: frozenset[str] | None = None
        if line.type == "nodelocked" and line.hostid:
            ids = frozenset(h.strip().lower() for h in line.hostid.split(",") if h.strip())
            self.hostids = None if ANY_HOST in ids else ids
        self.users = frozenset(line.users) if line.type == "named" else None
        self.dup = line.dup
        self.groups: dict[tuple[str, ...], _Seat] = {}  # dup key → its seat (dup != none)
        self.lingering: dict[tuple[str, ...], list[_Seat]] = {}  # (user, host) → (dup none)
        self.timeout = 0.0
        self.linger = line.linger_seconds
        self.borrow_hours = line.borrow_hours
        self.borrow_limited = False  # MAX_BORROW_HOURS lowered borrow_hours
        self.gated = False

    def configure(self, policy: LinePolicy | None, lease_timeout: float) -> None:
        self.timeout = float(policy.timeout) if policy and policy.timeout else lease_timeout
        if policy is None:
            self.gated = self.hostids is not None or self.users is not None
            return
        # LINGER may lengthen the vendor's linger=, never shorten it (FlexLM).
        self.linger = max(self.line.linger_seconds, policy.linger)
        if policy.max_borrow_hours is not None and policy.max_borrow_hours < self.borrow_hours:
            self.borrow_hours = policy.max_borrow_hours
            self.borrow_limited = True
        if self.cap is not None:
            self.shared_cap = self.cap - sum(r.cap for r in policy.reservations)
        self.policy = policy if policy.judges else None
        self.gated = self.policy is not None or self.hostids is not None or self.users is not None

    def order(self) -> tuple[Any, ...]:
        restricted = 0 if self.line.type != "floating" else 1
        return (self.cap is not None, restricted, self.version_key, self.line.expires or date.max)


class _Seat:
    """What is counted: held by one lease, by a dup group, or lingering."""

    __slots__ = (
        "charges",
        "freed",
        "holder",
        "key",
        "last",
        "leases",
        "linger_until",
        "overflow_of",
        "pool",
        "reservation",
    )

    def __init__(self, pool: _Pool, holder: Lease) -> None:
        self.pool = pool
        # dup key; (user, host) when dup=none (a lingering seat is taken back by it)
        self.key = _dup_key(pool.dup, holder) if pool.dup != "none" or pool.linger else ()
        self.holder = holder  # the lease that took it: whom the reservation and MAX counted
        self.leases = 0  # how many hold it
        self.reservation: Reservation | None = None
        self.overflow_of: list[Reservation] = _NONE  # full reservations the holder is in
        self.charges: list[tuple[Any, str]] = _NONE  # (MaxLimit, key) counted for this seat
        self.linger_until: float | None = None
        self.last: Lease | None = None  # the lease whose checkin left the seat lingering
        self.freed = False


class _NoSeat:
    __slots__ = ("kind", "text")

    def __init__(self, kind: str, text: str = "") -> None:
        self.kind = kind  # "max", "reserved" or "full"
        self.text = text


_FULL = _NoSeat("full")
_NONE: list[Any] = []  # shared empty list of a seat without reservations or MAX: never mutated
VERSION_CACHE = 4096  # distinct version strings remembered; clients choose them, so bounded
SUGGEST_AMONG = 50  # features a NO_SUCH_FEATURE denial looks among for a near name, at most
LIST_AT_MOST = 8  # features it names when none is near
_REFUSAL_RANK = {reasons.HOSTID_MISMATCH: 1, reasons.NOT_AUTHORIZED: 2}


class SeatEngine:
    """All leases of one server, and the license lines they draw from."""

    def __init__(
        self,
        features: Iterable[FeatureLine],
        *,
        lease_timeout: float,
        invalid_names: Iterable[str] = (),
        options: Options | None = None,
    ) -> None:
        if lease_timeout <= 0:
            raise ValueError("lease_timeout must be positive")
        self.lease_timeout = lease_timeout
        self._pools: dict[str, list[_Pool]] = {}
        for line in features:
            self._pools.setdefault(line.name, []).append(_Pool(line))
        for pools in self._pools.values():
            pools.sort(key=_Pool.order)
        self.policy = Policy(options, {n: [p.line for p in ps] for n, ps in self._pools.items()})
        # What the server should log after start or reread: rules naming unknown
        # features or lines, reservations larger than the seats.
        self.warnings: list[str] = list(self.policy.warnings)
        for pools in self._pools.values():
            for pool in pools:
                pool.configure(self.policy.line(pool.line.id), lease_timeout)
        self._gated = {name: any(p.gated for p in ps) for name, ps in self._pools.items()}
        self._invalid_names = frozenset(invalid_names) - set(self._pools)
        self._by_line = {p.line.id: p for pools in self._pools.values() for p in pools}
        self.leases: dict[str, Lease] = {}
        self._seat_of: dict[str, _Seat] = {}
        self._lingering: dict[str, _Seat] = {}  # id of the lease that left it → seat
        self._linger_heap: list[tuple[float, int, _Seat]] = []
        self._linger_seq = 0
        self._ended: list[Lease] = []  # lingering seats ended inside checkout, for expire()
        self._last_handle = 0
        self._versions: dict[str, tuple[int, ...]] = {}

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
        ``clockguard.py``) only lines without dates can serve, and nothing
        is borrowed."""
        if self._linger_heap and self._linger_heap[0][0] <= now:
            # A seat whose linger is over is free now, swept or not (FlexLM).
            self._ended.extend(self._end_lingering(now))
        plan = self._plan(request, today, clock_tampered, judge=True)
        if isinstance(plan, Denial):
            return plan
        pool, seat, reservation = plan
        lease = Lease(
            id=lease_id,
            feature=request.feature,
            version=request.version,
            user=request.user,
            host=request.host,
            display=request.display,
            pid=request.pid,
            project=request.project,
            line_id=pool.line.id,
            granted_at_ms=wall_ms,
            key=key,
            hostid=request.hostid,
            address=request.address,
            last_seen=now,
        )
        if request.borrow_hours > 0:
            lease.borrow_until_ms = wall_ms + request.borrow_hours * HOUR_MS
        self._hold(lease, pool, seat, reservation)
        return lease

    def _plan(
        self,
        request: CheckoutRequest,
        today: date,
        clock_tampered: bool = False,
        *,
        judge: bool,
    ) -> tuple[_Pool, _Seat | None, Reservation | None] | Denial:
        """Where a seat for ``request`` comes from: (line, a seat to share or
        None for a new one, the reservation a new seat is taken from).  With
        ``judge=False`` (restoring a held lease) the options file's EXCLUDE,
        INCLUDE and MAX and borrow limits are not applied again."""
        name = request.feature
        pools = self._pools.get(name)
        if not pools:
            if name in self._invalid_names:
                return Denial(
                    reasons.LICENSE_INVALID,
                    f"every license line for {name!r} is invalid; see 'netmap-lm license verify'",
                )
            return Denial(reasons.NO_SUCH_FEATURE, unknown_feature(name, self._pools))
        wanted = self._versions.get(request.version)
        if wanted is None:
            if len(self._versions) >= VERSION_CACHE:
                self._versions.clear()
            wanted = self._versions[request.version] = parse_version(request.version)
        pools = [p for p in pools if p.version_key >= wanted]
        if not pools:
            highest = max(p.line.version for p in self._pools[name])
            return Denial(
                reasons.VERSION_NOT_LICENSED,
                f"{name} version {request.version} requested; licensed up to {highest}",
            )
        if clock_tampered:
            pools = [p for p in pools if p.line.start is None and p.line.expires is None]
            if not pools or request.borrow_hours > 0:
                # A borrow ends by the wall clock: one set back would lengthen it.
                what = "borrowing is" if pools else f"{name} is time-limited and"
                return Denial(
                    reasons.CLOCK_TAMPERED,
                    f"the server clock was set back; {what} refused until the clock is right",
                )
        current = [p for p in pools if _covers(p.line, today)]
        if not current:
            if any(p.line.expires and p.line.expires < today for p in pools):
                last = max(p.line.expires for p in pools if p.line.expires)
                return Denial(reasons.EXPIRED, f"the license for {name} expired on {last}")
            first = min(p.line.start for p in pools if p.line.start)
            return Denial(reasons.NOT_YET_VALID, f"the license for {name} starts on {first}")
        eligible = current
        if self._gated[name]:
            eligible = []
            refusal: Denial | None = None
            for pool in current:
                why = self._refusal(pool, request, judge) if pool.gated else None
                if why is None:
                    eligible.append(pool)
                elif refusal is None or _REFUSAL_RANK[why.reason] > _REFUSAL_RANK[refusal.reason]:
                    refusal = why
            if refusal is not None and not eligible:
                return refusal
        if request.borrow_hours > 0 and judge:
            eligible = [p for p in eligible if request.borrow_hours <= p.borrow_hours]
            if not eligible:
                return self._no_borrow(name, request.borrow_hours, current)
        for pool in eligible:
            if pool.groups or pool.lingering:
                seat = self._seat_to_share(pool, request)
                if seat is not None:
                    return pool, seat, None
        why_not: list[_NoSeat] = []
        for pool in eligible:
            got = self._new_seat(pool, request, judge)
            if not isinstance(got, _NoSeat):
                return pool, None, got
            why_not.append(got)
        return self._exhausted(name, current, why_not)

    def _refusal(self, pool: _Pool, request: CheckoutRequest, judge: bool) -> Denial | None:
        name = request.feature
        if pool.hostids is not None:
            sent = {h.strip().lower() for h in request.hostid.split(",")}
            if pool.hostids.isdisjoint(sent):
                return Denial(
                    reasons.HOSTID_MISMATCH,
                    f"{name} is node-locked to another machine; this client's host id is "
                    f"{request.hostid or '(none sent)'}",
                )
        if pool.users is not None and request.user not in pool.users:
            return Denial(
                reasons.NOT_AUTHORIZED,
                f"{name} is licensed to named users; {request.user} is not one of them",
            )
        if judge and pool.policy is not None:
            message = pool.policy.refusal(request, name)
            if message is not None:
                return Denial(reasons.NOT_AUTHORIZED, message)
        return None

    def _no_borrow(self, name: str, hours: int, current: list[_Pool]) -> Denial:
        longest = max(p.borrow_hours for p in current)
        if longest == 0:
            limited = any(p.borrow_limited for p in current)
            why = (
                "MAX_BORROW_HOURS 0 in the options file"
                if limited
                else "its license line has no borrow="
            )
            return Denial(reasons.NOT_AUTHORIZED, f"{name} cannot be borrowed ({why})")
        source = (
            "MAX_BORROW_HOURS in the options file"
            if any(p.borrow_limited and p.borrow_hours == longest for p in current)
            else "borrow= on its license line"
        )
        return Denial(
            reasons.NOT_AUTHORIZED,
            f"{name} may be borrowed for at most {longest} hours ({source}); {hours} requested",
        )

    def _exhausted(self, name: str, current: list[_Pool], why_not: list[_NoSeat]) -> Denial:
        for kind in ("max", "reserved"):
            notes = [n.text for n in why_not if n.kind == kind and n.text]
            if notes and kind == "max":
                return Denial(reasons.SEATS_EXHAUSTED, f"{name}: {notes[0]}")
            if notes:
                total = sum(p.line.seats or 0 for p in current)
                return Denial(
                    reasons.SEATS_EXHAUSTED,
                    f"{_all_seats(total, name)} in use or reserved; the free ones are reserved "
                    f"for {', '.join(notes)}",
                )
        total = sum(p.line.seats or 0 for p in current)
        return Denial(reasons.SEATS_EXHAUSTED, f"{_all_seats(total, name)} in use")

    def _seat_to_share(self, pool: _Pool, client: Lease | CheckoutRequest) -> _Seat | None:
        """A seat ``client`` joins without counting another: its dup group's,
        or one it left lingering."""
        if pool.dup != "none":
            return pool.groups.get(_dup_key(pool.dup, client))
        seats = pool.lingering.get((client.user, client.host))
        return seats[-1] if seats else None

    def _new_seat(
        self, pool: _Pool, client: Lease | CheckoutRequest, judge: bool
    ) -> Reservation | _NoSeat | None:
        """A new seat on ``pool``: the reservation it comes from, None for an
        unreserved one, or why there is none."""
        policy = pool.policy
        if policy is None:
            if pool.cap is None or pool.used < pool.cap:
                return None
            return _FULL
        reservation = policy.reservation_for(client)
        if reservation is not None:
            return reservation  # RESERVE over MAX: a reservation is a promise
        if judge:
            limit = policy.max_reached(client)
            if limit is not None:
                return _NoSeat("max", limit.describe(client))
        if pool.cap is None or pool.shared_used < (pool.shared_cap or 0):
            return None
        if pool.used < pool.cap:
            return _NoSeat("reserved", policy.reserved_for_others())
        return _FULL

    def checkin(self, lease_id: str, *, now: float | None = None) -> Lease | Denial:
        """End a lease.  Given ``now``, a seat whose line lingers stays counted
        for the linger time; without it (an administrator's remove, a rollback)
        the seat is free at once."""
        lease = self.leases.get(lease_id)
        if lease is None:
            return _unknown(lease_id)
        seat = self._seat_of[lease_id]
        until = None
        if now is not None and seat.pool.linger > 0 and seat.leases == 1:
            until = now + seat.pool.linger
        lease.end_reason = "checkin"
        self._release(lease, until)
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

    def expire(self, now: float, wall_ms: int | None = None) -> list[Lease]:
        """End what is due: leases not heard from for their timeout
        (``end_reason`` "timeout"), borrowed leases past their end when
        ``wall_ms`` is given ("borrow_end"; a borrowed lease needs no
        heartbeat), and lingering seats whose time is over ("linger": the
        lease returned was checked in before, its seat ends now)."""
        ended = self._ended
        self._ended = []
        for pools in self._pools.values():
            for pool in pools:
                if not pool.leases:
                    continue
                deadline = now - pool.timeout
                due = []
                for lease in pool.leases.values():
                    if lease.borrow_until_ms:
                        if wall_ms is not None and wall_ms >= lease.borrow_until_ms:
                            lease.end_reason = "borrow_end"
                            due.append(lease)
                    elif lease.last_seen < deadline:
                        lease.end_reason = "timeout"
                        due.append(lease)
                for lease in due:
                    self._release(lease, None)
                ended.extend(due)
        ended.extend(self._end_lingering(now))
        return ended

    def _end_lingering(self, now: float) -> list[Lease]:
        ended = []
        heap = self._linger_heap
        while heap and heap[0][0] <= now:
            until, _, seat = heapq.heappop(heap)
            if seat.freed or seat.linger_until != until:
                continue  # taken back, or freed, since
            last = seat.last
            self._unlinger(seat)
            self._free(seat)
            if last is not None:
                last.end_reason = "linger"
                ended.append(last)
        return ended

    def restore(self, lease: Lease, *, now: float | None, today: date | None = None) -> bool:
        """Take back a lease persisted before a restart (its holder gets a full
        timeout from ``now`` to come back) or held before a reread (``now=None``
        keeps its timing).  It keeps its license line when that line is still
        there with a seat for it; else, given ``today``, it moves to any line
        that could grant it now.  False when none can: the lease is revoked.

        A held lease is not judged again by the options file (EXCLUDE, INCLUDE
        and MAX apply to new checkouts), but it rejoins its dup group, and it
        takes no seat reserved for somebody else."""
        if lease.id in self.leases:
            return False
        pool = self._by_line.get(lease.line_id)
        plan = self._placement(pool, lease) if pool is not None else None
        if pool is None or plan is None:
            if today is None:
                return False
            request = CheckoutRequest(
                lease.feature,
                lease.version,
                lease.user,
                lease.host,
                lease.display,
                lease.pid,
                lease.project,
                lease.hostid,
                lease.address,
            )
            chosen = self._plan(request, today, judge=False)
            if isinstance(chosen, Denial):
                return False
            pool, seat, reservation = chosen
            lease.line_id = pool.line.id
        else:
            seat, reservation = plan
        if now is not None:
            lease.last_seen = now
            lease.udp_ready = False
        self._hold(lease, pool, seat, reservation)
        return True

    def _placement(
        self, pool: _Pool, lease: Lease
    ) -> tuple[_Seat | None, Reservation | None] | None:
        seat = self._seat_to_share(pool, lease) if pool.groups or pool.lingering else None
        if seat is not None:
            return seat, None
        got = self._new_seat(pool, lease, judge=False)
        return None if isinstance(got, _NoSeat) else (None, got)

    def adopt(self, old: SeatEngine, *, today: date) -> list[Lease]:
        """Take over what ``old`` held (a reread): its leases, oldest first, so
        that when seats shrink the newest are the ones revoked, then its
        lingering seats.  Returns the revoked leases."""
        revoked = []
        for lease in sorted(old.leases.values(), key=lambda x: (x.granted_at_ms, x.handle)):
            if not self.restore(lease, now=None, today=today):
                revoked.append(lease)
        for lease, until in old.lingering_seats():
            self.restore_lingering(lease, until=until, today=today)
        return revoked

    def restore_lingering(self, lease: Lease, *, until: float, today: date | None = None) -> bool:
        """Carry a lingering seat over a reread: ``lease`` (checked in, from
        :meth:`lingering_seats` of the old engine) lingers until ``until``
        (monotonic), on its line or, given ``today``, another that fits."""
        if lease.id in self.leases or lease.id in self._lingering:
            return False
        if not self.restore(lease, now=None, today=today):
            return False
        self._release(lease, until)
        return True

    def release_lingering(self, lease_id: str) -> Lease | Denial:
        """Free a lingering seat now (an administrator's remove)."""
        seat = self._lingering.get(lease_id)
        if seat is None or seat.last is None:
            return _unknown(lease_id)
        last = seat.last
        self._unlinger(seat)
        self._free(seat)
        return last

    # -- views ---------------------------------------------------------------

    def feature_names(self) -> list[str]:
        return sorted(self._pools)

    def lines_of(self, name: str) -> list[FeatureLine]:
        return [p.line for p in self._pools.get(name, [])]

    def line(self, line_id: str) -> FeatureLine | None:
        pool = self._by_line.get(line_id)
        return pool.line if pool else None

    def in_use(self, name: str) -> int:
        """Seats counted: a dup group's leases count once; lingering seats count."""
        return sum(p.used for p in self._pools.get(name, []))

    def leases_count(self, name: str) -> int:
        return sum(len(p.leases) for p in self._pools.get(name, []))

    def seats(self, name: str, today: date) -> int | None:
        """Seats licensed today; ``None`` when any current line is uncounted."""
        current = [p.line for p in self._pools.get(name, []) if _covers(p.line, today)]
        if any(line.seats is None for line in current):
            return None
        return sum(line.seats or 0 for line in current)

    def leases_of(self, name: str) -> list[Lease]:
        leases = [lease for p in self._pools.get(name, []) for lease in p.leases.values()]
        return sorted(leases, key=lambda lease: lease.granted_at_ms)

    def lingering_seats(self, name: str | None = None) -> list[tuple[Lease, float]]:
        """(the lease checked in last, monotonic end) of every lingering seat."""
        return sorted(
            (
                (seat.last, seat.linger_until)
                for seat in self._lingering.values()
                if seat.last is not None
                and seat.linger_until is not None
                and (name is None or seat.pool.line.name == name)
            ),
            key=lambda item: item[1],
        )

    def reservations(self, name: str) -> list[dict[str, Any]]:
        """RESERVE rules of a feature: ``count`` seats reserved for ``type``
        ``name``, ``in_use`` of them held."""
        return self.policy.reservations(name)

    def lease_timeout_for(self, name: str, line_id: str | None = None) -> float:
        """Seconds without a heartbeat before a lease of this feature (or line)
        is reclaimed: TIMEOUT / TIMEOUTALL, else the server's lease timeout.
        For a feature whose lines differ, the shortest (what a client must meet)."""
        pool = self._by_line.get(line_id) if line_id else None
        if pool is not None:
            return pool.timeout
        pools = self._pools.get(name)
        return min(p.timeout for p in pools) if pools else self.lease_timeout

    def linger_for(self, line_id: str) -> int:
        """Seconds a seat of this line stays counted after its checkin."""
        pool = self._by_line.get(line_id)
        return pool.linger if pool else 0

    def borrow_hours_for(self, line_id: str) -> int:
        """Longest borrow of this line: borrow=, lowered by MAX_BORROW_HOURS."""
        pool = self._by_line.get(line_id)
        return pool.borrow_hours if pool else 0

    # -- bookkeeping ------------------------------------------------------------

    def _hold(
        self, lease: Lease, pool: _Pool, seat: _Seat | None, reservation: Reservation | None
    ) -> None:
        if seat is None:
            seat = _Seat(pool, lease)
            pool.used += 1
            policy = pool.policy
            if reservation is not None:
                reservation.used += 1
                seat.reservation = reservation
            else:
                pool.shared_used += 1
                if policy is not None:
                    waiting = [r for r in policy.reservations if r.identity.matches(lease)]
                    for r in waiting:
                        r.overflow[seat] = None
                    seat.overflow_of = waiting
            if policy is not None and policy.maxes:
                seat.charges = [
                    (limit, limit.key(lease))
                    for limit in policy.maxes
                    if limit.identity.matches(lease)
                ]
                for limit, key in seat.charges:
                    limit.counts[key] = limit.counts.get(key, 0) + 1
            if pool.dup != "none":
                pool.groups[seat.key] = seat
        elif seat.linger_until is not None:
            self._unlinger(seat)
        if lease.handle == 0:
            self._last_handle += 1
            lease.handle = self._last_handle
        else:
            self._last_handle = max(self._last_handle, lease.handle)
        seat.leases += 1
        self._seat_of[lease.id] = seat
        pool.leases[lease.id] = lease
        self.leases[lease.id] = lease

    def _release(self, lease: Lease, linger_until: float | None) -> None:
        seat = self._seat_of.pop(lease.id)
        del self.leases[lease.id]
        del seat.pool.leases[lease.id]
        seat.leases -= 1
        if seat.leases:
            return
        if linger_until is None:
            self._free(seat)
            return
        seat.linger_until = linger_until
        seat.last = lease
        self._lingering[lease.id] = seat
        if seat.pool.dup == "none":
            if not seat.key:
                seat.key = _dup_key("none", seat.holder)
            seat.pool.lingering.setdefault(seat.key, []).append(seat)
        self._linger_seq += 1
        heapq.heappush(self._linger_heap, (linger_until, self._linger_seq, seat))

    def _unlinger(self, seat: _Seat) -> None:
        """The seat is held again (or freed): it no longer lingers."""
        if seat.last is not None:
            self._lingering.pop(seat.last.id, None)
        pool = seat.pool
        if pool.dup == "none":
            seats = pool.lingering.get(seat.key)
            if seats is not None and seat in seats:
                seats.remove(seat)
                if not seats:
                    del pool.lingering[seat.key]
        seat.linger_until = None
        seat.last = None

    def _free(self, seat: _Seat) -> None:
        pool = seat.pool
        seat.freed = True
        pool.used -= 1
        if pool.groups.get(seat.key) is seat:
            del pool.groups[seat.key]
        for limit, key in seat.charges:
            left = limit.counts[key] - 1
            if left:
                limit.counts[key] = left
            else:
                del limit.counts[key]
        reservation = seat.reservation
        if reservation is None:
            pool.shared_used -= 1
            for waiting in seat.overflow_of:
                waiting.overflow.pop(seat, None)
            return
        reservation.used -= 1
        if reservation.overflow:
            # A member holds an unreserved seat while this reserved one is free:
            # move it in, so the unreserved seat is free for everybody.
            moved: _Seat = reservation.overflow.popitem(last=False)[0]
            for waiting in moved.overflow_of:
                waiting.overflow.pop(moved, None)
            moved.overflow_of = []
            moved.reservation = reservation
            reservation.used += 1
            pool.shared_used -= 1


def _dup_key(dup: str, client: Lease | CheckoutRequest) -> tuple[str, ...]:
    if dup == "user":
        return (client.user,)
    if dup == "host":
        return (client.host,)
    return (client.user, client.host)  # user_host; and none, for taking back a lingering seat


def _covers(line: FeatureLine, today: date) -> bool:
    return (line.start is None or line.start <= today) and (
        line.expires is None or today <= line.expires
    )


def _unknown(lease_id: str) -> Denial:
    return Denial(reasons.LEASE_UNKNOWN, f"lease {lease_id} is not held on this server")


def _all_seats(total: int, name: str) -> str:
    """``all 3 seats of netmap are``, ``the 1 seat of netmap is``."""
    return f"the 1 seat of {name} is" if total == 1 else f"all {total} seats of {name} are"


def unknown_feature(name: str, licensed: Iterable[str]) -> str:
    """The NO_SUCH_FEATURE message: what was asked for, and the near names
    (a typo, a case slip) among a license's features.  A license with many
    features is not searched (a client may send any name, as often as its
    rate allows); the message then points to ``status``."""
    names = sorted(licensed)
    text = f"no license for feature {name!r}"
    if not names:
        return f"{text}; this server licenses no features"
    if len(names) > SUGGEST_AMONG:
        return f"{text}; 'netmap-lm status' lists the {len(names)} features of this server"
    near = near_names(name, names, 3)
    if near and near[0].lower() == name.lower():
        return f"{text}; did you mean {near[0]!r}? (feature names are case-sensitive)"
    if near:
        return f"{text}; did you mean {' or '.join(repr(n) for n in near)}?"
    if len(names) > LIST_AT_MOST:
        return f"{text}; 'netmap-lm status' lists the {len(names)} features of this server"
    return f"{text}; this server licenses {', '.join(names)}"
