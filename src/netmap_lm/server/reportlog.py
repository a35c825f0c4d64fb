"""The report log: one text line per event, durable, rotated (SPEC §7).

Theory of operation.  The event loop calls :meth:`ReportLog.record` for every
checkout, checkin, denial, queue event, reread and admin action.  That call
only formats one line and appends it to an in-memory buffer under a lock
held for a few instructions, so it never blocks on the disk.  A worker thread
calls :meth:`ReportLog.flush` about once a second: it takes the whole buffer,
writes it with one ``write``, fsyncs once for all of it (group commit, as the
lease store does) and rotates the file when it has grown past ``max_bytes``.

A line is ``<UTC time> <KIND> key=value ...``, values quoted as in license
lines (:mod:`netmap_lm.licensing.lines`); ``docs/report-log.md`` is the
reference.  Values that come from clients (user, host, display, project) are
hostile input: control characters become spaces, so a record is always one
line, and long values are cut, so a record always fits the reader's limit.

Failure.  If a write fails (disk full), the partial write is cut off again
and the lines go back to the front of the buffer for the next flush, up to
:data:`MAX_PENDING_LINES`; beyond that the oldest are dropped and counted,
and the next successful flush writes a ``LOST count=N`` record first, so the
loss is visible in the log itself.
"""

from __future__ import annotations

import os
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from netmap_lm.licensing.lines import _NEEDS_QUOTES, MAX_LINE_CHARS, quote

if TYPE_CHECKING:
    from netmap_lm.engine.seats import Lease

REPORT_LOG = "report.log"  # file name in the server's state directory
FILE_MODE = 0o640  # owner writes; a group of administrators may read user names
MAX_VALUE_CHARS = 512  # characters; a denial message or a path is far shorter
SHORT_VALUE_CHARS = 64  # characters; values are cut to this if a record is still too long
MAX_PENDING_LINES = 200_000  # lines (~40 MB) held while the disk refuses writes

# The documented records (docs/report-log.md): kind → its keys, in the order
# written.  The writer does not enforce it (a newer server may add keys, and
# the reader skips what it does not know); tests hold the document to it.
KINDS: dict[str, tuple[str, ...]] = {
    "START": ("server", "port", "features"),
    "STOP": ("reason", "leases_kept"),
    "CHECKOUT": (
        "lease",
        "handle",
        "feature",
        "version",
        "user",
        "host",
        "display",
        "pid",
        "project",
        "line",
        "in_use",
        "seats",
        "addr",
        "borrow_until",
    ),
    "CHECKIN": ("lease", "feature", "user", "host", "reason", "in_use", "held_ms"),
    "DENIAL": ("feature", "version", "user", "host", "reason", "message", "addr"),
    "QUEUE": ("feature", "user", "host", "position"),
    "DEQUEUE": ("feature", "user", "host", "outcome", "waited_ms"),
    "REREAD": ("result", "message"),
    "ADMIN": ("action", "by", "lease", "feature", "user", "host"),
    "AUDIT": ("kind", "addr", "user", "host", "count", "detail"),
    "LOST": ("count",),
}
CHECKIN_REASONS = ("normal", "exit", "removed", "timeout", "linger", "borrow_return", "shutdown")
DequeueOutcome = Literal["granted", "left", "timeout", "refused"]  # why a waiter left the queue
DEQUEUE_OUTCOMES: tuple[DequeueOutcome, ...] = get_args(DequeueOutcome)

_KIND = re.compile(r"[A-Z_]+")
_KEY = re.compile(r"[a-z_]+")
# Control characters and the Unicode line breaks (which str.splitlines() honours)
# would split a record in two.
_CONTROL = {code: " " for code in [*range(32), *range(127, 160), 0x2028, 0x2029]}


_checked_names: set[str] = set()  # kinds and keys already found well-formed
_last_second: tuple[int, str] = (-1, "")  # busy servers write many records a second,
_last_ms: tuple[int, str] = (-1, "")  # and several a millisecond
MAX_PIECES = 4096  # remembered key=value texts (see _piece) and holders (see _holder)
_pieces: dict[tuple[str, str], str] = {}
_holders: dict[tuple[str, ...], str] = {}


def format_time(when_ms: int) -> str:
    """``2025-03-04T09:15:02.123Z``: UTC, milliseconds, fixed width."""
    global _last_second, _last_ms
    cached_ms, text = _last_ms  # one tuple each: safe to share between threads
    if cached_ms == when_ms:
        return text
    seconds, millis = divmod(when_ms, 1000)
    cached_seconds, stamp = _last_second
    if cached_seconds != seconds:
        stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _last_second = (seconds, stamp)
    text = f"{stamp}.{millis:03d}Z"
    _last_ms = (when_ms, text)
    return text


def format_record(kind: str, when_ms: int, fields: dict[str, str | int | None]) -> str:
    """One record as a line, without the line break.  ``None`` fields are left out.

    A kind or key outside ``[A-Z_]+`` / ``[a-z_]+`` is a bug in the caller
    and raises :class:`ValueError`.
    """
    # This runs for every checkout and checkin of a busy server: names seen once
    # are not checked again, and numbers and plain text skip the clean-up.
    if kind not in _checked_names:
        if not _KIND.fullmatch(kind):
            raise ValueError(f"record kind {kind!r} is not [A-Z_]+")
        _checked_names.add(kind)
    stamp = format_time(when_ms)
    parts = [stamp, kind]
    append = parts.append
    checked = _checked_names
    pieces = _pieces
    for key, value in fields.items():
        if value is None:
            continue
        if key not in checked:
            if not _KEY.fullmatch(key):
                raise ValueError(f"record key {key!r} is not [a-z_]+")
            checked.add(key)
        if value.__class__ is int:
            append(f"{key}={value}")
            continue
        if isinstance(value, str):
            if value.isascii() and value.isalnum() and len(value) <= MAX_VALUE_CHARS:
                append(f"{key}={value}")  # lease ids, most names: nothing to clean
                continue
            append(pieces.get((key, value)) or _piece(key, value))
        else:
            append(_piece(key, value))
    line = " ".join(parts)
    if len(line) > MAX_LINE_CHARS + len(stamp) + 1:  # rare: shorten every value
        values = [
            (k, str(v).translate(_CONTROL)[:SHORT_VALUE_CHARS])
            for k, v in fields.items()
            if v is not None
        ]
        line = f"{stamp} {_join(kind, values)}"
    return line


def _piece(key: str, value: object) -> str:
    """``key=value`` of a text value: control characters out, cut, quoted if need be.

    The same users, hosts and features come back in record after record, so
    the result is remembered (up to :data:`MAX_PIECES` of them)."""
    text = str(value)
    if not text.isprintable():
        text = text.translate(_CONTROL)
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS]
    piece = f"{key}={text}" if text and not _NEEDS_QUOTES.search(text) else f"{key}={quote(text)}"
    if value.__class__ is str:
        if len(_pieces) >= MAX_PIECES:
            _pieces.clear()
        _pieces[key, value] = piece
    return piece


def _text(key: str, value: str) -> str:
    """``key=value`` of one text value, as :func:`format_record` writes it."""
    if value.isascii() and value.isalnum() and len(value) <= MAX_VALUE_CHARS:
        return f"{key}={value}"
    return _pieces.get((key, value)) or _piece(key, value)


def _holder(*pairs: str) -> str:
    """``k1=v1 k2=v2 …`` of alternating keys and text values, empty values left
    out; remembered, since the same users on the same hosts come back all day."""
    text = _holders.get(pairs)
    if text is None:
        text = " ".join(
            [_text(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2) if pairs[i + 1]]
        )
        if len(_holders) >= MAX_PIECES:
            _holders.clear()
        _holders[pairs] = text
    return text


# The two records of every checkout and checkin, built without the general
# loop of format_record (tests/test_reportlog.py holds them to the same text).


def checkout_record(when_ms: int, lease: Lease, in_use: int, seats: int | None) -> str:
    """``format_record("CHECKOUT", …)`` of a grant being made durable."""
    who = _holder(
        "feature", lease.feature, "version", lease.version, "user", lease.user,
        "host", lease.host, "display", lease.display,
    )  # fmt: skip
    tail = _holder("project", lease.project, "line", lease.line_id)
    borrow = f" borrow_until={lease.borrow_until_ms}" if lease.borrow_until_ms else ""
    stamp = format_time(when_ms)
    line = (
        f"{stamp} CHECKOUT {_text('lease', lease.id)} handle={lease.handle} "
        f"{who} pid={lease.pid} {tail} in_use={in_use} "
        f"seats={'uncounted' if seats is None else seats} {_text('addr', lease.address)}{borrow}"
    )
    if len(line) > MAX_LINE_CHARS + len(stamp) + 1 or not (
        lease.feature and lease.version and lease.user and lease.host and lease.line_id
        and lease.address
    ):  # fmt: skip
        # Too long, or an empty value (written as ""): the general way.
        return format_record("CHECKOUT", when_ms, checkout_fields(lease, in_use, seats))
    return line


def checkout_fields(lease: Lease, in_use: int, seats: int | None) -> dict[str, str | int | None]:
    return {
        "lease": lease.id,
        "handle": lease.handle,
        "feature": lease.feature,
        "version": lease.version,
        "user": lease.user,
        "host": lease.host,
        "display": lease.display or None,
        "pid": lease.pid,
        "project": lease.project or None,
        "line": lease.line_id,
        "in_use": in_use,
        "seats": "uncounted" if seats is None else seats,
        "addr": lease.address,
        "borrow_until": lease.borrow_until_ms or None,
    }


def checkin_record(when_ms: int, lease: Lease, reason: str, in_use: int, held_ms: int) -> str:
    """``format_record("CHECKIN", …)`` of a lease that ended."""
    who = _holder("feature", lease.feature, "user", lease.user, "host", lease.host)
    stamp = format_time(when_ms)
    line = (
        f"{stamp} CHECKIN {_text('lease', lease.id)} {who} "
        f"{_text('reason', reason)} in_use={in_use} held_ms={held_ms}"
    )
    if len(line) > MAX_LINE_CHARS + len(stamp) + 1 or not (
        lease.feature and lease.user and lease.host
    ):
        return format_record("CHECKIN", when_ms, checkin_fields(lease, reason, in_use, held_ms))
    return line


def checkin_fields(
    lease: Lease, reason: str, in_use: int, held_ms: int
) -> dict[str, str | int | None]:
    return {
        "lease": lease.id,
        "feature": lease.feature,
        "user": lease.user,
        "host": lease.host,
        "reason": reason,
        "in_use": in_use,
        "held_ms": held_ms,
    }


def _join(kind: str, values: list[tuple[str, str]]) -> str:
    return " ".join([kind, *(f"{key}={quote(text)}" for key, text in values)])


class ReportLog:
    """The append-only report log of one server; see the module docstring."""

    def __init__(self, path: Path, *, max_bytes: int = 64 * 1024 * 1024, keep: int = 10) -> None:
        if max_bytes <= 0 or keep < 0:
            raise ValueError("max_bytes must be positive and keep not negative")
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self.dropped = 0  # lines lost to a full buffer or recorded after close()
        self._buffer: list[str] = []
        self._lock = threading.Lock()  # guards _buffer and dropped; held only briefly
        self._io_lock = threading.Lock()  # one flush at a time
        self._closed = False  # close() was called: record() drops
        self._shut = False  # close() finished: the file is closed for good
        self._fd = -1
        self._size = 0
        self._open()

    # -- the event loop side -----------------------------------------------

    def record(self, kind: str, when_ms: int, /, **fields: str | int | None) -> None:
        """Format one record and buffer it; never touches the disk.

        ``kind`` and ``when_ms`` are positional only, so that AUDIT can have a
        ``kind=`` field.
        """
        self.append(format_record(kind, when_ms, fields))

    def append(self, line: str) -> None:
        """Buffer one formatted record (:func:`format_record`, :func:`checkout_record`)."""
        with self._lock:
            if self._closed:
                self.dropped += 1
                return
            self._buffer.append(line + "\n")

    @property
    def pending(self) -> int:
        """Records buffered and not yet flushed."""
        return len(self._buffer)

    # -- the worker thread side --------------------------------------------

    def flush(self) -> None:
        """Write the buffer, fsync, and rotate when the file is over ``max_bytes``.

        Blocking; call it from a worker thread.  Raises :class:`OSError` when
        the disk refuses the write; the records stay buffered for the next call.
        """
        with self._io_lock:
            if self._shut:
                return
            if self._fd < 0:
                self._open()  # a rotation failed half-way: try again
            with self._lock:
                lines, self._buffer = self._buffer, []
                lost, self.dropped = self.dropped, 0
            if lost:
                lines.insert(0, format_record("LOST", _now_ms(), {"count": lost}) + "\n")
            if not lines:
                return
            data = "".join(lines).encode("utf-8", "replace")
            try:
                self._write(data)
            except OSError:
                self._give_back(lines[1:] if lost else lines, lost)
                raise
            if self._size >= self.max_bytes:
                self._rotate()

    def close(self) -> None:
        """Flush what is buffered and close the file.  Later records are dropped."""
        with self._lock:
            self._closed = True
        try:
            self.flush()
        finally:
            with self._io_lock:
                self._shut = True
                if self._fd >= 0:
                    os.close(self._fd)
                    self._fd = -1

    # -- internals -----------------------------------------------------------

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        self._size = os.fstat(self._fd).st_size
        if self._size and _last_byte(self.path) != b"\n":
            # A crash cut the last record short: end it, so the next one
            # starts on a line of its own (the reader reports the torn line).
            self._write(b"\n")
        if created:
            _fsync_dir(self.path.parent)

    def _write(self, data: bytes) -> None:
        before = self._size
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            os.fsync(self._fd)
        except OSError:
            try:
                os.ftruncate(self._fd, before)
            except OSError:
                pass
            raise
        self._size = before + len(data)

    def _give_back(self, lines: list[str], lost: int) -> None:
        with self._lock:
            self._buffer[:0] = lines
            self.dropped += lost
            excess = len(self._buffer) - MAX_PENDING_LINES
            if excess > 0:
                del self._buffer[:excess]
                self.dropped += excess

    def _rotate(self) -> None:
        """report.log → report.log.1 → … → report.log.<keep>; the oldest goes."""
        os.close(self._fd)
        self._fd = -1  # flush() reopens if anything below fails
        if self.keep == 0:
            self.path.unlink(missing_ok=True)
        else:
            _rotated(self.path, self.keep).unlink(missing_ok=True)
            for number in range(self.keep - 1, 0, -1):
                older = _rotated(self.path, number)
                if older.exists():
                    older.rename(_rotated(self.path, number + 1))
            self.path.rename(_rotated(self.path, 1))
        _fsync_dir(self.path.parent)
        self._open()


def _rotated(path: Path, number: int) -> Path:
    return path.with_name(f"{path.name}.{number}")


def _last_byte(path: Path) -> bytes:
    with path.open("rb") as file:
        file.seek(-1, os.SEEK_END)
        return file.read(1)


def _fsync_dir(directory: Path) -> None:
    """Make a created or renamed file name durable (POSIX; a no-op elsewhere)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _now_ms() -> int:
    # Only for the LOST record, which has no event of its own to take a time from.
    return int(datetime.now(UTC).timestamp() * 1000)
