"""The checkout queue (SPEC §11 ``checkout --wait``): first come, first served.

A checkout that asks to ``wait`` and finds no free seat joins the queue of
its feature and is told its position.  Whenever a seat frees, the server
offers it to the waiters in order.  A waiter that disconnects or whose wait
runs out leaves at once, so it never blocks the ones behind it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netmap_lm.protocol import messages


@dataclass(eq=False)
class Waiter:
    request: messages.Checkout
    session: Any  # the tcp.Session to answer on
    since_ms: int
    timer: Any = None  # asyncio.TimerHandle of the wait deadline
    position: int = 0  # last position told to the client


@dataclass
class WaitQueue:
    _by_feature: dict[str, list[Waiter]] = field(default_factory=dict)

    def add(self, waiter: Waiter) -> int:
        """Queue a waiter; its 1-based position."""
        line = self._by_feature.setdefault(waiter.request.feature, [])
        line.append(waiter)
        return len(line)

    def remove(self, waiter: Waiter) -> None:
        line = self._by_feature.get(waiter.request.feature, [])
        if waiter in line:
            line.remove(waiter)
        if not line:
            self._by_feature.pop(waiter.request.feature, None)

    def waiters(self, feature: str) -> list[Waiter]:
        return list(self._by_feature.get(feature, ()))

    def features(self) -> list[str]:
        return list(self._by_feature)

    def of_session(self, session: Any) -> list[Waiter]:
        return [w for line in self._by_feature.values() for w in line if w.session is session]
