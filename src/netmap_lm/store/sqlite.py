"""The embedded SQLite lease store, with one writer thread and group commit.

Theory of operation.  The event loop never touches the database.  It hands
each change (a grant, a release) to :meth:`LeaseStore.commit` and awaits it.
A single writer thread owns the connection: it takes every change waiting
in its queue, applies them in one ``BEGIN IMMEDIATE`` transaction and
commits once.  In WAL mode with ``synchronous=FULL`` the commit fsyncs the
log, so when the futures resolve every change of the batch is durable, and
the fsync is shared by all of them (group commit, SPEC §6): with 32 clients
checking out at once, one fsync serves up to 32 grants.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Sequence
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
MAX_BATCH = 512  # changes per transaction; bounds the time one commit holds the lock


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
_Batch = list[tuple[Sequence[Change], "asyncio.Future[None]"]]


class StoreError(RuntimeError):
    """The database cannot be opened or written."""


class LeaseStore:
    """Leases in ``DIR/leases.db``; see the module docstring."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # Small pages: every commit writes each page it touched to the WAL
            # (and checksums it), and a commit of a dozen leases touches a few.
            # Only a new database takes it; an existing one keeps its size.
            self._db.execute("PRAGMA page_size=1024")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the lease database ({exc})") from None
        self._queue: queue.SimpleQueue[tuple[_Batch, asyncio.AbstractEventLoop] | None] = (
            queue.SimpleQueue()
        )
        self._pending: _Batch = []  # committed during this turn of the event loop
        self._thread: threading.Thread | None = None
        self.batches = 0  # transactions committed, for metrics and the benchmark
        self.changes = 0

    def load_leases(self) -> list[Lease]:
        """Every lease held when the server last stopped (call before start)."""
        rows = self._db.execute(
            "SELECT id, feature, version, user, host, display, pid, project, line_id,"
            " granted_at_ms, key, hostid, address, borrow_until_ms, handle"
            " FROM leases ORDER BY granted_at_ms"
        ).fetchall()
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
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def commit_now(self, changes: Sequence[Change]) -> None:
        """Apply changes synchronously; only before :meth:`start` (start-up clean-up)."""
        assert self._thread is None, "the writer thread owns the connection"
        self._db.execute("BEGIN IMMEDIATE")
        for change in changes:
            self._apply(change)
        self._db.execute("COMMIT")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lease-store-writer", daemon=True)
        self._thread.start()

    def commit(self, changes: Sequence[Change]) -> asyncio.Future[None]:
        """Queue changes; the returned future resolves once they are durable.

        Everything committed in one turn of the event loop travels to the
        writer as one item and is settled with one wake-up of the loop: a
        server answering many clients pays the thread hand-over once, not
        once per request."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((changes, future))
        if len(self._pending) == 1:
            loop.call_soon(self._hand_over, loop)
        return future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending = self._pending, []
        self._queue.put((batch, loop))

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        self._db.close()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            items = [item]
            stop = False
            while sum(len(batch) for batch, _ in items) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                items.append(more)
            self._write(items)
            if stop:
                return

    def _write(self, items: list[tuple[_Batch, asyncio.AbstractEventLoop]]) -> None:
        error: BaseException | None = None
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._apply_all([c for batch, _ in items for changes, _ in batch for c in changes])
            self._db.execute("COMMIT")
            self.batches += 1
            self.changes += sum(len(c) for batch, _ in items for c, _ in batch)
        except sqlite3.Error as exc:
            error = StoreError(f"{self.path}: write failed ({exc})")
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
        for batch, loop in items:
            loop.call_soon_threadsafe(_settle_all, [future for _, future in batch], error)

    def _apply_all(self, changes: list[Change]) -> None:
        """Apply in order, runs of grants or releases each with one executemany."""
        run: list[Change] = []
        for change in changes:
            if run and type(change) is not type(run[0]):
                self._apply_run(run)
                run = []
            run.append(change)
        if run:
            self._apply_run(run)

    def _apply_run(self, run: list[Change]) -> None:
        first = run[0]
        if isinstance(first, Grant):
            self._db.executemany(
                "INSERT OR REPLACE INTO leases VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [_row(change.lease) for change in run],  # type: ignore[union-attr]
            )
        elif isinstance(first, Release):
            self._db.executemany(
                "DELETE FROM leases WHERE id = ?",
                [(change.lease_id,) for change in run],  # type: ignore[union-attr]
            )
        else:
            for change in run:
                self._apply(change)

    def _apply(self, change: Change) -> None:
        if isinstance(change, Grant):
            self._db.execute(
                "INSERT OR REPLACE INTO leases VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                _row(change.lease),
            )
        elif isinstance(change, Release):
            self._db.execute("DELETE FROM leases WHERE id = ?", (change.lease_id,))
        else:
            self._db.execute(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)", (change.name, change.value)
            )


def _row(lease: Lease) -> tuple[Any, ...]:
    return (
        lease.id,
        lease.feature,
        lease.version,
        lease.user,
        lease.host,
        lease.display,
        lease.pid,
        lease.project,
        lease.line_id,
        lease.granted_at_ms,
        lease.key,
        lease.hostid,
        lease.address,
        lease.borrow_until_ms,
        lease.handle,
    )


def _settle_all(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
