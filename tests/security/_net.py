"""Helpers for the security tests: sockets from chosen loopback addresses, a raw
protocol session (with the admin proof), server memory, a relaying man in the
middle, and a license server run in-process with an injected wall clock.

Linux routes all of 127.0.0.0/8 to the loopback interface, so binding a client
socket to 127.0.0.N before connecting gives the server a distinct peer address:
per-address budgets and the allow list can be exercised without a network.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from netmap_lm.licensing import trust
from netmap_lm.server.admin import read_admin_token
from support import Kit, LineSocket, free_port

GENUINE = "127.0.0.1"  # the well-behaved client's address in every test


def source(n: int) -> str:
    """The n-th loopback source address (127.0.0.n)."""
    assert 2 <= n <= 254
    return f"127.0.0.{n}"


def connect_from(address: str, port: int, timeout: float = 5.0) -> socket.socket:
    """A TCP connection to the server on 127.0.0.1:port from ``address``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.bind((address, 0))
        sock.connect(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


def admin_key(kit: Kit) -> bytes:
    return read_admin_token(kit.state / "admin.token")


class RawSession(LineSocket):
    """The line protocol by hand, from a chosen source address."""

    def __init__(self, port: int, address: str = GENUINE, timeout: float = 5.0) -> None:
        super().__init__(connect_from(address, port, timeout))
        self.nonce = os.urandom(16).hex()
        self._next = 0

    def __enter__(self) -> RawSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, message: dict[str, Any]) -> None:
        self.sock.sendall(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    def read(self) -> dict[str, Any] | None:
        """The next reply line, or ``None`` when the server closed the connection."""
        line = self.read_line()
        if line is None:
            return None
        reply = json.loads(line)
        assert isinstance(reply, dict), line
        return reply

    def request(self, message: dict[str, Any]) -> dict[str, Any] | None:
        self._next += 1
        self.send({**message, "id": self._next})
        return self.read()

    def hello(self) -> dict[str, Any] | None:
        return self.request(
            {"op": "hello", "protocol": 1, "nonce": self.nonce, "client": "security-test"}
        )

    def admin(self, op: str, key: bytes, **fields: Any) -> dict[str, Any] | None:
        return self.request({"op": op, "admin": trust.admin_proof(key, self.nonce), **fields})


def audit(kit: Kit, address: str = GENUINE) -> dict[str, Any]:
    """The server's audit reply (findings and counters), asked from ``address``."""
    with RawSession(kit.port, address) as session:
        hello = session.hello()
        assert hello is not None and hello["ok"], hello
        reply = session.admin("audit", admin_key(kit))
    assert reply is not None and reply["ok"], reply
    return reply


def findings(reply: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [f for f in reply["findings"] if f["kind"] == kind]


def vm_rss(pid: int) -> int:
    """Resident memory of a process, in bytes (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


# -- a man in the middle -------------------------------------------------------------

RequestHook = Callable[[dict[str, Any]], dict[str, Any] | None]
ReplyHook = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


class Mitm:
    """A TCP proxy on 127.0.0.1 between a client and a genuine server that
    decodes every JSON line and lets the test edit it on the fly.

    ``on_request(request)`` returns the request to forward (``None``: answer
    it with ``on_local(request)`` without forwarding); ``on_reply(request,
    reply)`` returns the reply the client gets.  One thread per connection;
    lines are relayed in lock step, as the client library sends them.
    """

    def __init__(
        self,
        upstream_port: int,
        *,
        on_request: RequestHook | None = None,
        on_reply: ReplyHook | None = None,
        on_local: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.upstream_port = upstream_port
        self.on_request = on_request or (lambda request: request)
        self.on_reply = on_reply or (lambda request, reply: reply)
        self.on_local = on_local
        self.seen: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (request, reply sent)
        self.errors: list[BaseException] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)  # the accept loop notices close() within this
        self.port: int = self.listener.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def servers(self) -> str:
        return f"{self.port}@127.0.0.1"

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
        self._conns.append(upstream)
        client_in = conn.makefile("rb")
        server_in = upstream.makefile("rb")
        try:
            while line := client_in.readline(1 << 20):
                request = json.loads(line)
                forwarded = self.on_request(dict(request))
                if forwarded is None:
                    assert self.on_local is not None
                    reply = self.on_local(request)
                else:
                    upstream.sendall(json.dumps(forwarded).encode() + b"\n")
                    answer = server_in.readline(1 << 22)
                    if not answer:
                        return
                    reply = self.on_reply(request, json.loads(answer))
                self.seen.append((request, reply))
                conn.sendall(json.dumps(reply, separators=(",", ":")).encode() + b"\n")
        except (OSError, ValueError) as exc:
            if not self._closed:
                self.errors.append(exc)
        except BaseException as exc:  # an assertion in a hook: report it to the test
            self.errors.append(exc)
        finally:
            with contextlib.suppress(OSError):
                conn.close()
            with contextlib.suppress(OSError):
                upstream.close()

    def ops(self) -> list[str]:
        return [request.get("op", "?") for request, _ in self.seen]

    def close(self) -> None:
        self._closed = True
        self._thread.join(timeout=5)
        self.listener.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()

    def __enter__(self) -> Mitm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- a license server in this process, with an injected wall clock --------------------


class InProcessServer:
    """``LicenseServer(config, wall=...)`` run on an event loop in a thread.

    Used where a test needs to control time (the issue allows an injected
    clock in a lower-level test); everything else runs real processes.
    """

    def __init__(self, kit: Kit, wall: Callable[[], float], **config: Any) -> None:
        from netmap_lm.server.config import ServerConfig

        self.kit = kit
        self.wall = wall
        self.port = free_port()
        self.config = ServerConfig(
            license_path=kit.license,
            state_dir=kit.state,
            vendor_key_path=kit.vendor_pub,
            port=self.port,
            bind="127.0.0.1",
            **config,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._failure: BaseException | None = None

    @property
    def servers(self) -> str:
        return f"{self.port}@127.0.0.1"

    def _run(self) -> None:
        from netmap_lm.server.app import LicenseServer

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._server = LicenseServer(self.config, wall=self.wall)
            await self._server.start()
            self._started.set()
            await self._server.serve_until_stopped()
            await self._server.stop()

        try:
            asyncio.run(main())
        except BaseException as exc:
            self._failure = exc
            self._started.set()

    def start(self) -> InProcessServer:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._started.wait(15), "in-process server did not start"
        if self._failure is not None:
            raise self._failure
        return self

    def stop(self) -> None:
        if self._loop is not None and self._server is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._server.request_stop)
            self._thread.join(timeout=15)
            assert not self._thread.is_alive(), "in-process server did not stop"
        if self._failure is not None:
            raise self._failure

    def __enter__(self) -> InProcessServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def sockets() -> Iterator[list[socket.socket]]:
    """A list the test fills with sockets; all are closed at the end."""
    opened: list[socket.socket] = []
    try:
        yield opened
    finally:
        for sock in opened:
            with contextlib.suppress(OSError):
                sock.close()
