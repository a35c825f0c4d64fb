"""Helpers shared by the integration tests: server status from the test
process, ``netmap-lm run`` holders killed by PID, raw protocol sockets and
small in-thread TCP servers that impersonate or relay a license server."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from netmap_lm import LicenseClient
from support import Kit, LineSocket, kill_quietly, wait_for

HOLDER_START_TIMEOUT = 15.0


# -- server state, asked over the real protocol ---------------------------------------


def status(kit: Kit) -> dict[str, Any]:
    """The server's status reply, fetched in-process (cheaper than the CLI)."""
    client = LicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub), timeout=3.0)
    try:
        return client.status()
    finally:
        client.close()


def feature_status(kit: Kit, name: str = "netmap") -> dict[str, Any]:
    for feature in status(kit)["features"]:
        if feature["name"] == name:
            return feature
    raise AssertionError(f"feature {name!r} not in status")


def in_use(kit: Kit, name: str = "netmap") -> int:
    return int(feature_status(kit, name)["in_use"])


def lease_ids(kit: Kit, name: str = "netmap") -> set[str]:
    return {lease["lease"] for lease in feature_status(kit, name)["leases"]}


def cli_status(kit: Kit) -> dict[str, Any]:
    """``netmap-lm status --json``, as an administrator runs it."""
    result = kit.cli("status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# -- processes killed by PID ------------------------------------------------------


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc), without psutil."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found.extend(int(p) for p in (task / "children").read_text().split())
    return found


def kill_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class Holders:
    """``netmap-lm run FEATURE -- sleep 60`` processes, and their ``sleep``
    children, all killed by PID when the test ends."""

    def __init__(self, kit: Kit) -> None:
        self.kit = kit
        self.procs: list[subprocess.Popen[str]] = []
        self.children: dict[int, int] = {}  # run pid -> sleep pid

    def spawn(self, feature: str = "netmap", *args: str) -> subprocess.Popen[str]:
        proc = self.kit.spawn("run", feature, *args, "--", "sleep", "60")
        self.procs.append(proc)
        return proc

    def wait_running(self, proc: subprocess.Popen[str]) -> int:
        """Wait until the holder has its seat and started its command; the command's pid."""

        def started() -> bool:
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(f"holder exited {proc.returncode}: {out} {err}")
            kids = child_pids(proc.pid)
            if kids:
                self.children[proc.pid] = kids[0]
            return bool(kids)

        assert wait_for(started, HOLDER_START_TIMEOUT, 0.05), "holder did not start its command"
        return self.children[proc.pid]

    def kill9(self, proc: subprocess.Popen[str]) -> None:
        """SIGKILL the holder (the lease holder); its orphaned command is killed too."""
        child = self.children.get(proc.pid)
        if child is None:
            kids = child_pids(proc.pid)
            child = kids[0] if kids else None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        if child is not None:
            kill_pid(child)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                for kid in child_pids(proc.pid):
                    self.children.setdefault(proc.pid, kid)
            kill_quietly(proc)
        for child in self.children.values():
            kill_pid(child)


# -- raw protocol ------------------------------------------------------------------


class RawConnection(LineSocket):
    """A TCP connection speaking the line protocol by hand."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        super().__init__(socket.create_connection(("127.0.0.1", port), timeout=timeout))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_json(self, message: Any) -> None:
        self.send(json.dumps(message).encode() + b"\n")

    def read_json(self) -> dict[str, Any] | None:
        line = self.read_line()
        return None if line is None else json.loads(line)

    def hello(self) -> dict[str, Any]:
        self.send_json({"id": 0, "op": "hello", "protocol": 1, "nonce": os.urandom(16).hex()})
        reply = self.read_json()
        assert reply is not None and reply["ok"] is True, reply
        return reply


# -- in-thread TCP servers ------------------------------------------------------------

Handler = Callable[["LineStream"], None]


class LineStream:
    """One accepted connection of a :class:`ThreadServer`, line by line."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")

    def read(self) -> bytes | None:
        line = self.file.readline(1 << 20)
        return line or None

    def read_json(self) -> dict[str, Any] | None:
        line = self.read()
        return None if line is None else json.loads(line)

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def write_json(self, message: dict[str, Any]) -> None:
        self.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")


class ThreadServer:
    """A TCP server on 127.0.0.1 (free port) running ``handler`` per connection
    in daemon threads; stopped by :meth:`close`."""

    def __init__(self, handler: Handler) -> None:
        outer = self

        class _Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                stream = LineStream(self.request)
                try:
                    handler(stream)
                except (OSError, ValueError) as exc:
                    outer.errors.append(exc)

        class _Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.errors: list[BaseException] = []
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def servers(self) -> str:
        return f"{self.port}@127.0.0.1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@contextlib.contextmanager
def thread_server(handler: Handler) -> Iterator[ThreadServer]:
    server = ThreadServer(handler)
    try:
        yield server
    finally:
        server.close()


def relay(port: int) -> socket.socket:
    """A connection to the genuine server, for relaying proxies."""
    return socket.create_connection(("127.0.0.1", port), timeout=5.0)


def elapsed_since(start: float) -> float:
    return time.monotonic() - start
