"""The SQLite lease store on a real database file: group commit, order, restart."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from pathlib import Path

import pytest

from netmap_lm.cli.main import main
from netmap_lm.engine.seats import Lease
from netmap_lm.store.sqlite import MAX_BATCH, Grant, LeaseStore, Meta, Release, StoreError
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
        store.start()
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


def test_a_batch_of_the_largest_size_commits_whole(tmp_path: Path) -> None:
    store = LeaseStore(tmp_path / "leases.db")
    leases = [lease(n) for n in range(MAX_BATCH)]
    commit_all(store, [[Grant(x) for x in leases]])
    assert store.changes == MAX_BATCH
    store.close()
    again = LeaseStore(tmp_path / "leases.db")
    assert again.load_leases() == leases
    again.close()


def test_meta_rows_travel_with_leases(tmp_path: Path) -> None:
    store = LeaseStore(tmp_path / "leases.db")
    commit_all(store, [[Grant(lease(1)), Meta("latest_ms", "123"), Meta("latest_ms", "124")]])
    store.close()
    again = LeaseStore(tmp_path / "leases.db")
    assert again.load_meta("latest_ms") == "124"
    assert [x.id for x in again.load_leases()] == [lease(1).id]
    again.close()


def test_a_failed_write_fails_every_future_of_its_batch_and_keeps_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "leases.db"
    store = LeaseStore(path, busy_timeout_ms=0)
    blocker = sqlite3.connect(path, isolation_level=None, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")  # the writer cannot get the lock

    async def main() -> list[BaseException | None]:
        store.start()
        results = await asyncio.gather(
            store.commit([Grant(lease(1))]), store.commit([Grant(lease(2))]), return_exceptions=True
        )
        return list(results)

    results = asyncio.run(main())
    assert all(isinstance(r, StoreError) for r in results), results
    assert "write failed" in str(results[0])
    blocker.execute("ROLLBACK")
    blocker.close()
    store.close()
    again = LeaseStore(path)
    assert again.load_leases() == []
    again.close()


def test_the_writer_ignores_ctrl_c_and_ends_with_its_pipe(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group: the writer must outlive it and
    commit what the server still hands over, then end when the pipe ends."""
    store = LeaseStore(tmp_path / "leases.db")

    async def main() -> None:
        store.start()
        assert store._writer is not None
        os.kill(store._writer.pid, signal.SIGINT)
        os.kill(store._writer.pid, signal.SIGTERM)
        await asyncio.sleep(0.2)
        await store.commit([Grant(lease(1))])

    asyncio.run(main())
    writer = store._writer
    assert writer is not None
    store.close()
    assert writer.returncode == 0
    again = LeaseStore(tmp_path / "leases.db")
    assert [x.handle for x in again.load_leases()] == [1]
    again.close()


def test_a_dead_writer_fails_what_waits_and_everything_after(tmp_path: Path) -> None:
    store = LeaseStore(tmp_path / "leases.db")
    broken: list[str] = []
    store.on_broken = broken.append

    async def main() -> list[object]:
        store.start()
        await store.commit([Grant(lease(1))])
        assert store._writer is not None
        os.kill(store._writer.pid, signal.SIGKILL)
        store._writer.wait()
        results: list[object] = []
        for n in (2, 3):
            try:
                await asyncio.wait_for(store.commit([Grant(lease(n))]), 10)
                results.append("committed")
            except StoreError as exc:
                results.append(exc)
        return results

    results = asyncio.run(main())
    assert all(isinstance(r, StoreError) for r in results), results
    assert len(broken) == 1 and "lease writer" in broken[0], broken
    store.close()
    again = LeaseStore(tmp_path / "leases.db")
    assert [x.handle for x in again.load_leases()] == [1]
    again.close()


def test_a_writer_that_cannot_open_the_database_is_a_store_error(tmp_path: Path) -> None:
    store = LeaseStore(tmp_path / "leases.db")
    (tmp_path / "leases.db").unlink()
    (tmp_path / "leases.db").mkdir()  # the writer opens the path anew: not a database
    with pytest.raises(StoreError, match="lease writer failed"):
        store.start()
    store.close()


def test_serve_says_in_one_line_when_the_writer_cannot_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    kit = Kit(tmp_path)
    kit.write_license()

    def refuse(self: LeaseStore) -> None:
        raise StoreError(f"{self.path}: the lease writer failed: disk on fire")

    monkeypatch.setattr(LeaseStore, "start", refuse)
    code = main([*ServerProcess(kit, "--vendor-key", str(kit.vendor_pub)).args])
    err = capsys.readouterr().err
    assert code == 78, err
    assert "leases.db: the lease writer failed: disk on fire" in err
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
    commit_all(store, [[Grant(new)]])  # the writer process opens it too
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
