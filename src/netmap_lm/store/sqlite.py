"""The embedded SQLite lease store, with group commit on the event loop.

Theory of operation.  The event loop hands each change (a grant, a release)
to :meth:`LeaseStore.commit_then` (or awaits :meth:`LeaseStore.commit`).  The
changes of one turn of the loop are collected, and those of the next turn
with them as long as each poll of the sockets brings more (for at most
2 ms); then they are written in one
``BEGIN IMMEDIATE`` transaction and committed once.  In
WAL mode with ``synchronous=FULL`` the commit fsyncs the log, so when it
returns every change of the turn is durable and the callbacks are told; the
fsync is shared by all of them (group commit, SPEC §6).

A checkin's release is answered before it is written (its seat is free at
once), so nothing waits for its fsync: a transaction of such releases alone
is written with ``synchronous=NORMAL``, safe from a crash of the server
(the WAL is in the file) but not yet from a power cut, and is synced with
the next synced commit, or by itself within ``RELEASE_SYNC_SECONDS``.
The loop does not stop for it, and the next checkout does not wait behind it.

The loop waits for the fsync, as Redis does with ``appendfsync always``:
while it waits, requests pile up in the sockets, and the next turn commits
them all at once, so the busier the server, the more changes share one
fsync (about 50 at 32 clients checking out at once).  A commit in another
process or thread was measured slower on both counts: the hand-over and the
wake-ups cost more than the fsync they hide (docs/performance.md).

Failure.  A transaction that fails (disk full, a locked file) is rolled back
and fails the commits of its turn with :class:`StoreError`; the next turn
tries again.  A grant that failed is undone by its caller, but a seat that
came back is free whatever the disk says, so the releases of a failed
transaction are owed: they are written again after the next transaction
that succeeds (any commit, at the latest the server's periodic one), in a
transaction of their own, until the file agrees.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
# How long a commit may wait for more changes while each poll brings some:
# the fsync is ~0.15 ms here, and at 32 busy clients gathering takes ~1 ms.
GATHER_SECONDS = 0.002
BUSY_TIMEOUT_MS = 5000  # how long a write waits for another connection's lock
# A transaction of checkins' releases alone is written without an fsync and
# synced by the next synced commit, else by a sync of the WAL after this long.
RELEASE_SYNC_SECONDS = 1.0

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
        db.execute("BEGIN IMMEDIATE")  # another server may open it at the same time
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
        try:
            self._db = open_database(self.path, busy_timeout_ms)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the lease database ({exc})") from None
        self._pending: list[tuple[Sequence[Change], Done]] = []
        self._must_sync = False  # a change pending in _pending wants its fsync
        self._unsynced = False  # a transaction was written without its fsync
        self._sync_timer: asyncio.TimerHandle | None = None  # to sync it (_sync_written)
        self._owed: list[Release] = []  # releases of failed transactions, to write again
        self._closed = False
        self._gather_until = 0.0  # loop time after which a commit waits for no more changes
        self._gathered = 0  # changes pending at the last poll
        self.batches = 0  # transactions committed, for tests and metrics
        self.changes = 0
        self.syncs = 0  # fsyncs: transactions committed synced, and syncs of the WAL

    def load_leases(self) -> list[Lease]:
        """Every lease held when the server last stopped."""
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
        """Apply changes in one transaction, now; :class:`StoreError` if they
        cannot be written (nothing of them is kept then)."""
        error = self._write(changes)
        if error is not None:
            raise error

    def _unreadable(self, exc: sqlite3.Error) -> StoreError:
        return StoreError(
            f"{self.path}: cannot read the lease database ({exc}); restore the file from a backup, "
            "or move it away to start with no leases held"
        )

    def _write(self, changes: Sequence[Change], sync: bool = True) -> StoreError | None:
        """One transaction, fsync'd unless not ``sync``; the error if it failed
        and was rolled back (its releases are owed then).  Once one succeeds,
        the releases still owed are written in a transaction of their own, so
        that one that cannot be written never holds up the others."""
        error = self._transaction(changes, sync)
        if error is not None:
            self._owed.extend(c for c in changes if isinstance(c, Release))
            return error
        if self._owed:
            owed, self._owed = self._owed, []
            if self._transaction(owed, sync) is None:
                log.info("lease store: %d release(s) written after a failure", len(owed))
            else:
                self._owed = owed
        return None

    def _transaction(self, changes: Sequence[Change], sync: bool = True) -> StoreError | None:
        if self._closed:
            return StoreError(f"{self.path}: the lease store is closed")
        db = self._db
        try:
            if not sync:
                db.execute("PRAGMA synchronous=NORMAL")
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    apply_changes(db, changes)
                    db.execute("COMMIT")
                except sqlite3.Error:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            finally:
                if not sync:
                    db.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as exc:
            return StoreError(
                f"{self.path}: cannot write the lease database ({exc}); check the disk "
                "and that the server's user may write the file and its directory"
            )
        self.batches += 1
        self.changes += len(changes)
        if sync:
            self.syncs += 1
            self._unsynced = False  # the fsync of the WAL took the earlier frames too
        else:
            self._unsynced = True
        return None

    def _sync_written(self) -> None:
        """fsync the WAL if a transaction was written without: the frames of
        every transaction before are then durable as a synced commit's."""
        if self._sync_timer is not None:
            self._sync_timer.cancel()
            self._sync_timer = None
        if not self._unsynced or self._closed:
            return
        try:
            fd = os.open(f"{self.path}-wal", os.O_RDONLY)
            try:
                os.fdatasync(fd)
            finally:
                os.close(fd)
        except FileNotFoundError:
            pass  # checkpointed and removed, which syncs
        except OSError as exc:
            log.error("lease store: cannot sync %s-wal (%s); check the disk", self.path, exc)
            return
        self.syncs += 1
        self._unsynced = False

    # -- group commit on the event loop ---------------------------------------------

    def commit(self, changes: Sequence[Change]) -> asyncio.Future[None]:
        """Queue changes; the returned future resolves once they are durable."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def done(error: StoreError | None) -> None:
            if future.done():
                return
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

        self.commit_then(changes, done)
        return future

    def commit_then(self, changes: Sequence[Change], done: Done, *, sync: bool = True) -> None:
        """Queue changes; ``done(None)`` once they are durable, ``done(error)`` if not.

        Everything queued in one turn of the event loop, and in the next
        (:meth:`_poll_then_commit`), is committed in one transaction, and
        every ``done`` of it is called right after (no future: this is every
        checkout's and checkin's path).  With ``sync=False`` (a checkin's
        release, answered already) ``done`` may come once they are written,
        safe from a crash of the server: when nothing of the transaction
        wants its fsync, the WAL is synced later (see the module docstring)."""
        self._pending.append((changes, done))
        self._must_sync = self._must_sync or sync
        if len(self._pending) == 1:
            loop = asyncio.get_running_loop()
            self._gather_until = loop.time() + GATHER_SECONDS
            self._gathered = -1
            loop.call_soon(self._poll_then_commit)

    def _poll_then_commit(self) -> None:
        """Commit once a poll of the sockets brought no new change: the
        loop polls them at least once more first, and again as long as
        each poll brings more, for at most GATHER_SECONDS.  Under load
        much comes: the answers of the turn before (checkins, answered at
        once, and the grants of the last commit) come back as requests
        within microseconds.  At 32 clients a commit then holds ~50 changes
        instead of ~30 with one poll; each poll costs a few microseconds,
        and a lone request still waits one (docs/performance.md, tenth
        session)."""
        loop = asyncio.get_running_loop()
        now = len(self._pending)
        if now > self._gathered and loop.time() < self._gather_until:
            self._gathered = now
            loop.call_soon(self._poll_then_commit)
        else:
            self._commit_pending()

    def _commit_pending(self, sync: bool = False) -> None:
        batch, self._pending = self._pending, []
        sync, self._must_sync = sync or self._must_sync, False
        if not batch:
            return  # close() committed them
        changes = [change for part, _ in batch for change in part]
        error = self._write(changes, sync)
        if error is not None:  # once a transaction, not once for each of its callers
            log.error("lease store: %s", error)
        elif self._unsynced and self._sync_timer is None:
            loop = asyncio.get_running_loop()
            self._sync_timer = loop.call_later(RELEASE_SYNC_SECONDS, self._sync_written)
        _settle([done for _, done in batch], error)

    def close(self) -> None:
        """Commit what is queued, tell its callbacks, and close the database.

        Call it from the event loop's thread (the callbacks run here), or
        when no loop runs."""
        if self._closed:
            return
        if self._pending:
            self._commit_pending(sync=True)
        if self._owed:  # best effort: else their rows come back at the next start
            self._transaction(self._owed)
        self._sync_written()
        self._closed = True
        self._db.close()


def apply_changes(db: sqlite3.Connection, changes: Sequence[Change]) -> None:
    """Apply changes in order, each run of one kind with one ``executemany``."""
    run: list[Change] = []
    for change in changes:
        if run and type(change) is not type(run[0]):
            _apply_run(db, run)
            run = []
        run.append(change)
    if run:
        _apply_run(db, run)


def _apply_run(db: sqlite3.Connection, run: list[Any]) -> None:
    kind = type(run[0])
    if kind is Grant:
        db.executemany(
            "INSERT OR REPLACE INTO leases VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [_row(change.lease) for change in run],
        )
    elif kind is Release:
        db.executemany("DELETE FROM leases WHERE id = ?", [(c.lease_id,) for c in run])
    elif kind is Meta:
        db.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)", [(c.name, c.value) for c in run]
        )
    else:
        raise TypeError(f"not a lease store change: {run[0]!r}")


def _row(x: Lease) -> tuple[Any, ...]:
    """A lease as its row, in the column order of SCHEMA."""
    return (
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
        x.key,
        x.hostid,
        x.address,
        x.borrow_until_ms,
        x.handle,
    )


def _settle(callbacks: list[Done], error: StoreError | None) -> None:
    for done in callbacks:
        try:
            done(error)
        except Exception:  # one broken callback must not keep the others waiting
            log.exception("lease store: a commit callback failed")
