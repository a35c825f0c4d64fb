"""The embedded SQLite lease store, with a writer process and group commit.

Theory of operation.  The event loop never touches the database while it
serves.  It hands each change (a grant, a release) to :meth:`LeaseStore.commit`
and awaits it.  Everything committed in one turn of the loop travels as one
frame through a pipe to the writer process (:mod:`netmap_lm.store.writer`),
which owns the only writing connection: it takes every frame waiting in the
pipe, applies them in one ``BEGIN IMMEDIATE`` transaction and commits once.
In WAL mode with ``synchronous=FULL`` the commit fsyncs the log, so when the
writer's answer comes back every change of those frames is durable, and the
fsync is shared by all of them (group commit, SPEC §6): with 32 clients
checking out at once, one fsync serves a dozen grants and releases.

Why a process and not a thread: SQLite runs without the GIL, but a thread
must take the GIL back after every call into it, and on a busy server it
waits for the event loop to let go each time.  That wait, not the disk, was
most of a commit's latency and so of every grant's (docs/performance.md).
A process has its own interpreter; the event loop pays one ``write`` per loop
turn and one ``read`` per commit.

Failure.  A transaction that fails (disk full) fails the commits of its
frames with :class:`StoreError` and the writer goes on.  If the writer process
itself ends, every change not yet answered fails, later commits fail at once,
and ``on_broken`` is called: the server stops rather than grant seats it
cannot keep.  When the server ends, even by ``kill -9``, the writer reads the
end of its pipe, commits what it already has and exits.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import select
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from netmap_lm.engine.seats import Lease

SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    id TEXT PRIMARY KEY,
    feature TEXT NOT NULL,
    version TEXT NOT NULL,
    user TEXT NOT NULL,
    host TEXT NOT NULL,
    display TEXT NOT NULL,
    pid INTEGER NOT NULL,
    project TEXT NOT NULL,
    line_id TEXT NOT NULL,
    granted_at_ms INTEGER NOT NULL,
    key BLOB NOT NULL,
    hostid TEXT NOT NULL DEFAULT '',
    address TEXT NOT NULL DEFAULT '',
    borrow_until_ms INTEGER NOT NULL DEFAULT 0,
    handle INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Lease columns added after the first release, as SCHEMA declares them.  CREATE
# TABLE IF NOT EXISTS leaves an older database as it was; open_database adds
# them (SQLite's ADD COLUMN needs the DEFAULT they have).
LATER_COLUMNS = {
    "hostid": "TEXT NOT NULL DEFAULT ''",
    "address": "TEXT NOT NULL DEFAULT ''",
    "borrow_until_ms": "INTEGER NOT NULL DEFAULT 0",
    "handle": "INTEGER NOT NULL DEFAULT 0",
}
MAX_BATCH = 512  # changes per transaction; bounds the time one commit holds the lock
BUSY_TIMEOUT_MS = 5000  # how long a write waits for another connection's lock
START_TIMEOUT = 30.0  # seconds for the writer process to open the database
STOP_TIMEOUT = 30.0  # seconds for the writer to commit what it has and exit
PIPE_BYTES = 1 << 20  # pipe capacity asked for (Linux): the loop waits on a full pipe
# only when the writer is this far behind

GRANT, RELEASE, META = "g", "r", "m"  # change kinds in a frame

log = logging.getLogger("netmap_lm.store")


@dataclass(frozen=True)
class Grant:
    lease: Lease


@dataclass(frozen=True)
class Release:
    lease_id: str


@dataclass(frozen=True)
class Meta:
    """A named value of the server's own (e.g. the latest wall time seen)."""

    name: str
    value: str


Change = Grant | Release | Meta
Done = Callable[["StoreError | None"], None]  # told once: None when durable, else why not


class StoreError(RuntimeError):
    """The database cannot be opened or written."""


def open_database(path: Path, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """A connection in WAL mode with ``synchronous=FULL``, the schema in place."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    # Small pages: every commit writes each page it touched to the WAL (and
    # checksums it), and a commit of a dozen leases touches a few.  Only a new
    # database takes it; an existing one keeps its size.
    db.execute("PRAGMA page_size=1024")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(SCHEMA)
    if _missing_columns(db):
        db.execute("BEGIN IMMEDIATE")  # the writer process may open it at the same time
        try:
            for name in _missing_columns(db):
                db.execute(f"ALTER TABLE leases ADD COLUMN {name} {LATER_COLUMNS[name]}")
            db.execute("COMMIT")
        except sqlite3.Error:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    return db


def _missing_columns(db: sqlite3.Connection) -> list[str]:
    have = {row[1] for row in db.execute("PRAGMA table_info(leases)")}
    return [name for name in LATER_COLUMNS if name not in have]


class LeaseStore:
    """Leases in ``DIR/leases.db``; see the module docstring."""

    def __init__(self, path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        try:
            self._db = open_database(self.path, busy_timeout_ms)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the lease database ({exc})") from None
        self.on_broken: Callable[[str], None] | None = None  # the writer process ended
        self._writer: subprocess.Popen[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reading = False  # the loop watches the writer's answers
        self._answers = b""  # an answer not yet read to its end
        self._pending: list[tuple[Sequence[Change], Done]] = []
        # Frames sent and not yet answered: who to tell, and how many changes.
        self._in_flight: collections.deque[tuple[list[Done], int]] = collections.deque()
        self._broken: str | None = None
        self._closing = False
        self.batches = 0  # frames answered, for tests and metrics
        self.changes = 0

    def load_leases(self) -> list[Lease]:
        """Every lease held when the server last stopped (call before start)."""
        try:
            rows = self._db.execute(
                "SELECT id, feature, version, user, host, display, pid, project, line_id,"
                " granted_at_ms, key, hostid, address, borrow_until_ms, handle"
                " FROM leases ORDER BY granted_at_ms"
            ).fetchall()
        except sqlite3.Error as exc:
            raise self._unreadable(exc) from None
        return [
            Lease(
                id=r[0],
                feature=r[1],
                version=r[2],
                user=r[3],
                host=r[4],
                display=r[5],
                pid=r[6],
                project=r[7],
                line_id=r[8],
                granted_at_ms=r[9],
                key=bytes(r[10]),
                hostid=r[11],
                address=r[12],
                borrow_until_ms=r[13],
                handle=r[14],
            )
            for r in rows
        ]

    def load_meta(self, name: str) -> str | None:
        try:
            row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        except sqlite3.Error as exc:
            raise self._unreadable(exc) from None
        return row[0] if row else None

    def commit_now(self, changes: Sequence[Change]) -> None:
        """Apply changes synchronously; only before :meth:`start` (start-up clean-up)."""
        assert self._writer is None, "the writer process owns the writes"
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                apply_changes(self._db, [encode_change(change) for change in changes])
                self._db.execute("COMMIT")
            except sqlite3.Error:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(
                f"{self.path}: cannot write the lease database ({exc}); check the disk "
                "and that the server's user may write the file and its directory"
            ) from None

    def _unreadable(self, exc: sqlite3.Error) -> StoreError:
        return StoreError(
            f"{self.path}: cannot read the lease database ({exc}); restore the file from a backup, "
            "or move it away to start with no leases held"
        )

    # -- the writer process ---------------------------------------------------------

    def start(self) -> None:
        """Start the writer process; raises :class:`StoreError` if it cannot write."""
        argv = [sys.executable, "-m", "netmap_lm.store.writer", str(self.path)]
        argv.append(str(self.busy_timeout_ms))
        try:
            writer = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot start the lease writer ({exc})") from None
        assert writer.stdin is not None and writer.stdout is not None
        _grow_pipe(writer.stdin.fileno())
        _grow_pipe(writer.stdout.fileno())
        ready, _, _ = select.select([writer.stdout], [], [], START_TIMEOUT)
        first = writer.stdout.readline() if ready else b""
        if first != b"ready\n":
            writer.kill()
            writer.wait()
            why = first.decode(errors="replace").strip() or "it did not start"
            raise StoreError(f"{self.path}: the lease writer failed: {why}")
        os.set_blocking(writer.stdout.fileno(), False)
        self._writer = writer

    def commit(self, changes: Sequence[Change]) -> asyncio.Future[None]:
        """Queue changes; the returned future resolves once they are durable."""
        loop = self._loop or asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def done(error: StoreError | None) -> None:
            if future.done():
                return
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

        self.commit_then(changes, done)
        return future

    def commit_then(self, changes: Sequence[Change], done: Done) -> None:
        """Queue changes; ``done(None)`` once they are durable, ``done(error)`` if not.

        Everything committed in one turn of the event loop travels to the
        writer as one frame and is answered at once: a server answering many
        clients pays the hand-over once, not once per request.  ``done`` is
        called right when the answer is read (no future, no extra turn: this
        is every checkout's and checkin's path)."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        if self._broken is not None:
            loop.call_soon(done, StoreError(self._broken))
            return
        self._pending.append((changes, done))
        if len(self._pending) == 1:
            loop.call_soon(self._hand_over)

    def _hand_over(self) -> None:
        batch, self._pending = self._pending, []
        callbacks = [done for _, done in batch]
        writer = self._writer
        if writer is None or self._broken is not None or self._closing:
            why = self._broken or f"{self.path}: the lease store is not open for writing"
            _settle(callbacks, StoreError(why))
            return
        assert writer.stdin is not None and writer.stdout is not None and self._loop
        if not self._reading:
            self._loop.add_reader(writer.stdout.fileno(), self._read_answers)
            self._reading = True
        encoded = [encode_change(c) for changes, _ in batch for c in changes]
        frame = orjson.dumps(encoded)
        self._in_flight.append((callbacks, len(encoded)))
        try:
            _write_all(writer.stdin.fileno(), len(frame).to_bytes(4, "little") + frame)
        except OSError as exc:
            self._break(f"the lease writer is gone ({exc})")  # fails this frame too

    def _read_answers(self) -> None:
        """Answers are lines: ``ok N`` or ``err N message``, N frames each, in order."""
        assert self._writer is not None and self._writer.stdout is not None
        try:
            data = os.read(self._writer.stdout.fileno(), 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._stop_reading()
            self._break(f"the lease writer exited (code {self._writer.poll()})")
            return
        *lines, self._answers = (self._answers + data).split(b"\n")
        for line in lines:
            status, count, *why = line.decode(errors="replace").split(" ", 2)
            error = None if status == "ok" else StoreError(f"{self.path}: {' '.join(why)}")
            for _ in range(int(count)):
                callbacks, changes = self._in_flight.popleft()
                self.batches += 1
                self.changes += changes
                _settle(callbacks, error)

    def _stop_reading(self) -> None:
        if self._reading and self._loop is not None and self._writer is not None:
            assert self._writer.stdout is not None
            self._loop.remove_reader(self._writer.stdout.fileno())
            self._writer.stdout.close()
        self._reading = False

    def _break(self, why: str) -> None:
        if self._broken is not None:
            return
        self._broken = f"{self.path}: {why}"
        while self._in_flight:
            _settle(self._in_flight.popleft()[0], StoreError(self._broken))
        if self.on_broken is not None and not self._closing:
            self.on_broken(self._broken)

    def close(self) -> None:
        """Let the writer commit what it has and exit; close the database.

        Any thread may call it once the event loop commits nothing more."""
        if self._closing:
            return
        self._closing = True
        writer = self._writer
        if writer is not None:
            assert writer.stdin is not None and writer.stdout is not None
            with contextlib.suppress(OSError):
                writer.stdin.close()  # the end of the pipe: commit, then exit
            try:
                writer.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                writer.kill()
                writer.wait()
            if not self._reading:
                writer.stdout.close()  # else the loop closes it when it reads the end
        self._db.close()


# -- what travels through the pipe, and what the writer does with it --------------------


def encode_change(change: Change) -> tuple[Any, ...]:
    """A change as a JSON array: ``["g", <lease row, key in hex>]``,
    ``["r", lease id]`` or ``["m", name, value]``."""
    if type(change) is Grant:
        x = change.lease
        return (
            GRANT,
            x.id,
            x.feature,
            x.version,
            x.user,
            x.host,
            x.display,
            x.pid,
            x.project,
            x.line_id,
            x.granted_at_ms,
            x.key.hex(),
            x.hostid,
            x.address,
            x.borrow_until_ms,
            x.handle,
        )
    if type(change) is Release:
        return (RELEASE, change.lease_id)
    assert type(change) is Meta
    return (META, change.name, change.value)


def apply_changes(db: sqlite3.Connection, changes: Sequence[Sequence[Any]]) -> None:
    """Apply encoded changes in order, runs of one kind each with one ``executemany``."""
    run: list[Sequence[Any]] = []
    for change in changes:
        if run and change[0] != run[0][0]:
            _apply_run(db, run)
            run = []
        run.append(change)
    if run:
        _apply_run(db, run)


def _apply_run(db: sqlite3.Connection, run: list[Sequence[Any]]) -> None:
    kind = run[0][0]
    if kind == GRANT:
        db.executemany(
            "INSERT OR REPLACE INTO leases VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(*c[1:11], bytes.fromhex(c[11]), *c[12:]) for c in run],
        )
    elif kind == RELEASE:
        db.executemany("DELETE FROM leases WHERE id = ?", [(c[1],) for c in run])
    elif kind == META:
        db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [c[1:] for c in run])
    else:
        raise ValueError(f"unknown change kind {kind!r}")


def _grow_pipe(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):
        pass  # not Linux, or not allowed: the default size works, with more waits


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _settle(callbacks: list[Done], error: StoreError | None) -> None:
    for done in callbacks:
        try:
            done(error)
        except Exception:  # one broken callback must not keep the others waiting
            log.exception("lease store: a commit callback failed")
