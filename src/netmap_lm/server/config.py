"""Everything ``netmap-lm serve`` is told, checked once at start-up."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from netmap_lm import DEFAULT_PORT
from netmap_lm.engine.clockguard import DEFAULT_TOLERANCE_MS
from netmap_lm.licensing.options import MAX_TIMEOUT_SECONDS
from netmap_lm.server.budgets import Limits

DEFAULT_HEARTBEAT_INTERVAL = 30.0  # seconds between client heartbeats
DEFAULT_LEASE_TIMEOUT = 120.0  # seconds without heartbeat before a seat is reclaimed
HANDSHAKE_TIMEOUT = 10.0  # seconds a new connection has to send hello
IDLE_TIMEOUT = 600.0  # seconds a connection may stay silent; clients reconnect on demand
MAX_OUTPUT_BYTES = 1 << 20  # bytes queued to one client before it counts as not reading
HOUR_MS = 3_600_000  # --clock-tolerance is given in hours, the clock guard counts milliseconds
MAX_CLOCK_TOLERANCE_HOURS = 366 * 24  # a year: any wider and no rollback is ever caught


def clock_tolerance_ms(hours: float) -> int:
    """``--clock-tolerance`` in milliseconds; ``ValueError`` names the option."""
    _check_range("--clock-tolerance", hours, 0, MAX_CLOCK_TOLERANCE_HOURS, "hours")
    return round(hours * HOUR_MS)


@dataclass(frozen=True)
class ServerConfig:
    license_path: Path
    state_dir: Path
    vendor_key_path: Path
    port: int = DEFAULT_PORT
    bind: str = "0.0.0.0"
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL
    lease_timeout: float = DEFAULT_LEASE_TIMEOUT
    handshake_timeout: float = HANDSHAKE_TIMEOUT
    idle_timeout: float = IDLE_TIMEOUT
    udp: bool = True
    options_path: Path | None = None  # FlexLM-style options file (docs/administration.md)
    allow: tuple[str, ...] = ()  # client networks (CIDR); empty: everybody
    tls_cert: Path | None = None
    tls_key: Path | None = None
    admin_loopback: bool = False  # admin operations from loopback need no credential
    limits: Limits = field(default_factory=Limits)
    clock_tolerance_ms: int = DEFAULT_TOLERANCE_MS

    def check(self) -> None:
        """Raise ``ValueError`` (and nothing else) naming the command-line option
        of the first setting out of range; NaN and infinities never pass."""
        # Lease terms travel as whole seconds (grants are signed, and signed
        # objects hold no floats): at least 1 s, and the timeout above the interval.
        _check_range("--heartbeat-interval", self.heartbeat_interval, 1, MAX_TIMEOUT_SECONDS)
        _check_range("--lease-timeout", self.lease_timeout, 1, MAX_TIMEOUT_SECONDS)
        if not round(self.heartbeat_interval) < round(self.lease_timeout):
            raise ValueError(
                "--lease-timeout must be at least 1 s longer than --heartbeat-interval "
                f"(whole seconds; got {self.lease_timeout} and {self.heartbeat_interval})"
            )
        for option, seconds in (
            ("--handshake-timeout", self.handshake_timeout),
            ("--idle-timeout", self.idle_timeout),
        ):
            if not (math.isfinite(seconds) and seconds > 0):
                raise ValueError(f"{option} must be a number of seconds above 0 (got {seconds})")
        rate = self.limits.requests_per_second
        if not (math.isfinite(rate) and rate >= 0):
            raise ValueError(
                f"--rate-limit must be a number of requests per second, 0 for no limit (got {rate})"
            )
        for option, count in (
            ("--max-connections", self.limits.max_connections),
            ("--max-connections-per-address", self.limits.max_per_address),
        ):
            if not count >= 1:
                raise ValueError(f"{option} must be a whole number of at least 1 (got {count})")
        if not 0 <= self.clock_tolerance_ms <= MAX_CLOCK_TOLERANCE_HOURS * HOUR_MS:
            raise ValueError(
                f"--clock-tolerance must be from 0 to {MAX_CLOCK_TOLERANCE_HOURS} hours "
                f"(got {self.clock_tolerance_ms / HOUR_MS})"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"--port {self.port} is not a port number")


def _check_range(option: str, value: float, low: float, high: float, unit: str = "seconds") -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{option} must be a number of {unit} from {low} to {high} (got {value})")
