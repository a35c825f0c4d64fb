"""The SQLite lease store on a real database file: group commit, order, restart."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest

from netmap_lm.cli.main import main
from netmap_lm.engine.seats import Lease
from netmap_lm.store import sqlite as store_module
from netmap_lm.store.sqlite import (
    GATHER_SECONDS,
    Grant,
    LeaseStore,
    Meta,
    Release,
    StoreError,
)
from support import Kit, ServerProcess


def lease(n: int, **fields: object) -> Lease:
    values: dict = dict(
        id=f"{n:032x}",
        feature="netmap",
        version="5.0",
        user=f"user{n}",
        host="host-1",
        display=":0",
        pid=100 + n,
        project="",
        line_id="line-1",
        granted_at_ms=1_700_000_000_000 + n,
        key=bytes([n % 256]) * 32,
        hostid="",
        address="127.0.0.1",
        borrow_until_ms=0,
        handle=n,
    )
    values.update(fields)
    return Lease(**values)


def commit_all(store: LeaseStore, batches: list[list]) -> None:
    """Commit the batches in one loop turn each (as a busy server does) and wait."""

    async def main() -> None:
        for changes in batches:
            await asyncio.gather(*(store.commit([change]) for change in changes))

    asyncio.run(main())


def test_grants_and_releases_of_one_batch_apply_in_order(tmp_path: Path) -> None:
    store = LeaseStore(tmp_path / "leases.db")
    a, b, c = lease(1), lease(2), lease(3, user='with "quotes" and \\ and ünïcode')
    # b is granted and released in the same batch; a is released in the next one.
    commit_all(store, [[Grant(a), Grant(b), Grant(c), Release(b.id)], [Release(a.id)]])
    store.close()
    again = LeaseStore(tmp_path / "leases.db")
    assert again.load_leases() == [c]
    assert again.batches == 0
    again.close()


def test_a_regrant_after_release_in_one_batch_is_kept(tmp_path: Path) -> None:
    store = LeaseStore(tmp_path / "leases.db")
    a = lease(1)
    commit_all(store, [[Grant(a), Release(a.id), Grant(a)]])
    store.close()
    again = LeaseStore(tmp_path / "leases.db")
    assert again.load_leases() == [a]
    again.close()


def test_the_changes_of_one_loop_turn_share_one_transaction(tmp_path: Path) -> None:
    store = LeaseStore(tmp_path / "leases.db")
    leases = [lease(n) for n in range(600)]
    commit_all(store, [[Grant(x) for x in leases], [Release(leases[0].id)]])
    assert (store.batches, store.changes) == (2, 601)
    store.close()
    again = LeaseStore(tmp_path / "leases.db")
    assert again.load_leases() == leases[1:]
    again.close()


def test_a_change_queued_in_the_next_turn_joins_the_commit(tmp_path: Path) -> None:
    """The store polls the sockets once more before it commits: a request
    that arrives while a turn is being handled shares that turn's fsync."""
    store = LeaseStore(tmp_path / "leases.db")
    a, b, c = lease(1), lease(2), lease(3)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        late: list[asyncio.Future[None]] = []
        first = store.commit([Grant(a)])
        loop.call_soon(lambda: late.append(store.commit([Grant(b)])))  # the next turn
        await first
        assert len(late) == 1 and late[0].done()
        assert (store.batches, store.changes) == (1, 2)
        await store.commit([Grant(c)])  # a turn of its own, later
        assert (store.batches, store.changes) == (2, 3)

    asyncio.run(main())
    store.close()


def test_changes_that_keep_coming_poll_after_poll_join_the_commit(tmp_path: Path) -> None:
    """As long as each poll brings another change, the commit waits for the
    next; the first poll that brings none commits them all at once."""
    store = LeaseStore(tmp_path / "leases.db")
    leases = [lease(n) for n in range(8)]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        futures = [store.commit([Grant(leases[0])])]

        def next_turn(n: int) -> None:  # one change a turn, for seven turns
            futures.append(store.commit([Grant(leases[n])]))
            if n + 1 < len(leases):
                loop.call_soon(next_turn, n + 1)

        loop.call_soon(next_turn, 1)
        await asyncio.gather(*futures)
        assert len(futures) == 8
        assert (store.batches, store.changes) == (1, 8)

    asyncio.run(main())
    store.close()


def test_a_commit_waits_for_more_changes_only_so_long(tmp_path: Path) -> None:
    """Changes that never stop coming do not hold a commit back forever: it
    waits at most GATHER_SECONDS for more."""
    store = LeaseStore(tmp_path / "leases.db")
    granted: list[asyncio.Future[None]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = loop.time() + 20 * GATHER_SECONDS
        n = 0

        def next_turn() -> None:  # one change a turn, for 20 × GATHER_SECONDS
            nonlocal n
            n += 1
            granted.append(store.commit([Grant(lease(n))]))
            if loop.time() < stop:
                loop.call_soon(next_turn)

        next_turn()
        while loop.time() < stop:
            await asyncio.sleep(GATHER_SECONDS)
        assert granted[0].done(), "the first grant waited for the whole stream"
        await asyncio.gather(*granted)

    asyncio.run(main())
    assert store.batches >= 5, store.batches
    store.close()


def test_meta_rows_travel_with_leases(tmp_path: Path) -> None:
    store = LeaseStore(tmp_path / "leases.db")
    commit_all(store, [[Grant(lease(1)), Meta("latest_ms", "123"), Meta("latest_ms", "124")]])
    store.close()
    again = LeaseStore(tmp_path / "leases.db")
    assert again.load_meta("latest_ms") == "124"
    assert [x.id for x in again.load_leases()] == [lease(1).id]
    again.close()


def test_a_failed_write_fails_every_future_of_its_batch_and_keeps_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "leases.db"
    store = LeaseStore(path, busy_timeout_ms=0)
    blocker = sqlite3.connect(path, isolation_level=None, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")  # the store cannot get the lock

    async def main() -> list[BaseException | None]:
        results = await asyncio.gather(
            store.commit([Grant(lease(1))]), store.commit([Grant(lease(2))]), return_exceptions=True
        )
        return list(results)

    results = asyncio.run(main())
    assert all(isinstance(r, StoreError) for r in results), results
    assert "leases.db: cannot write the lease database (database is locked)" in str(results[0])
    # The store says so once for the transaction, not once for each change in it.
    said = [r for r in caplog.records if "cannot write the lease database" in r.getMessage()]
    assert len(said) == 1 and said[0].levelname == "ERROR"
    assert not store._db.in_transaction
    blocker.execute("ROLLBACK")
    blocker.close()
    commit_all(store, [[Grant(lease(3))]])  # a later turn tries again, and it is kept
    store.close()
    again = LeaseStore(path)
    assert again.load_leases() == [lease(3)]
    again.close()


def _refuse_deletes(path: Path, of: str | None = None) -> sqlite3.Connection:
    """Another connection with a trigger that makes a DELETE (of one lease id,
    or of any) fail, as a disk that refuses the write would."""
    other = sqlite3.connect(path, isolation_level=None)
    when = f" WHEN OLD.id = '{of}'" if of else ""
    other.execute(
        f"CREATE TRIGGER refuse BEFORE DELETE ON leases{when}"
        " BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
    )
    return other


@pytest.mark.parametrize("then", ["commit", "close"])
def test_a_release_that_could_not_be_written_goes_again_with_the_next_commit(
    tmp_path: Path, then: str
) -> None:
    """The seat is free whatever the disk said; the file catches up with the
    next transaction that succeeds (or as the store closes), so a later
    start does not revive it."""
    path = tmp_path / "leases.db"
    store = LeaseStore(path)
    store.commit_now([Grant(lease(1))])
    other = _refuse_deletes(path)
    with pytest.raises(StoreError, match="disk on fire"):
        store.commit_now([Release(lease(1).id)])
    other.execute("DROP TRIGGER refuse")
    other.close()
    if then == "commit":
        store.commit_now([Grant(lease(2))])
    store.close()
    again = LeaseStore(path)
    assert again.load_leases() == ([lease(2)] if then == "commit" else [])
    again.close()


def test_a_release_that_cannot_be_written_does_not_hold_up_the_others(tmp_path: Path) -> None:
    path = tmp_path / "leases.db"
    store = LeaseStore(path)
    store.commit_now([Grant(lease(1)), Grant(lease(2))])
    other = _refuse_deletes(path, of=lease(1).id)
    with pytest.raises(StoreError):
        store.commit_now([Release(lease(1).id)])
    store.commit_now([Grant(lease(3))])  # kept, though the owed release fails again
    store.commit_now([Release(lease(2).id)])
    held = sorted(row[0] for row in other.execute("SELECT id FROM leases"))
    assert held == [lease(1).id, lease(3).id]
    other.execute("DROP TRIGGER refuse")
    other.close()
    store.commit_now([Meta("latest", "1")])
    store.close()
    again = LeaseStore(path)
    assert again.load_leases() == [lease(3)]
    again.close()


class Syncs:
    """What a store does about durability: the statements its connection runs
    (SQLite's trace callback) and the files our code fdatasyncs."""

    def __init__(self, store: LeaseStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.statements: list[str] = []
        self.synced: list[str] = []
        store._db.set_trace_callback(self.statements.append)
        real = os.fdatasync

        def fdatasync(fd: int) -> None:
            self.synced.append(os.readlink(f"/proc/self/fd/{fd}"))
            real(fd)

        monkeypatch.setattr(store_module.os, "fdatasync", fdatasync)

    def commits(self) -> list[str]:
        """The synchronous setting each COMMIT ran under, in order."""
        setting, seen = "FULL", []
        for statement in self.statements:
            if statement.startswith("PRAGMA synchronous="):
                setting = statement.split("=", 1)[1]
            elif statement == "COMMIT":
                seen.append(setting)
        return seen


def test_a_transaction_of_checkins_alone_is_written_now_and_synced_soon_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkin's release is answered before it is written: it does not hold
    the loop for an fsync, but is on disk within RELEASE_SYNC_SECONDS."""
    monkeypatch.setattr(store_module, "RELEASE_SYNC_SECONDS", 0.25)
    store = LeaseStore(tmp_path / "leases.db")
    a = lease(1)
    commit_all(store, [[Grant(a)]])
    watch = Syncs(store, monkeypatch)
    told: list[object] = []

    async def main() -> None:
        store.commit_then([Release(a.id)], told.append, sync=False)
        while not told:
            await asyncio.sleep(0)
        assert watch.commits() == ["NORMAL"] and watch.synced == []
        # Written, visible to any other connection (and so safe from a crash of
        # the server), though not yet fsync'd.
        other = sqlite3.connect(tmp_path / "leases.db")
        assert other.execute("SELECT count(*) FROM leases").fetchone() == (0,)
        other.close()
        await asyncio.sleep(0.5)

    asyncio.run(main())
    assert told == [None]
    assert watch.synced == [str(tmp_path / "leases.db-wal")]
    assert (store.batches, store.syncs) == (2, 2)
    assert store._db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL again
    store.close()
    assert watch.synced == [str(tmp_path / "leases.db-wal")]  # nothing left to sync


@pytest.mark.parametrize(
    ("gap", "commits"),
    [(None, ["FULL"]), (0.01, ["NORMAL", "FULL"])],
    ids=["in-the-same-transaction", "in-the-next-one"],
)
def test_a_grant_committed_soon_after_a_release_syncs_it_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gap: float | None, commits: list[str]
) -> None:
    """A grant's fsync takes the written releases along (in its transaction
    or before it in the WAL): no sync of their own is due then."""
    monkeypatch.setattr(store_module, "RELEASE_SYNC_SECONDS", 0.5)
    store = LeaseStore(tmp_path / "leases.db")
    a, b = lease(1), lease(2)
    commit_all(store, [[Grant(a)]])
    watch = Syncs(store, monkeypatch)

    async def main() -> None:
        store.commit_then([Release(a.id)], lambda _: None, sync=False)
        if gap is not None:
            await asyncio.sleep(gap)  # written by now, in a transaction of its own
        await store.commit([Grant(b)])
        await asyncio.sleep(0.7)

    asyncio.run(main())
    assert watch.commits() == commits
    assert watch.synced == []
    assert store.syncs == 2  # the first grant's and the second's
    store.close()
    again = LeaseStore(tmp_path / "leases.db")
    assert again.load_leases() == [b]
    again.close()


def test_closing_the_store_syncs_what_was_written_without(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LeaseStore(tmp_path / "leases.db")  # RELEASE_SYNC_SECONDS as shipped: 1 s
    a = lease(1)
    commit_all(store, [[Grant(a)]])
    watch = Syncs(store, monkeypatch)

    async def main() -> None:
        store.commit_then([Release(a.id)], lambda _: None, sync=False)
        await asyncio.sleep(0.01)
        store.close()  # the server stopping, well before the sync is due

    asyncio.run(main())
    assert watch.commits() == ["NORMAL"]
    assert watch.synced == [str(tmp_path / "leases.db-wal")]
    again = LeaseStore(tmp_path / "leases.db")
    assert again.load_leases() == []
    again.close()


def test_what_is_queued_when_the_store_closes_is_committed(tmp_path: Path) -> None:
    store = LeaseStore(tmp_path / "leases.db")
    told: list[object] = []

    async def main() -> None:
        store.commit_then([Grant(lease(1))], told.append)
        store.close()  # before the loop turn ends

    asyncio.run(main())
    assert told == [None]
    again = LeaseStore(tmp_path / "leases.db")
    assert [x.handle for x in again.load_leases()] == [1]
    again.close()


def test_a_commit_after_close_fails(tmp_path: Path) -> None:
    store = LeaseStore(tmp_path / "leases.db")
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.commit_now([Grant(lease(1))])


def test_serve_says_in_one_line_when_the_lease_database_cannot_be_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kit = Kit(tmp_path)
    kit.write_license()
    (kit.state / "leases.db").mkdir(parents=True)  # a directory: not a database
    code = main([*ServerProcess(kit, "--vendor-key", str(kit.vendor_pub)).args])
    err = capsys.readouterr().err
    assert code == 78, err
    assert "leases.db: cannot open the lease database" in err
    assert "Traceback" not in err


# -- a database of an older release, or of another shape ------------------------------

FIRST_SCHEMA = """
CREATE TABLE leases (
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
    key BLOB NOT NULL
);
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""  # leases.db as the first release wrote it (no hostid, address, borrow_until_ms, handle)


def first_release_database(path: Path, *leases: Lease) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(FIRST_SCHEMA)
    for x in leases:
        db.execute(
            "INSERT INTO leases VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (x.id, x.feature, x.version, x.user, x.host, x.display, x.pid, x.project,
             x.line_id, x.granted_at_ms, x.key),
        )  # fmt: skip
    db.execute("INSERT INTO meta VALUES ('latest_wall_ms', '1700000000000')")
    db.close()


def table_info(path: Path) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA table_info(leases)").fetchall()
    finally:
        db.close()


def test_a_database_of_the_first_release_gets_the_later_columns(tmp_path: Path) -> None:
    old = lease(1, hostid="", address="", handle=0)
    first_release_database(tmp_path / "leases.db", old)
    store = LeaseStore(tmp_path / "leases.db")
    assert store.load_leases() == [old]  # the later columns read as their defaults
    assert store.load_meta("latest_wall_ms") == "1700000000000"
    new = lease(2, hostid="machine:abcd", borrow_until_ms=5)
    commit_all(store, [[Grant(new)]])
    store.close()
    fresh = LeaseStore(tmp_path / "fresh.db")
    fresh.close()
    # The same columns, types, constraints and defaults as a new database.
    assert table_info(tmp_path / "leases.db") == table_info(tmp_path / "fresh.db")
    again = LeaseStore(tmp_path / "leases.db")
    assert again.load_leases() == [old, new]
    again.close()


def test_a_lease_table_of_another_shape_is_a_store_error_naming_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "leases.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE leases (id TEXT PRIMARY KEY, owner TEXT)")
    db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, other TEXT)")
    db.close()
    store = LeaseStore(path)
    with pytest.raises(StoreError, match=r"leases\.db: cannot read the lease database .*feature"):
        store.load_leases()
    with pytest.raises(StoreError, match=r"leases\.db: cannot read the lease database .*value"):
        store.load_meta("latest_wall_ms")
    store.close()


def test_a_start_up_release_that_fails_is_a_store_error_and_keeps_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "leases.db"
    store = LeaseStore(path)
    store.commit_now([Grant(lease(1))])
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TRIGGER keep BEFORE DELETE ON leases BEGIN SELECT RAISE(ABORT, 'kept'); END")
    db.close()
    with pytest.raises(StoreError, match=r"leases\.db: cannot write the lease database \(kept\)"):
        store.commit_now([Grant(lease(2)), Release(lease(1).id)])
    assert not store._db.in_transaction  # rolled back: the connection is usable
    assert store.load_leases() == [lease(1)]
    store.close()
