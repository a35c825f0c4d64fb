"""The SQLite lease store on a real database file: group commit, order, restart."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from netmap_lm.engine.seats import Lease
from netmap_lm.store.sqlite import MAX_BATCH, Grant, LeaseStore, Meta, Release, StoreError


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
    store = LeaseStore(path)
    blocker = sqlite3.connect(path, isolation_level=None, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")  # the writer cannot get the lock

    async def main() -> list[BaseException | None]:
        store.start()
        store._db.execute("PRAGMA busy_timeout=0")
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
