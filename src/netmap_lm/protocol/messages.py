"""Every request of the TCP protocol, as a dataclass validated on parse.

Requests are read, never changed, once parsed.  They are not declared frozen
only because a frozen dataclass costs a microsecond more to build, and a busy
server builds tens of thousands a second.

This file is the single list of operations and their fields; docs/protocol.md
documents the same, and ``tests/test_docs.py`` checks the two agree.
Responses are plain JSON objects built by :func:`ok` and :func:`error`:
``{"id": …, "ok": true, …}`` or ``{"id": …, "ok": false, "reason": CODE,
"message": text}``.

Receivers ignore fields they do not know, so that a newer client can talk to
an older server; a known field of the wrong type is a ``PROTOCOL_ERROR``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import orjson

from netmap_lm.encoding import parse_json
from netmap_lm.reasons import PROTOCOL_ERROR

MAX_ID_CHARS = 64  # a request id is echoed back; keep echoes small
MAX_TEXT_CHARS = 256  # user, host, display, project, feature names
NONCE_HEX_CHARS = 32  # 128-bit client nonce, hex
LEASE_HEX_CHARS = 32  # 128-bit lease id, hex
MAX_WAIT_SECONDS = 86_400  # a queued checkout waits at most a day

_HEX = re.compile(r"^[0-9a-f]+$")
_VERSION = re.compile(r"^\d{1,6}(\.\d{1,6}){0,3}$", re.ASCII)  # "٥.0" is no version

RequestId = int | str | None
_INVALID = object()  # orjson refused the line


class ProtocolViolation(Exception):
    """The peer sent something we cannot act on; answered with ``PROTOCOL_ERROR``."""

    def __init__(self, message: str, request_id: RequestId = None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id


def _text(obj: dict[str, Any], key: str, *, required: bool = True, default: str = "") -> str:
    value = obj.get(key)
    if value is None:
        if required:
            raise ProtocolViolation(f"missing field {key!r}")
        return default
    if not isinstance(value, str):
        raise ProtocolViolation(f"field {key!r} must be a string")
    if len(value) > MAX_TEXT_CHARS:
        raise ProtocolViolation(f"field {key!r} longer than {MAX_TEXT_CHARS} characters")
    if not value.isprintable():
        # Control characters and line breaks would forge log and report lines or
        # paint an administrator's terminal; a lone surrogate cannot be signed.
        raise ProtocolViolation(f"field {key!r} holds control characters or is not text")
    return value


def _int(obj: dict[str, Any], key: str, *, default: int | None = None) -> int:
    value = obj.get(key)
    if value is None:  # absent or null: an optional field takes its default
        if default is None:
            raise ProtocolViolation(f"missing field {key!r}")
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise ProtocolViolation(f"field {key!r} must be a non-negative integer")
    return value


def _hex(obj: dict[str, Any], key: str, length: int) -> str:
    value = _text(obj, key)
    if len(value) != length or not _HEX.fullmatch(value):
        raise ProtocolViolation(f"field {key!r} must be {length} lowercase hex digits")
    return value


@dataclass(slots=True)
class Hello:
    """Opens a session: the server proves its identity over the client's nonce."""

    op: ClassVar[str] = "hello"
    id: RequestId
    protocol: int
    nonce: str
    client: str

    @classmethod
    def parse(cls, rid: RequestId, obj: dict[str, Any]) -> Hello:
        return cls(
            rid,
            _int(obj, "protocol"),
            _hex(obj, "nonce", NONCE_HEX_CHARS),
            _text(obj, "client", required=False),
        )


@dataclass(slots=True)
class Checkout:
    """Asks for a seat of ``feature`` at ``version`` for one identified process."""

    op: ClassVar[str] = "checkout"
    id: RequestId
    feature: str
    version: str
    user: str
    host: str
    display: str
    pid: int
    project: str
    hostid: str = ""  # the client machine's host id, for node-locked lines
    wait: int = 0  # seconds to wait in the queue when no seat is free (0: no queueing)
    borrow: int = 0  # hours to borrow the seat for, offline (0: an ordinary lease)

    @classmethod
    def parse(cls, rid: RequestId, obj: dict[str, Any]) -> Checkout:
        version = _text(obj, "version", required=False, default="0")
        if not _VERSION.fullmatch(version):
            raise ProtocolViolation("field 'version' must be dotted numbers like 5.0")
        user = _text(obj, "user")
        host = _text(obj, "host")
        if not user or not host or not obj.get("feature"):
            raise ProtocolViolation("fields 'feature', 'user' and 'host' must not be empty")
        return cls(
            rid,
            _text(obj, "feature"),
            version,
            user,
            host,
            _text(obj, "display", required=False),
            _int(obj, "pid", default=0),
            _text(obj, "project", required=False),
            _text(obj, "hostid", required=False),
            min(_int(obj, "wait", default=0), MAX_WAIT_SECONDS),
            _int(obj, "borrow", default=0),
        )


@dataclass(slots=True)
class Checkin:
    """Returns a seat; ``token`` proves the sender holds the lease key (``""``,
    absent: the connection that carried the grant asks, and needs none)."""

    op: ClassVar[str] = "checkin"
    id: RequestId
    lease: str
    token: str

    @classmethod
    def parse(cls, rid: RequestId, obj: dict[str, Any]) -> Checkin:
        return cls(rid, _hex(obj, "lease", LEASE_HEX_CHARS), _text(obj, "token", required=False))


@dataclass(slots=True)
class Heartbeat:
    """Keeps a lease alive over TCP (the fallback of UDP heartbeats), and
    re-asserts it after a reconnect; ``seq`` raises the UDP replay floor.
    ``token`` as for :class:`Checkin`."""

    op: ClassVar[str] = "heartbeat"
    id: RequestId
    lease: str
    token: str
    seq: int

    @classmethod
    def parse(cls, rid: RequestId, obj: dict[str, Any]) -> Heartbeat:
        return cls(
            rid,
            _hex(obj, "lease", LEASE_HEX_CHARS),
            _text(obj, "token", required=False),
            _int(obj, "seq", default=0),
        )


@dataclass(slots=True)
class Status:
    """Usage per feature and its holders (what ``lmstat -a`` shows)."""

    op: ClassVar[str] = "status"
    id: RequestId
    feature: str | None

    @classmethod
    def parse(cls, rid: RequestId, obj: dict[str, Any]) -> Status:
        feature = _text(obj, "feature", required=False) or None
        return cls(rid, feature)


def _admin(obj: dict[str, Any]) -> str:
    return _text(obj, "admin", required=False)


@dataclass(slots=True)
class Remove:
    """Admin: free a seat, by ``lease`` or by ``feature`` + ``user`` + ``host``."""

    op: ClassVar[str] = "remove"
    id: RequestId
    admin: str
    lease: str
    feature: str
    user: str
    host: str

    @classmethod
    def parse(cls, rid: RequestId, obj: dict[str, Any]) -> Remove:
        lease = _hex(obj, "lease", LEASE_HEX_CHARS) if obj.get("lease") is not None else ""
        feature = _text(obj, "feature", required=False)
        user = _text(obj, "user", required=False)
        host = _text(obj, "host", required=False)
        if not lease and not (feature and user and host):
            raise ProtocolViolation("give 'lease', or 'feature', 'user' and 'host'")
        return cls(rid, _admin(obj), lease, feature, user, host)


@dataclass(slots=True)
class _AdminOnly:
    """An admin operation whose only field is the credential proof."""

    op: ClassVar[str]
    id: RequestId
    admin: str

    @classmethod
    def parse(cls, rid: RequestId, obj: dict[str, Any]) -> Self:
        return cls(rid, _admin(obj))


@dataclass(slots=True)
class Reread(_AdminOnly):
    """Admin: reload the license file; held leases are kept where they still fit."""

    op: ClassVar[str] = "reread"


@dataclass(slots=True)
class Shutdown(_AdminOnly):
    """Admin: stop the server cleanly; held leases are kept for the next start."""

    op: ClassVar[str] = "shutdown"


@dataclass(slots=True)
class Audit(_AdminOnly):
    """Admin: the abuse monitor's findings."""

    op: ClassVar[str] = "audit"


Request = Hello | Checkout | Checkin | Heartbeat | Status | Remove | Reread | Shutdown | Audit
AdminRequest = Remove | Reread | Shutdown | Audit
REQUEST_TYPES: dict[str, Any] = {
    t.op: t for t in (Hello, Checkout, Checkin, Heartbeat, Status, Remove, Reread, Shutdown, Audit)
}


def _encodable(text: str) -> bool:
    """False for text holding a lone surrogate ("\\ud800"), which cannot be echoed."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def parse_request(line: bytes) -> Request:
    """One protocol line → a request, or :class:`ProtocolViolation`."""
    try:
        obj = orjson.loads(line)  # fast, and strict: whatever it refuses, json decides
    except orjson.JSONDecodeError:
        obj = _INVALID
    if obj is _INVALID:
        try:
            obj = parse_json(line)  # json's verdict, NaN and Infinity refused
        except (ValueError, RecursionError):
            raise ProtocolViolation(
                "not a JSON object (each line must be one JSON object)"
            ) from None
    if not isinstance(obj, dict):
        raise ProtocolViolation("not a JSON object (each line must be one JSON object)")
    rid = obj.get("id")
    if rid is not None and (
        isinstance(rid, bool)
        or not isinstance(rid, int | str)
        or (isinstance(rid, str) and (len(rid) > MAX_ID_CHARS or not _encodable(rid)))
        or (isinstance(rid, int) and not -(2**53) < rid < 2**53)
    ):
        raise ProtocolViolation(
            f"field 'id' must be an integer or a string of at most {MAX_ID_CHARS} characters"
        )
    op = obj.get("op")
    kind = REQUEST_TYPES.get(op) if isinstance(op, str) else None
    if kind is None:
        raise ProtocolViolation(
            f"unknown op {op!r}; expected one of " + ", ".join(sorted(REQUEST_TYPES)), rid
        )
    try:
        return kind.parse(rid, obj)
    except ProtocolViolation as exc:
        raise ProtocolViolation(f"{op}: {exc.message}", rid) from None


def ok(rid: RequestId, **fields: Any) -> dict[str, Any]:
    return {"id": rid, "ok": True, **fields}


def error(rid: RequestId, reason: str, message: str, **fields: Any) -> dict[str, Any]:
    return {"id": rid, "ok": False, "reason": reason, "message": message, **fields}


def protocol_error(rid: RequestId, message: str) -> dict[str, Any]:
    return error(rid, PROTOCOL_ERROR, message)


def encode(message: dict[str, Any]) -> bytes:
    """A response as one wire line (orjson: a busy server encodes thousands a second)."""
    return orjson.dumps(message) + b"\n"
