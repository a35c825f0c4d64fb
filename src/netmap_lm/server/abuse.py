"""The abuse monitor (SPEC §8): unusual patterns, counted and listed.

Pure, with ``now`` (wall seconds, for people) passed in.  Each kind of event
is counted per key (address, host or user) in a sliding window; when a count
reaches its threshold inside the window, a *finding* is recorded (or its
count raised).  Findings are what ``netmap-lm audit`` lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WINDOW_SECONDS = 60.0  # every threshold below counts events inside one minute
DENIAL_BURST = 20  # denials to one address: a script probing features or seats
BAD_MAC = 10  # UDP heartbeats whose MAC fails: forgery attempts
UNKNOWN_LEASE = 10  # heartbeats or checkins for leases that do not exist: guessing
USERS_PER_HOST = 5  # distinct user names from one host: one machine pretending to be many
CHURN = 30  # checkout+checkin pairs from one host: license sharing by rapid cycling
HOSTID_MISMATCH = 3  # node-locked checkouts from a host with another host id
NOT_ALLOWED = 10  # connections from outside the allow list
RATE_LIMITED = 1  # any request over the rate budget is worth a line
MAX_FINDINGS = 1000  # findings kept; the oldest go first
MAX_TRACKED = 10_000  # (kind, address) windows kept: spoofed UDP sources must not grow memory

THRESHOLDS = {
    "denial_burst": DENIAL_BURST,
    "bad_mac": BAD_MAC,
    "unknown_lease": UNKNOWN_LEASE,
    "user_cycling": USERS_PER_HOST,
    "churn": CHURN,
    "hostid_mismatch": HOSTID_MISMATCH,
    "not_allowed": NOT_ALLOWED,
    "rate_limited": RATE_LIMITED,
    "connection_limited": RATE_LIMITED,
}


@dataclass
class Finding:
    kind: str
    address: str
    user: str
    host: str
    first: float
    last: float
    count: int
    detail: str = ""

    def view(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "address": self.address,
            "user": self.user,
            "host": self.host,
            "first": int(self.first * 1000),
            "last": int(self.last * 1000),
            "count": self.count,
            "detail": self.detail,
        }


@dataclass
class AbuseMonitor:
    window: float = WINDOW_SECONDS
    findings: dict[tuple[str, str, str, str], Finding] = field(default_factory=dict)
    _events: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # [start, count]
    _users: dict[str, dict[str, float]] = field(default_factory=dict)
    _open: dict[str, float] = field(default_factory=dict)

    def _count(self, kind: str, key: str, now: float) -> int:
        """Events of ``kind`` from ``key`` in the current window.

        A window opens at the first event and lasts ``window`` seconds (a
        fixed window: two floats per key, so floods from many spoofed
        addresses cost little memory; ``MAX_TRACKED`` bounds the keys)."""
        entry = self._events.get((kind, key))
        if entry is None or now - entry[0] > self.window:
            if entry is None and len(self._events) >= MAX_TRACKED:
                self._shed(now)
            self._events[(kind, key)] = [now, 1]
            return 1
        entry[1] += 1
        return int(entry[1])

    def _event(
        self,
        kind: str,
        now: float,
        *,
        address: str = "",
        user: str = "",
        host: str = "",
        key: str | None = None,
        detail: str = "",
        reached: bool = False,
    ) -> Finding | None:
        if not reached:
            count = self._count(kind, key if key is not None else address, now)
            if count < THRESHOLDS[kind]:
                return None
        finding_key = (kind, address, user, host)
        finding = self.findings.get(finding_key)
        if finding is None:
            if len(self.findings) >= MAX_FINDINGS:
                oldest = min(self.findings, key=lambda k: self.findings[k].last)
                del self.findings[oldest]
            finding = Finding(kind, address, user, host, now, now, 0, detail)
            self.findings[finding_key] = finding
            new = True
        else:
            new = False
        finding.count += 1
        finding.last = now
        finding.detail = detail or finding.detail
        return finding if new else None

    # Each returns the finding when one is first recorded (to be logged), else None.

    def denial(self, now: float, address: str, reason: str) -> Finding | None:
        return self._event("denial_burst", now, address=address, detail=f"last: {reason}")

    def bad_mac(self, now: float, address: str) -> Finding | None:
        return self._event("bad_mac", now, address=address)

    def unknown_lease(self, now: float, address: str) -> Finding | None:
        return self._event("unknown_lease", now, address=address)

    def not_allowed(self, now: float, address: str) -> Finding | None:
        return self._event("not_allowed", now, address=address)

    def rate_limited(self, now: float, address: str) -> Finding | None:
        return self._event("rate_limited", now, address=address)

    def connection_limited(self, now: float, address: str, why: str) -> Finding | None:
        return self._event("connection_limited", now, address=address, detail=why)

    def hostid_mismatch(self, now: float, address: str, user: str, host: str) -> Finding | None:
        return self._event("hostid_mismatch", now, address=address, user=user, host=host)

    def checkout(
        self, now: float, address: str, user: str, host: str, lease_id: str
    ) -> Finding | None:
        self._open[lease_id] = now
        users = self._users.setdefault(host, {})
        users[user] = now
        if len(users) < USERS_PER_HOST:
            return None
        for name in [u for u, t in users.items() if t < now - self.window]:
            del users[name]
        if len(users) >= USERS_PER_HOST:
            finding = self.findings.get(("user_cycling", address, "", host))
            if finding is not None:  # known: count it, without rebuilding the detail
                finding.count += 1
                finding.last = now
                return None
            return self._event(
                "user_cycling",
                now,
                address=address,
                host=host,
                reached=True,
                detail=f"{len(users)} users: " + ", ".join(sorted(users)[:10]),
            )
        return None

    def checkin(self, now: float, address: str, host: str, lease_id: str) -> Finding | None:
        started = self._open.pop(lease_id, None)
        if started is None or now - started > self.window:
            return None
        return self._event("churn", now, address=address, host=host, key=host)

    def _shed(self, now: float) -> None:
        """Too many addresses in play (spoofed UDP sources): forget the stale
        windows, then, if need be, the quietest half."""
        self.prune(now)
        if len(self._events) >= MAX_TRACKED:
            # Dicts keep insertion order: the first half are the longest-known keys.
            for key in list(self._events)[: len(self._events) // 2]:
                del self._events[key]

    def prune(self, now: float) -> None:
        """Forget event windows and lease starts older than the window."""
        cutoff = now - self.window
        for key in [k for k, entry in self._events.items() if entry[0] < cutoff]:
            del self._events[key]
        for lease_id in [k for k, t in self._open.items() if t < cutoff]:
            del self._open[lease_id]
        for host in [
            h for h, users in self._users.items() if all(t < cutoff for t in users.values())
        ]:
            del self._users[host]

    def list(self) -> list[Finding]:
        return sorted(self.findings.values(), key=lambda f: f.last, reverse=True)
