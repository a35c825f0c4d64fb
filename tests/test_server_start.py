"""What ``LicenseServer.start`` does with the leases of the last run, on a real
state directory (lease database, report log) and a real listening socket."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from netmap_lm.engine.seats import Lease
from netmap_lm.reports.records import LogReader
from netmap_lm.server.app import LicenseServer
from netmap_lm.server.config import ServerConfig
from netmap_lm.store.sqlite import Change, Grant, LeaseStore, Release
from support import Kit, free_port


def held(n: int, feature: str) -> Lease:
    return Lease(
        id=f"{n:032x}",
        feature=feature,
        version="5.0",
        user=f"user{n}",
        host="ws1",
        display=":0",
        pid=100 + n,
        project="",
        line_id="retired-line",
        granted_at_ms=1_700_000_000_000 + n,
        key=bytes([n]) * 32,
    )


def test_leases_that_no_longer_fit_are_released_in_one_commit(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit.write_license()  # netmap only: the "retired" leases fit no line
    kept = held(1, "netmap")
    gone = [held(n, "retired") for n in (2, 3, 4)]
    store = LeaseStore(kit.state / "leases.db")
    store.commit_now([Grant(x) for x in [kept, *gone]])
    store.close()

    commits: list[list[Change]] = []
    commit_now = LeaseStore.commit_now

    def counted(self: LeaseStore, changes: Sequence[Change]) -> None:
        commits.append(list(changes))
        commit_now(self, changes)

    monkeypatch.setattr(LeaseStore, "commit_now", counted)
    config = ServerConfig(
        license_path=kit.license,
        state_dir=kit.state,
        vendor_key_path=kit.vendor_pub,
        port=free_port(),
        bind="127.0.0.1",
        udp=False,
    )

    async def start_and_stop() -> None:
        server = LicenseServer(config)
        await server.start()
        assert list(server.engine.leases) == [kept.id]
        await server.stop()

    asyncio.run(start_and_stop())
    assert commits == [[Release(x.id) for x in gone]]  # one transaction, one fsync
    again = LeaseStore(kit.state / "leases.db")
    assert [x.id for x in again.load_leases()] == [kept.id]
    again.close()
    checkins = [r for r in LogReader([kit.state / "report.log"]) if r.kind == "CHECKIN"]
    assert [(r.fields["lease"], r.fields["reason"]) for r in checkins] == [
        (x.id, "shutdown") for x in gone
    ]
