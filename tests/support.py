"""Test support: keys and licenses made in a temporary directory, and real
``netmap-lm serve`` processes on 127.0.0.1 that are always killed by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netmap_lm.licensing import keys, licensefile
from netmap_lm.server.identity import init_state

NETMAP_LM = [sys.executable, "-m", "netmap_lm"]
START_TIMEOUT = 15.0  # seconds for a server process to accept connections


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1."""
    for _ in range(50):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        port = tcp.getsockname()[1]
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            tcp.close()
            udp.close()
        return port
    raise RuntimeError("no free port")


@dataclass
class Kit:
    """A vendor, a server identity and a license file, all under ``root``."""

    root: Path
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.vendor_dir = self.root / "vendor"
        self.state = self.root / "state"
        self.license = self.root / "license.lic"
        keys.generate_pair(self.vendor_dir, "vendor", "test vendor key")
        self.vendor_key = keys.read_private(self.vendor_dir / "vendor.key")
        self.vendor_pub = self.vendor_dir / "vendor.pub"
        self.identity, _ = init_state(self.state)

    def server_line(self, **extra: Any) -> str:
        fields = {"host": "127.0.0.1", "port": self.port, "key": self.identity.public_text}
        fields.update(extra)
        return licensefile.sign_line(self.vendor_key, "SERVER", fields)

    def feature_line(self, name: str = "netmap", **extra: Any) -> str:
        fields: dict[str, Any] = {
            "name": name,
            "version": "5.0",
            "seats": 3,
            "type": "floating",
            "expires": "permanent",
            "id": f"{name}-{os.urandom(3).hex()}",
        }
        fields.update(extra)
        return licensefile.sign_line(self.vendor_key, "FEATURE", fields)

    def write_license(self, features: Iterable[str] | None = None) -> Path:
        lines = [self.server_line(), *(features if features is not None else [self.feature_line()])]
        self.license.write_text("\n".join(lines) + "\n")
        return self.license

    @property
    def servers(self) -> str:
        return f"{self.port}@127.0.0.1"

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            NETMAP_LM_SERVERS=self.servers,
            NETMAP_LM_VENDOR_KEY=str(self.vendor_pub),
            XDG_DATA_HOME=str(self.root / "xdg"),
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def cli(
        self,
        *args: str,
        timeout: float = 30.0,
        env: dict[str, str] | None = None,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``netmap-lm ARGS`` to completion."""
        return subprocess.run(
            [*NETMAP_LM, *args],
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    def spawn(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start ``netmap-lm ARGS`` in the background (the caller kills it)."""
        return subprocess.Popen(
            [*NETMAP_LM, *args],
            env=env or self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


class ServerProcess:
    """A real ``netmap-lm serve`` on 127.0.0.1, started and killed by PID."""

    def __init__(
        self, kit: Kit, *extra: str, heartbeat_interval: float = 1.0, lease_timeout: float = 4.0
    ) -> None:
        self.kit = kit
        self.args = [
            "serve",
            "--license",
            str(kit.license),
            "--state",
            str(kit.state),
            "--port",
            str(kit.port),
            "--bind",
            "127.0.0.1",
            "--heartbeat-interval",
            str(heartbeat_interval),
            "--lease-timeout",
            str(lease_timeout),
            *extra,
        ]
        self.log_path = kit.root / f"server-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [*NETMAP_LM, *self.args], env=self.kit.env(), stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.kit.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server did not start in {START_TIMEOUT} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stop(self) -> None:
        """A clean stop (SIGTERM), as an administrator would do it."""
        self.kill(signal.SIGTERM)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


class LineSocket:
    """A TCP socket read line by line, for tests that speak the protocol by hand."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def read_line(self) -> bytes | None:
        """The next line (without newline), or ``None`` when the peer closed."""
        while b"\n" not in self.buffer:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def close(self) -> None:
        self.sock.close()


def kill_quietly(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def wait_for(predicate: Any, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
