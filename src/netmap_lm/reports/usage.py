"""Usage figures per feature from report records (SPEC §7): pure, no files, no clock.

Theory of operation.  A seat is in use from a lease's CHECKOUT to its
CHECKIN, paired by lease id: the half-open interval [checkout, checkin).
Records come in log order and are folded into a :class:`UsageAccumulator`
one at a time, so a year of records never has to be in memory, only one
small interval per lease.

The report covers a *window*: from ``since`` (or the first record) to
``until`` (or the last record), and never beyond what the log covers.
Intervals are clipped to the window: a lease checked out before ``since``
and still held counts from ``since``, which is why records before
``since`` are read too; a lease still held at the end counts until the end.
A CHECKIN whose CHECKOUT is not in the log (it was in a rotated file that is
gone) counts from ``checkin - held_ms``.  A second CHECKOUT for a lease that
is already held (a server announcing restored leases) keeps the first.

Events (checkouts, checkins, denials, queue events, admin actions) count
when their record falls in the window.  Per feature:

- peak concurrent seats and the first moment of that peak, found by sweeping
  the sorted interval ends; at one instant seats are returned before they
  are taken, as the half-open intervals say;
- average concurrent seats = seat-milliseconds / window length;
- seat-hours, and the users and hosts with the most of them;
- licensed seats: the ``seats`` of the last CHECKOUT read (it changes only
  with a reread of the license), and its changes over time for plots.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from itertools import chain

from netmap_lm.reports.records import Record

HOUR_MS = 3_600_000
DEFAULT_TOP = 10  # users and hosts listed per feature
UNCOUNTED = "uncounted"
# Kinds that are only counted, per kind, for the report's summary line.
COUNTED_KINDS = frozenset({"START", "STOP", "REREAD", "ADMIN", "AUDIT"})


class RecordError(ValueError):
    """A well-formed line whose record lacks a field or has a bad number."""


@dataclass(frozen=True)
class Share:
    """One user's or host's part of a feature's use."""

    name: str
    seat_hours: float
    checkouts: int


@dataclass(frozen=True)
class FeatureUsage:
    feature: str
    licensed_seats: int | None  # None when unknown or uncounted
    uncounted: bool
    peak_seats: int
    peak_at_ms: int | None  # first moment of the peak; None when never used
    average_seats: float
    seat_hours: float
    checkouts: int
    checkins: dict[str, int]  # by reason
    denials: dict[str, int]  # by reason code
    queued: int
    dequeued: dict[str, int]  # by outcome
    queue_wait_avg_s: float | None
    queue_wait_max_s: float | None
    top_users: list[Share]
    top_hosts: list[Share]
    # For plots (empty unless asked for): seats in use from each time on,
    # the times of denials, and (time, licensed seats or None) at each change.
    step_times: list[int] = field(default_factory=list, repr=False)
    step_levels: list[int] = field(default_factory=list, repr=False)
    denial_times: list[int] = field(default_factory=list, repr=False)
    licensed_changes: list[tuple[int, int | None]] = field(default_factory=list, repr=False)

    @property
    def denials_total(self) -> int:
        return sum(self.denials.values())


@dataclass(frozen=True)
class UsageReport:
    start_ms: int | None  # the window; None when the log has no records
    end_ms: int | None
    features: list[FeatureUsage]
    events: dict[str, int]  # START, STOP, REREAD, ADMIN, AUDIT and LOST (records lost)
    records: int = 0  # records in the window
    malformed: int = 0  # lines that were not records, or records missing fields
    warnings: list[str] = field(default_factory=list)  # the first few, as "file:line: ..."


class _Tally:
    """What one feature's records add up to, before the window is known."""

    def __init__(self) -> None:
        # One entry per lease; start None means "before the window".
        self.starts: list[int | None] = []
        self.ends: list[int] = []
        self.users: list[str] = []
        self.hosts: list[str] = []
        self.checkouts = 0
        self.user_checkouts: Counter[str] = Counter()
        self.host_checkouts: Counter[str] = Counter()
        self.checkins: Counter[str] = Counter()
        self.denials: Counter[str] = Counter()
        self.denial_times: list[int] = []
        self.queued = 0
        self.dequeued: Counter[str] = Counter()
        self.waits = 0
        self.wait_sum_ms = 0
        self.wait_max_ms = 0
        self.seats: str | None = None
        self.seat_changes: list[tuple[int, str]] = []

    def held(self, start: int | None, end: int, user: str, host: str) -> None:
        self.starts.append(start)
        self.ends.append(end)
        self.users.append(user)
        self.hosts.append(host)


class UsageAccumulator:
    """Fold records, in log order, into per-feature usage (see the module docstring).

    Records at or after ``until_ms`` are ignored.  ``features`` limits the
    report to those names.
    """

    def __init__(
        self,
        *,
        since_ms: int | None = None,
        until_ms: int | None = None,
        features: Collection[str] | None = None,
    ) -> None:
        if since_ms is not None and until_ms is not None and until_ms <= since_ms:
            raise ValueError("until must be after since")
        self.since_ms = since_ms
        self.until_ms = until_ms
        self.only = frozenset(features) if features else None
        self.first_ms: int | None = None
        self.last_ms: int | None = None
        self.records = 0
        self._tallies: dict[str, _Tally] = {}
        self._open: dict[str, tuple[int, str, str, str]] = {}  # lease → start, feature, user, host
        self._events: Counter[str] = Counter()

    def _tally(self, feature: str) -> _Tally | None:
        if self.only is not None and feature not in self.only:
            return None
        tally = self._tallies.get(feature)
        if tally is None:
            tally = self._tallies[feature] = _Tally()
        return tally

    def add(self, record: Record) -> None:
        """Fold in one record; raises :class:`RecordError` if a needed field is bad."""
        when, kind, fields = record
        if self.first_ms is None or when < self.first_ms:
            self.first_ms = when
        if self.last_ms is None or when > self.last_ms:
            self.last_ms = when
        if self.until_ms is not None and when >= self.until_ms:
            return
        since = self.since_ms
        in_window = since is None or when >= since
        try:
            if kind == "CHECKOUT":
                self._checkout(when, fields, in_window)
            elif kind == "CHECKIN":
                self._checkin(when, fields, in_window)
            elif kind == "START":
                for name in fields.get("features", "").split(","):
                    if name:
                        self._tally(name)  # licensed but perhaps never used: a row of zeros
                if in_window:
                    self._events[kind] += 1
            elif not in_window:
                return
            elif kind == "DENIAL":
                tally = self._tally(fields["feature"])
                if tally is not None:
                    tally.denials[fields.get("reason", "")] += 1
                    tally.denial_times.append(when)
            elif kind == "QUEUE":
                tally = self._tally(fields["feature"])
                if tally is not None:
                    tally.queued += 1
            elif kind == "DEQUEUE":
                tally = self._tally(fields["feature"])
                if tally is not None:
                    tally.dequeued[fields.get("outcome", "")] += 1
                    waited = fields.get("waited_ms")
                    if waited is not None:
                        wait_ms = _count(waited, "waited_ms")
                        tally.waits += 1
                        tally.wait_sum_ms += wait_ms
                        tally.wait_max_ms = max(tally.wait_max_ms, wait_ms)
            elif kind == "LOST":
                self._events[kind] += _count(fields.get("count", "0"), "count")
            elif kind in COUNTED_KINDS:
                self._events[kind] += 1
        except KeyError as exc:
            raise RecordError(f"{kind} record without {exc.args[0]}=") from None
        self.records += in_window

    def _checkout(self, when: int, fields: dict[str, str], in_window: bool) -> None:
        lease = fields["lease"]
        feature = fields["feature"]
        tally = self._tally(feature)
        if tally is None:
            return
        seats = fields.get("seats")
        if seats is not None and seats != tally.seats:
            tally.seats = seats
            tally.seat_changes.append((when, seats))
        if lease in self._open:
            return
        user = fields.get("user", "")
        host = fields.get("host", "")
        self._open[lease] = (when, feature, user, host)
        if in_window:
            tally.checkouts += 1
            tally.user_checkouts[user] += 1
            tally.host_checkouts[host] += 1

    def _checkin(self, when: int, fields: dict[str, str], in_window: bool) -> None:
        lease = fields["lease"]
        opened = self._open.pop(lease, None)
        start: int | None
        if opened is not None:
            start, feature, user, host = opened
        else:
            feature = fields["feature"]
            user = fields.get("user", "")
            host = fields.get("host", "")
            held = fields.get("held_ms")
            start = when - _count(held, "held_ms") if held is not None else None
        tally = self._tally(feature)
        if tally is None:
            return
        if in_window:
            tally.checkins[fields.get("reason", "")] += 1
            tally.held(start, when, user, host)
        # else: it ended before the window and adds nothing to it.

    def finish(
        self,
        *,
        covered: tuple[int | None, int | None] | None = None,
        top: int = DEFAULT_TOP,
        series: bool = False,
    ) -> UsageReport:
        """The report.  ``covered`` is (first, last) record time of the whole
        log when records were skipped before reaching :meth:`add`; ``series``
        adds what plots need."""
        first, last = covered if covered is not None else (self.first_ms, self.last_ms)
        if first is None or last is None:
            return UsageReport(None, None, [], {})
        start = first if self.since_ms is None else max(self.since_ms, first)
        end = last if self.until_ms is None else min(self.until_ms, last)
        end = max(start, end)
        still_held: dict[str, list[tuple[int, str, str]]] = {}
        for lease_start, feature, user, host in self._open.values():
            still_held.setdefault(feature, []).append((lease_start, user, host))
        features = [
            _feature_usage(name, tally, still_held.get(name, []), start, end, top, series)
            for name, tally in sorted(self._tallies.items())
        ]
        return UsageReport(start, end, features, dict(self._events), records=self.records)


def _count(text: str, key: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise RecordError(f"{key}={text!r} is not a whole number") from None
    if value < 0:
        raise RecordError(f"{key}={text!r} is negative")
    return value


def _feature_usage(
    name: str,
    tally: _Tally,
    still_held: list[tuple[int, str, str]],
    start: int,
    end: int,
    top: int,
    series: bool,
) -> FeatureUsage:
    starts: list[int] = []
    ends: list[int] = []
    user_ms: Counter[str] = Counter()
    host_ms: Counter[str] = Counter()
    held = zip(tally.starts, tally.ends, tally.users, tally.hosts, strict=True)
    open_at_end = ((lease_start, end, user, host) for lease_start, user, host in still_held)
    for lease_start, lease_end, user, host in chain(held, open_at_end):
        s = start if lease_start is None or lease_start < start else lease_start
        e = end if lease_end > end else lease_end
        if e <= s:
            continue
        starts.append(s)
        ends.append(e)
        user_ms[user] += e - s
        host_ms[host] += e - s
    starts.sort()
    ends.sort()
    seat_ms = sum(user_ms.values())
    peak, peak_at, times, levels = _sweep(starts, ends, series)
    window = end - start
    licensed_changes = [(when, _seats(text)) for when, text in tally.seat_changes]
    return FeatureUsage(
        feature=name,
        licensed_seats=_seats(tally.seats),
        uncounted=tally.seats == UNCOUNTED,
        peak_seats=peak,
        peak_at_ms=peak_at,
        average_seats=seat_ms / window if window > 0 else 0.0,
        seat_hours=seat_ms / HOUR_MS,
        checkouts=tally.checkouts,
        checkins=dict(tally.checkins),
        denials=dict(tally.denials),
        queued=tally.queued,
        dequeued=dict(tally.dequeued),
        queue_wait_avg_s=tally.wait_sum_ms / tally.waits / 1000 if tally.waits else None,
        queue_wait_max_s=tally.wait_max_ms / 1000 if tally.waits else None,
        top_users=_top(user_ms, tally.user_checkouts, top),
        top_hosts=_top(host_ms, tally.host_checkouts, top),
        step_times=times,
        step_levels=levels,
        denial_times=list(tally.denial_times) if series else [],
        licensed_changes=licensed_changes if series else [],
    )


def _sweep(
    starts: list[int], ends: list[int], series: bool
) -> tuple[int, int | None, list[int], list[int]]:
    """Peak, its first moment, and (if ``series``) the step function of seats in use.

    ``starts`` and ``ends`` are sorted; every end is after its own start, so
    the level never goes below zero.  Ends at the same instant as starts come
    first (half-open intervals).
    """
    level = peak = 0
    peak_at: int | None = None
    times: list[int] = []
    levels: list[int] = []
    j = 0
    n_ends = len(ends)
    for s in starts:
        while j < n_ends and ends[j] <= s:
            level -= 1
            if series:
                _step(times, levels, ends[j], level)
            j += 1
        level += 1
        if series:
            _step(times, levels, s, level)
        if level > peak:
            peak, peak_at = level, s
    if series:
        while j < n_ends:
            level -= 1
            _step(times, levels, ends[j], level)
            j += 1
    return peak, peak_at, times, levels


def _step(times: list[int], levels: list[int], when: int, level: int) -> None:
    if times and times[-1] == when:
        levels[-1] = level
    else:
        times.append(when)
        levels.append(level)


def _top(seat_ms: Counter[str], checkouts: Counter[str], top: int) -> list[Share]:
    names = set(seat_ms) | set(checkouts)
    best = heapq.nsmallest(top, names, key=lambda name: (-seat_ms[name], -checkouts[name], name))
    return [Share(name, seat_ms[name] / HOUR_MS, checkouts[name]) for name in best]


def _seats(text: str | None) -> int | None:
    if text is None or not text.isdigit():
        return None
    return int(text)
