"""Everything ``netmap-lm serve`` is told, checked once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from netmap_lm import DEFAULT_PORT
from netmap_lm.engine.clockguard import DEFAULT_TOLERANCE_MS
from netmap_lm.server.budgets import Limits

DEFAULT_HEARTBEAT_INTERVAL = 30.0  # seconds between client heartbeats
DEFAULT_LEASE_TIMEOUT = 120.0  # seconds without heartbeat before a seat is reclaimed
HANDSHAKE_TIMEOUT = 10.0  # seconds a new connection has to send hello
IDLE_TIMEOUT = 600.0  # seconds a connection may stay silent; clients reconnect on demand
MAX_OUTPUT_BYTES = 1 << 20  # bytes queued to one client before it counts as not reading


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
        # Lease terms travel as whole seconds (grants are signed, and signed
        # objects hold no floats): at least 1 s, and the timeout above the interval.
        if not self.heartbeat_interval >= 1 or not round(self.heartbeat_interval) < round(
            self.lease_timeout
        ):
            raise ValueError(
                "--heartbeat-interval must be at least 1 s and --lease-timeout at least 1 s "
                f"longer (whole seconds; got {self.heartbeat_interval} and {self.lease_timeout})"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"--port {self.port} is not a port number")
