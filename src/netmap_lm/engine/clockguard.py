"""Clock rollback detection (SPEC §8).

The server keeps the latest wall-clock time it has ever seen (persisted in
its state).  A clock that reads more than ``tolerance`` before that time has
been set back — the classic way to stretch an expiring license — and
time-limited features are refused with ``CLOCK_TAMPERED`` until the clock is
right again.  Lease timing never uses the wall clock (it is monotonic), so a
rollback cannot keep a dead lease alive either.
"""

from __future__ import annotations

DEFAULT_TOLERANCE_MS = 6 * 3600 * 1000  # 6 hours: DST and NTP slews are far smaller


class ClockGuard:
    def __init__(self, latest_ms: int | None, tolerance_ms: int = DEFAULT_TOLERANCE_MS) -> None:
        self.latest_ms = latest_ms or 0
        self.tolerance_ms = tolerance_ms
        self.tampered = False

    def observe(self, now_ms: int) -> bool:
        """Record a reading; True when the clock is behind the latest seen time."""
        if now_ms >= self.latest_ms:
            self.latest_ms = now_ms
            self.tampered = False
        else:
            self.tampered = now_ms < self.latest_ms - self.tolerance_ms
        return self.tampered
