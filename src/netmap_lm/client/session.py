"""One verified TCP session with one server: connect, ``hello``, requests.

Blocking, with timeouts; shared by the synchronous client and the CLI.
"""

from __future__ import annotations

import _socket
import contextlib
import os
from collections.abc import Callable
from typing import Any

from netmap_lm import PROTOCOL_VERSION, __version__
from netmap_lm.encoding import b64u_decode, compact_json, parse_json
from netmap_lm.licensing import trust

MAX_REPLY_BYTES = 1 << 22  # bytes; a status reply of a big server is well under this


class SessionError(Exception):
    """The server could not be reached, or the connection broke."""


class Refused(SessionError):
    """The server refused this client before closing (allow list, budgets)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


REFUSALS = ("NOT_AUTHORIZED", "RATE_LIMITED")  # reasons a server gives as it closes
GIVE_BACK_WAIT = 1.0  # seconds to wait for a grant to give back to a distrusted server


def checkin_for(reply: dict[str, Any]) -> dict[str, Any] | None:
    """The ``checkin`` giving back the seat of a checkout reply we refuse
    (its grant's lease and key), or None when it holds no seat.  The server
    may be genuine but not the one the vendor key names (say, a new identity
    the license file does not list yet): it would keep the seat until the
    lease timeout."""
    grant = reply.get("grant")
    if not isinstance(grant, dict):
        return None
    try:
        lease_id, key = str(grant["lease"]), b64u_decode(str(grant["key"]))
    except (KeyError, ValueError):
        return None
    return {"op": "checkin", "lease": lease_id, "token": trust.lease_token(key, lease_id)}


def reply_to(line: bytes, rid: int) -> dict[str, Any] | None:
    """One line read while waiting for the reply to request ``rid``: that
    reply, or None for a line to pass over (another request's).

    Shared by both clients.  A refusal (``REFUSALS``) raises :class:`Refused`
    whatever its id: the server sends it to the hello, to any later request or
    before any (allow list) and then closes.  Another error without an id
    means the server gave up on the connection (``SessionError``); a line
    that is not a JSON object, ``trust.Untrusted``."""
    try:
        reply = parse_json(line)
    except ValueError:
        raise trust.Untrusted("the server sent something that is not JSON") from None
    if not isinstance(reply, dict):
        raise trust.Untrusted("the server sent something that is not a JSON object")
    if reply.get("ok") is False:
        if reply.get("reason") in REFUSALS:
            raise Refused(str(reply["reason"]), str(reply.get("message", "")))
        if reply.get("id") is None:
            # e.g. the idle timeout, or the server shutting down
            raise SessionError(f"server closed the session: {reply.get('message')}")
    return reply if reply.get("id") == rid else None


class TlsSettings:
    """How a client reaches a TLS server: trust a CA file, or pin one certificate.

    The vendor chain (SPEC §3) is verified inside TLS as well; TLS adds
    confidentiality and hides lease tokens from the network.
    """

    def __init__(self, ca_file: str | None = None, pin_sha256: str | None = None) -> None:
        import ssl  # only when TLS is used (see netmap_lm.client)

        if not ca_file and not pin_sha256:
            raise ValueError("TLS needs a CA file or a certificate pin (SHA-256 hex)")
        self.ca_file = ca_file
        self.pin = pin_sha256.lower().replace(":", "") if pin_sha256 else None
        # Made here, once: a CA file that cannot be used is the user's mistake,
        # to be named now rather than found at every connect as an unreachable server.
        if ca_file:
            try:
                self._context = ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                from netmap_lm import reasons
                from netmap_lm.reasons import LicenseDenied

                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                raise LicenseDenied(
                    reasons.CONFIG_ERROR, f"{ca_file}: cannot read the CA file ({why})"
                ) from None
        else:
            self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self._context.check_hostname = False
            self._context.verify_mode = ssl.CERT_NONE  # the pin is the check
        self._context.minimum_version = ssl.TLSVersion.TLSv1_2

    def wrap(self, address: tuple[str, int], timeout: float) -> Any:
        import hashlib
        import socket
        import ssl

        context = self._context
        try:
            raw = socket.create_connection(address, timeout=timeout)
        except OSError as exc:
            raise SessionError(f"cannot connect ({exc})") from None  # the caller names the server
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock = context.wrap_socket(raw, server_hostname=address[0])
        except ssl.SSLCertVerificationError as exc:
            raw.close()
            raise trust.Untrusted(
                f"TLS certificate does not verify: {exc.verify_message}"
            ) from None
        except (ssl.SSLError, OSError) as exc:
            raw.close()
            raise SessionError(f"TLS handshake with {address[0]} failed ({exc})") from None
        if self.pin:
            cert = sock.getpeercert(binary_form=True) or b""
            if hashlib.sha256(cert).hexdigest() != self.pin:
                sock.close()
                raise trust.Untrusted("TLS certificate does not match the pinned SHA-256")
        return sock


class Session:
    """A connection whose hello verified against the pinned vendor key.

    ``vendor_key`` is that key, or a function giving it, called once the hello
    is on its way: the first key object of a process imports ``cryptography``
    and sets up OpenSSL (tens of milliseconds, most of what a license check
    costs an application at start), which this way overlaps the round trip
    to the server and its work on the hello.

    ``first`` is a request sent in the same write as the hello, so the server
    works on both (a checkout: its fsync) while this side checks the hello,
    one round trip less; :meth:`first_reply` reads its answer.  The request
    goes out before the server is known to be genuine, so it must hold
    nothing a fake server could use (a checkout names only what is on the
    wire anyway).  If the hello does not verify, a grant it got is checked
    in before ``Untrusted`` is raised: the server may be genuine but of
    another key, and would otherwise hold the seat until its lease timeout.
    """

    def __init__(
        self,
        address: tuple[str, int],
        vendor_key: Any,
        timeout: float,
        tls: TlsSettings | None = None,
        first: dict[str, Any] | None = None,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self._sock = tls.wrap(address, timeout) if tls else _connect(address, timeout)
        self._buffer = b""
        self._next_id = 0
        self.nonce = os.urandom(16).hex()
        self._first = first
        try:
            hello_message = {
                "op": "hello",
                "protocol": PROTOCOL_VERSION,
                "nonce": self.nonce,
                "client": f"netmap-lm-py/{__version__}",
            }
            rid = self._send(*((hello_message, first) if first else (hello_message,)))
            if callable(vendor_key):
                vendor_key = vendor_key()
            hello = self._receive(rid)
            if not hello.get("ok"):
                raise trust.Untrusted(
                    f"hello refused: {hello.get('reason')} {hello.get('message')}"
                )
            try:
                self.server_key, _ = trust.verify_hello(
                    hello, self.nonce, vendor_key, PROTOCOL_VERSION
                )
            except trust.Untrusted:
                if first:
                    self._give_back_first()
                raise
        except BaseException:
            self.close()
            raise
        self.hello = hello
        self.server_time_ms: int = hello["time"]

    def first_reply(
        self,
        *,
        wait: float = 0.0,
        on_interim: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """The reply to the ``first`` request (once; as :meth:`request`)."""
        first, self._first = self._first, None
        if first is None:
            raise SessionError("no request was sent with the hello")
        return self._receive(first["id"], wait=wait, on_interim=on_interim)

    def _give_back_first(self) -> None:
        """Best effort, on a server whose hello did not verify: read the reply
        to ``first`` and check in the seat it may have granted."""
        try:
            self._sock.settimeout(min(self.timeout, GIVE_BACK_WAIT))
            message = checkin_for(self.first_reply())
            if message is not None:
                self._send(message)
        except (OSError, SessionError, trust.Untrusted):
            pass

    def request(
        self,
        message: dict[str, Any],
        *,
        wait: float = 0.0,
        on_interim: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Send one request and wait for the reply with the same id.

        With ``wait`` (a queued checkout) the reply may take that much longer,
        and interim replies (``"queued": true``) go to ``on_interim``."""
        return self._receive(self._send(message), wait=wait, on_interim=on_interim)

    def _send(self, *messages: dict[str, Any]) -> int:
        """Send requests in one write, each with a new ``id`` (set in it); the
        first one's id."""
        lines = []
        for message in messages:
            self._next_id += 1
            message["id"] = self._next_id
            lines.append(compact_json(message).encode() + b"\n")
        try:
            self._sock.sendall(b"".join(lines))
        except OSError as exc:
            self.close()
            raise SessionError(f"connection to {self.address[0]} broke ({exc})") from None
        return self._next_id - len(messages) + 1

    def _receive(
        self,
        rid: int,
        *,
        wait: float = 0.0,
        on_interim: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        if wait:
            self._sock.settimeout(self.timeout + wait)
        try:
            while True:
                reply = reply_to(self._read_line(), rid)
                if reply is None:
                    continue
                if reply.get("queued") is True:
                    if on_interim is not None:
                        on_interim(reply)
                    continue
                return reply
        except SessionError:
            self.close()
            raise
        except OSError as exc:
            self.close()
            raise SessionError(f"connection to {self.address[0]} broke ({exc})") from None
        finally:
            if wait:
                with contextlib.suppress(OSError):  # closed above: the error says why
                    self._sock.settimeout(self.timeout)

    def _read_line(self) -> bytes:
        while b"\n" not in self._buffer:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise SessionError(f"{self.address[0]} closed the connection")
            self._buffer += chunk
            if len(self._buffer) > MAX_REPLY_BYTES:
                raise SessionError("reply too long")
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


def _connect(address: tuple[str, int], timeout: float) -> Any:
    host, port = address
    try:
        # An ASCII host as bytes skips the "idna" codec, which costs an
        # application ~3 ms of imports at every start.
        name: str | bytes = host.encode() if host.isascii() else host
        infos = _socket.getaddrinfo(name, port, 0, _socket.SOCK_STREAM)
    except OSError as exc:
        raise SessionError(f"cannot resolve {host} ({exc})") from None
    last: OSError | None = None
    for family, kind, proto, _, addr in infos:
        sock = _socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(addr)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        return sock
    raise SessionError(f"cannot connect ({last})")  # the caller names the server
