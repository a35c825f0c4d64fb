"""The blocking client: ``LicenseClient`` and the ``Lease`` it hands out.

Theory of operation.  :meth:`LicenseClient.checkout` opens a verified
session with the first server of the list that answers (failover), asks for
a seat and verifies the grant (``licensing/trust.py``).  The returned lease
starts a background thread that sends a UDP heartbeat every interval; when
no authenticated ack comes back it falls back to a TCP heartbeat, which also
re-asserts the lease after a server restart or on another server of the
list.  While no server answers the lease stays usable for the license's
``grace`` (at least the lease timeout); after that, or when the server says
the lease is gone, the lease is *lost*: ``on_lost`` is called once and
:attr:`Lease.lost` says why.
"""

from __future__ import annotations

import _socket
import _thread
import contextlib
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from netmap_lm import reasons
from netmap_lm.client import environment
from netmap_lm.client.environment import format_address, parse_servers
from netmap_lm.client.session import Refused, Session, SessionError, TlsSettings, checkin_for
from netmap_lm.encoding import b64u_decode
from netmap_lm.licensing import trust
from netmap_lm.reasons import LicenseDenied

VENDOR_KEY_ENV = "NETMAP_LM_VENDOR_KEY"

UDP_ACK_WAIT = 1.0  # seconds to wait for a UDP ack before falling back to TCP

LostCallback = Callable[["Lease", str, str], None]

_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_NAME_CHARACTERS = _NAME_START | {".", "-"}


def check_request(feature: Any, version: Any) -> None:
    """What a checkout names, checked before anything is sent or a borrow file
    is looked up: a feature name as license files write them, a version of
    dotted numbers (SPEC §4).  Raises ``LicenseDenied`` with ``CONFIG_ERROR``."""
    if not (
        isinstance(feature, str)
        and 0 < len(feature) <= 64
        and feature[0] in _NAME_START
        and _NAME_CHARACTERS.issuperset(feature)
    ):
        raise LicenseDenied(
            reasons.CONFIG_ERROR,
            f"feature {feature!r} is not a feature name: 1 to 64 letters, digits, "
            "'_', '.' and '-', starting with a letter, digit or '_'",
        )
    parts = version.split(".") if isinstance(version, str) else []
    if not 0 < len(parts) <= 4 or not all(
        0 < len(part) <= 6 and part.isascii() and part.isdigit() for part in parts
    ):
        raise LicenseDenied(
            reasons.CONFIG_ERROR,
            f"version {version!r} is not a version: a string of dotted numbers like '5.0'",
        )


def load_vendor_key(source: Any) -> Any:
    """A pinned vendor key: an Ed25519 public key, raw bytes, base64url text,
    or the path of a ``vendor.pub`` file.  Raises ``LicenseDenied`` with
    ``CONFIG_ERROR`` naming the problem."""
    key = read_vendor_key(source)
    return trust.public_key_from_bytes(key) if isinstance(key, bytes) else key


def _not_text(path: str) -> str:
    """What is wrong with a vendor key file that is not UTF-8 (only on error:
    ``licensing.textfile`` is not loaded at every start)."""
    from netmap_lm.licensing import textfile

    try:
        with open(path, "rb") as handle:
            textfile.decode(handle.read(), "a vendor.pub file")
    except textfile.NotText as exc:
        return exc.at(path)
    except OSError as exc:
        return f"{path}: cannot read ({exc})"
    return f"{path}: cannot read (not UTF-8 text)"


def read_vendor_key(source: Any) -> Any:
    """:func:`load_vendor_key`, checked but not yet made a key object: an
    Ed25519 public key as given, else its 32 raw bytes.  (Making the first key
    object of a process imports ``cryptography`` and sets up OpenSSL; a client
    does that while a server works on its hello, ``licensing/trust.py``.)"""
    # A key object exists only if its module is loaded: look, do not import.
    ed25519 = sys.modules.get("cryptography.hazmat.primitives.asymmetric.ed25519")
    if ed25519 is not None and isinstance(source, ed25519.Ed25519PublicKey):
        return source
    if source is None:
        source = os.environ.get(VENDOR_KEY_ENV)
        if not source:
            raise LicenseDenied(
                reasons.CONFIG_ERROR,
                f"no vendor key: pass vendor_key= or set {VENDOR_KEY_ENV} to a vendor.pub file",
            )
    raw: bytes | None = source if isinstance(source, bytes) else None
    where = "vendor key"
    text = ""
    if raw is None:
        text = os.fspath(source)
        if os.path.exists(text):
            where = text
            try:
                with open(text, encoding="utf-8") as handle:
                    # (a byte order mark a Windows editor put first is no part of the key)
                    lines = (ln.strip(" \t\r\n\ufeff") for ln in handle)
                    text = next((ln for ln in lines if ln and ln[0] != "#"), "")
            except OSError as exc:
                raise LicenseDenied(reasons.CONFIG_ERROR, f"{where}: cannot read ({exc})") from None
            except UnicodeDecodeError:
                raise LicenseDenied(reasons.CONFIG_ERROR, _not_text(where)) from None
        try:
            raw = b64u_decode(text.strip())
        except ValueError:
            if where == "vendor key" and not ("=" in text or "+" in text):
                # Not a file, and neither base64url (it has a dot or a slash)
                # nor standard base64: the path of a file that is not there.
                raise LicenseDenied(
                    reasons.CONFIG_ERROR,
                    f"{text}: no such file; pass the vendor.pub your vendor gave you "
                    f"(vendor_key= or {VENDOR_KEY_ENV})",
                ) from None
            raw = b""
    if len(raw) != 32:
        if text.startswith("-----BEGIN") and "PRIVATE KEY" in text:
            raise LicenseDenied(
                reasons.CONFIG_ERROR,
                f"{where}: this is a private key; pin the public key (the vendor.pub "
                "beside it), and never ship or install a private key with an application",
            )
        raise LicenseDenied(
            reasons.CONFIG_ERROR,
            f"{where}: not an Ed25519 public key "
            "(expected a vendor.pub file or its base64url line)",
        )
    return raw


class ClientSettings:
    """What both clients know before they connect: servers, the pinned vendor
    key, and who is asking (SPEC §9; the OS's values unless given)."""

    def __init__(
        self,
        servers: str | None = None,
        vendor_key: Any = None,
        *,
        user: str | None = None,
        host: str | None = None,
        display: str | None = None,
        project: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.servers = parse_servers(servers)
        self._vendor_key: Any = read_vendor_key(vendor_key)  # a key object when first used
        self._vendor_key_given = vendor_key  # named when a server does not verify
        self.user = user or environment.current_user()
        self.host = host or environment.current_host()
        self.display = environment.current_display() if display is None else display
        self.project = environment.current_project() if project is None else project
        self._hostid: str | None = None  # read when first needed (node-locked, borrow)
        self.timeout = timeout

    def checkout_request(self, feature: str, version: str, *, hostid: bool) -> dict[str, Any]:
        """A ``checkout`` request for this client; with ``hostid`` its host ids
        are read if need be, else sent only when already known."""
        check_request(feature, version)
        return {
            "op": "checkout",
            "feature": feature,
            "version": version,
            "user": self.user,
            "host": self.host,
            "display": self.display,
            "pid": os.getpid(),
            "project": self.project,
            "hostid": self.hostid if hostid else (self._hostid or ""),
        }

    def verified_grant(
        self, reply: dict[str, Any], session: Any, request: dict[str, Any]
    ) -> dict[str, Any]:
        """The grant of a checkout reply, checked against the pinned vendor key
        and the session it came in (``trust.verify_grant``); raises ``Untrusted``."""
        return trust.verify_grant(
            reply,
            nonce=session.nonce,
            server_key=session.server_key,
            vendor_key=self.vendor_key,
            request=request,
            hello_time_ms=session.server_time_ms,
        )

    def not_trusted(self, why: str) -> LicenseDenied:
        """``SERVER_NOT_TRUSTED`` saying why, and which vendor key it was checked
        against (the one a server's lines must be signed by: a wrong key given
        looks like an impostor)."""
        given = self._vendor_key_given
        if given is None:
            pinned = f"{os.environ.get(VENDOR_KEY_ENV, '')} from {VENDOR_KEY_ENV}"
        elif isinstance(given, str | os.PathLike) and os.path.exists(given):
            pinned = os.fspath(given)
        else:
            pinned = "the one given"
        return LicenseDenied(reasons.SERVER_NOT_TRUSTED, f"{why} (pinned vendor key: {pinned})")

    @property
    def vendor_key(self) -> Any:
        """The pinned vendor key, an Ed25519 public key."""
        if isinstance(self._vendor_key, bytes):
            self._vendor_key = trust.public_key_from_bytes(self._vendor_key)
        return self._vendor_key

    @property
    def hostid(self) -> str:
        """This machine's host ids, comma-separated (read once, when first needed)."""
        if self._hostid is None:
            self._hostid = environment.current_host_ids()
        return self._hostid


class LicenseClient(ClientSettings):
    """Checks licenses out of a netmap_lm server (SPEC §9)."""

    def __init__(
        self,
        servers: str | None = None,
        vendor_key: Any = None,
        *,
        user: str | None = None,
        host: str | None = None,
        display: str | None = None,
        project: str | None = None,
        timeout: float = 5.0,
        tls: TlsSettings | None = None,
    ) -> None:
        super().__init__(
            servers,
            vendor_key,
            user=user,
            host=host,
            display=display,
            project=project,
            timeout=timeout,
        )
        self.tls = tls
        self._session: Session | None = None
        self._lock = _thread.allocate_lock()
        self._leases: list[Lease] = []  # checked out and not yet checked in

    # -- sessions ---------------------------------------------------------------

    def _connect(self, first: dict[str, Any] | None = None) -> Session:
        """A new session with the first server that answers, ``first`` sent
        with its hello (``Session``)."""
        untrusted: list[str] = []
        unreachable: list[str] = []
        for address in self.servers:
            try:
                self._session = Session(
                    address, lambda: self.vendor_key, self.timeout, self.tls, first
                )
                return self._session
            except Refused as exc:
                where = format_address(address)
                raise LicenseDenied(exc.reason, f"{where}: {exc.message}") from None
            except trust.Untrusted as exc:
                untrusted.append(f"{format_address(address)}: {exc}")
            except (SessionError, OSError) as exc:
                unreachable.append(f"{format_address(address)}: {exc}")
        if untrusted:
            raise self.not_trusted("; ".join(untrusted))
        raise LicenseDenied(reasons.SERVER_UNREACHABLE, "; ".join(unreachable))

    def _request(
        self,
        message: dict[str, Any] | Callable[[Session], dict[str, Any]],
        *,
        with_hello: bool = False,
        **options: Any,
    ) -> tuple[Session, dict[str, Any]]:
        """Send on the current session; on a broken one, reconnect once and resend.

        ``message`` may be a function of the session, for fields bound to its
        nonce (admin proofs).  ``with_hello``: a new session sends it in the
        hello's write, before the server is verified, so only for a message
        that holds nothing a fake server could use (a checkout, a status;
        never a lease token or an admin proof)."""
        with self._lock:
            for attempt in (1, 2):
                first = dict(message) if with_hello and not callable(message) else None
                if self._session is None:
                    session = self._connect(first)
                else:
                    session, first = self._session, None
                try:
                    if first is not None:
                        return session, session.first_reply(**options)
                    body = message(session) if callable(message) else dict(message)
                    return session, session.request(body, **options)
                except Refused as exc:
                    self._session = None  # the server closed it; resending would be refused too
                    raise LicenseDenied(exc.reason, exc.message) from None
                except SessionError:
                    self._session = None
                    if attempt == 2:
                        raise LicenseDenied(
                            reasons.SERVER_UNREACHABLE,
                            f"lost the connection to {format_address(session.address)}",
                        ) from None
                except trust.Untrusted as exc:
                    self._drop()
                    raise self.not_trusted(str(exc)) from None
        raise AssertionError("unreachable")

    def _drop(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def close(self) -> None:
        """Check in every lease still held, then close the connection."""
        for lease in list(self._leases):
            lease.checkin()
        with self._lock:
            self._drop()

    def __enter__(self) -> LicenseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- operations -------------------------------------------------------------------

    def checkout(
        self,
        feature: str,
        version: str = "0",
        *,
        on_lost: LostCallback | None = None,
        heartbeat: bool = True,
        wait: float = 0,
        on_queued: Callable[[int], None] | None = None,
        borrow_hours: int = 0,
    ) -> Lease:
        """Check out one seat; raises :class:`LicenseDenied` with the reason.

        The lease heartbeats in the background until :meth:`Lease.checkin`
        (or the end of a ``with`` block).  With ``wait`` seconds, a checkout
        that finds every seat taken queues on the server; ``on_queued`` hears
        its position (and every change of it) until a seat is granted or the
        wait is over (then ``SEATS_EXHAUSTED``).  A seat borrowed earlier on
        this machine (:meth:`borrow`) is used offline, without any server.
        """
        check_request(feature, version)
        if not borrow_hours and os.path.exists(environment.borrow_path(feature)):
            borrowed = self._borrowed(feature, version, on_lost)
            if borrowed is not None:
                return borrowed
        request = self.checkout_request(feature, version, hostid=bool(borrow_hours))
        if wait > 0:
            request["wait"] = max(1, round(wait))
        if borrow_hours:
            request["borrow"] = borrow_hours
            heartbeat = False

        def interim(reply: dict[str, Any]) -> None:
            if on_queued is not None and isinstance(reply.get("position"), int):
                on_queued(reply["position"])

        session, reply = self._request(request, with_hello=True, wait=wait, on_interim=interim)
        if reply.get("hostid_required") and not request["hostid"]:
            request["hostid"] = self.hostid  # a node-locked line: say who we are
            session, reply = self._request(request, wait=wait, on_interim=interim)
        if not reply.get("ok"):
            raise _denied(reply)
        try:
            grant = self.verified_grant(reply, session, request)
        except trust.Untrusted as exc:
            self._give_back_untrusted(reply)
            with self._lock:
                self._drop()
            raise self.not_trusted(str(exc)) from None
        lease = Lease(self, grant, reply.get("feature_line", ""), session.address, on_lost)
        lease.granted_on = session
        lease.signature = reply.get("sig", "")
        lease.batch = reply.get("batch", [])
        lease.server_line = session.hello.get("server_line", "")
        if not borrow_hours:
            self._leases.append(lease)
        if heartbeat:
            lease._start_heartbeats()
        return lease

    def _give_back_untrusted(self, reply: dict[str, Any]) -> None:
        """A grant we refuse may still hold a seat on a genuine server (e.g. one
        of another version): check it in rather than keep it until the timeout.
        Harmless when the server is a fake."""
        message = checkin_for(reply)
        if message is None:
            return
        with contextlib.suppress(LicenseDenied):
            self._request(message)

    # -- borrowing ----------------------------------------------------------------------

    def borrow(self, feature: str, version: str = "0", *, hours: int) -> Lease:
        """Borrow a seat for ``hours``: saved on this machine, usable offline
        by :meth:`checkout` until the borrow ends or :meth:`return_borrow`."""
        from netmap_lm.client import borrow  # only where borrows are: see its docstring

        lease = self.checkout(feature, version, borrow_hours=hours)
        lease.borrowed = True
        borrow.save(
            feature,
            {
                "grant": lease.grant,
                "sig": lease.signature,
                "batch": lease.batch,
                "feature_line": lease.feature_line,
                "server_line": lease.server_line,
                "server": format_address(lease.server),
            },
        )
        return lease

    def return_borrow(self, feature: str) -> bool:
        """Give a borrowed seat back early; False when none was borrowed here."""
        from netmap_lm.client import borrow  # only where borrows are: see its docstring

        check_request(feature, "0")
        record = borrow.load_any(feature)
        if record is None:
            return False
        grant = record["grant"]
        key = b64u_decode(grant["key"])

        def checkin(session: Session) -> dict[str, Any]:
            return {
                "op": "checkin",
                "lease": grant["lease"],
                "token": trust.lease_token(key, grant["lease"]),
            }

        _, reply = self._request(checkin)
        if not reply.get("ok") and reply.get("reason") != reasons.LEASE_UNKNOWN:
            raise _denied(reply)
        borrow.remove(feature)
        return True

    def _borrowed(self, feature: str, version: str, on_lost: LostCallback | None) -> Lease | None:
        from netmap_lm.client import borrow  # only where borrows are: see its docstring

        record = borrow.load_valid(feature, version, self.vendor_key, self.hostid)
        if record is None:
            return None
        (server,) = parse_servers(record["server"])
        lease = Lease(self, record["grant"], record["feature_line"], server, on_lost)
        lease.borrowed = True
        return lease

    def status(self, feature: str | None = None) -> dict[str, Any]:
        """The server's usage report (what ``netmap-lm status --json`` prints)."""
        message: dict[str, Any] = {"op": "status"}
        if feature:
            message["feature"] = feature
        _, reply = self._request(message, with_hello=True)  # names no more than a feature
        if not reply.get("ok"):
            raise _denied(reply)
        return reply

    def admin(self, op: str, admin_key: bytes | None = None, **fields: Any) -> dict[str, Any]:
        """An admin operation (``remove``, ``reread``, ``shutdown``, ``audit``).

        ``admin_key`` is the server's admin credential (``read_admin_token``);
        without it only a server started with ``--admin-loopback`` accepts.
        Raises :class:`LicenseDenied` (e.g. ``ADMIN_REQUIRED``) on refusal."""

        def build(session: Session) -> dict[str, Any]:
            body: dict[str, Any] = {"op": op, **fields}
            if admin_key is not None:
                body["admin"] = trust.admin_proof(admin_key, session.nonce)
            return body

        _, reply = self._request(build)
        if not reply.get("ok"):
            raise _denied(reply)
        return reply

    def _lease_request(self, lease: Lease, op: str, **fields: Any) -> dict[str, Any]:
        """A checkin or TCP heartbeat of ``lease``: with its token, except on
        the connection that carried its grant, where the server knows us
        (docs/protocol.md §5; it spares an application's start the HMAC)."""

        def build(session: Session) -> dict[str, Any]:
            if session is lease.granted_on:
                return {"op": op, "lease": lease.id, **fields}
            return {"op": op, "lease": lease.id, "token": lease._token, **fields}

        _, reply = self._request(build)
        return reply


class Lease:
    """A checked-out seat.  Use as a context manager, or call :meth:`checkin`."""

    def __init__(
        self,
        client: LicenseClient,
        grant: dict[str, Any],
        feature_line: str,
        server: tuple[str, int],
        on_lost: LostCallback | None,
    ) -> None:
        self.client = client
        self.grant = grant
        self.feature_line = feature_line
        self.server = server
        self.id: str = grant["lease"]
        self.feature: str = grant["feature"]
        self.version: str = grant["version"]
        self.heartbeat_interval: int = grant["heartbeat_interval"]
        self.lease_timeout: int = grant["lease_timeout"]
        self.grace_seconds: int = max(grant["grace"] * 60, grant["lease_timeout"])
        self._key = b64u_decode(grant["key"])
        self._token_text: str | None = None  # made when first sent (``token``)
        self._on_lost = on_lost
        self._seq = int(time.time() * 1000)  # above any seq of an earlier run
        self._stop = _thread.allocate_lock()
        self._stop.acquire()
        self._done = _thread.allocate_lock()
        self.lost: tuple[str, str] | None = None  # (reason, message) once lost
        self.borrowed = False  # a borrowed seat: no heartbeats, kept until returned
        self.signature = ""  # the server's signature of the grant's batch
        self.batch: list[str] = []  # the digests that signature covers
        self.server_line = ""  # the vendor-signed SERVER line of the granting server
        self.granted_on: Session | None = None  # the connection that carried the grant
        self.checked_in = False
        self.last_confirmed = time.monotonic()
        self.heartbeats_udp = 0
        self.heartbeats_tcp = 0

    def __enter__(self) -> Lease:
        return self

    @property
    def _token(self) -> str:
        """The lease token of TCP heartbeats and the checkin on any connection
        but the one that carried the grant, made when first needed: its HMAC
        loads ``cryptography``'s hmac module, which a checkout need not wait
        for (docs/performance.md, ninth session).  Two threads making it at
        once make the same text."""
        if self._token_text is None:
            self._token_text = trust.lease_token(self._key, self.id)
        return self._token_text

    def __exit__(self, *exc: object) -> None:
        self.checkin()

    def __repr__(self) -> str:
        return (
            f"<Lease {self.id} {self.feature} v{self.version} from {format_address(self.server)}>"
        )

    def checkin(self) -> None:
        """Return the seat (idempotent; a lost lease has nothing to return)."""
        if self.checked_in:
            return
        self.checked_in = True
        self._stop_heartbeats()
        if self.borrowed:
            return  # the borrow goes on; LicenseClient.return_borrow ends it
        if self in self.client._leases:
            self.client._leases.remove(self)
        if self.lost:
            return
        try:
            reply = self.client._lease_request(self, "checkin")
        except LicenseDenied:
            return  # the server reclaims the seat when heartbeats stop
        if not reply.get("ok") and reply.get("reason") != reasons.LEASE_UNKNOWN:
            raise _denied(reply)

    # -- heartbeats -------------------------------------------------------------------

    def _start_heartbeats(self) -> None:
        self._done.acquire()
        _thread.start_new_thread(self._heartbeat_loop, ())

    def _stop_heartbeats(self) -> None:
        if self._stop.locked():
            self._stop.release()
            if self._done.locked():
                self._done.acquire(timeout=self.client.timeout + UDP_ACK_WAIT + 1)

    def _heartbeat_loop(self) -> None:
        sock = None
        sock_server = self.server
        try:
            while not self._stop.acquire(timeout=self.heartbeat_interval):
                if self.lost:
                    break
                if sock is not None and sock_server != self.server:
                    sock.close()  # a TCP heartbeat failed over: follow it
                    sock = None
                if sock is None:
                    sock_server = self.server
                    sock = _udp_socket(self.server)
                if sock is not None and self._udp_heartbeat(sock):
                    continue
                self._tcp_heartbeat()
        finally:
            if sock is not None:
                sock.close()
            if self._done.locked():
                self._done.release()

    def _udp_heartbeat(self, sock: Any) -> bool:
        from netmap_lm.protocol import udp  # (and struct) only once heartbeats start

        self._seq += 1
        try:
            sock.send(udp.pack(udp.HEARTBEAT, self.id, self._seq, self._key))
            deadline = time.monotonic() + min(UDP_ACK_WAIT, self.heartbeat_interval / 2)
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                data = sock.recv(udp.DATAGRAM_BYTES + 1)
                parsed = udp.unpack_unverified(data)
                if parsed == (udp.ACK, self.id, self._seq) and udp.authentic(data, self._key):
                    self.heartbeats_udp += 1
                    self.last_confirmed = time.monotonic()
                    return True
        except OSError:
            pass
        return False

    def _tcp_heartbeat(self) -> None:
        self._seq += 1
        try:
            reply = self.client._lease_request(self, "heartbeat", seq=self._seq)
        except LicenseDenied as exc:
            if time.monotonic() - self.last_confirmed > self.grace_seconds:
                self._lose(
                    exc.reason, f"no server answered for {self.grace_seconds} s: {exc.message}"
                )
            return
        if reply.get("ok"):
            self.heartbeats_tcp += 1
            self.last_confirmed = time.monotonic()
            session = self.client._session
            if session is not None:
                self.server = session.address
        else:
            self._lose(reply.get("reason", reasons.PROTOCOL_ERROR), reply.get("message", ""))

    def _lose(self, reason: str, message: str) -> None:
        if self.lost:
            return
        self.lost = (reason, message)
        if self._on_lost is not None:
            try:
                self._on_lost(self, reason, message)
            except Exception:  # the application's callback must not kill heartbeats
                pass


def _udp_socket(address: tuple[str, int]) -> Any:
    try:
        host = address[0]
        name: str | bytes = host.encode() if host.isascii() else host
        infos = _socket.getaddrinfo(name, address[1], 0, _socket.SOCK_DGRAM)
        family, kind, proto, _, addr = infos[0]
        sock = _socket.socket(family, kind, proto)
        sock.connect(addr)
        return sock
    except (OSError, IndexError):
        return None


def _denied(reply: dict[str, Any]) -> LicenseDenied:
    reason = reply.get("reason")
    if not isinstance(reason, str) or reason not in reasons.SERVER_REASONS:
        return LicenseDenied(reasons.PROTOCOL_ERROR, f"server sent an unknown reply: {reply!r}")
    return LicenseDenied(reason, str(reply.get("message", "")))
