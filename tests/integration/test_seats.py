"""Three seats, three holders: the fourth request is refused (SPEC §6, §9)."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from support import Kit, ServerProcess, wait_for

from ._util import Holders, cli_status, in_use


@contextmanager
def _three_held(kit: Kit) -> Iterator[Holders]:
    """A three-seat server with all three seats held by ``netmap-lm run`` holders."""
    kit.write_license()
    holders = Holders(kit)
    try:
        with ServerProcess(kit, heartbeat_interval=1.0, lease_timeout=4.0):
            procs = [holders.spawn("netmap", "--version", "5.0") for _ in range(3)]
            for proc in procs:
                holders.wait_running(proc)
            assert wait_for(lambda: in_use(kit) == 3, 10.0)
            yield holders
    finally:
        holders.close()


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kit]:
    """Shared by the tests that only look (they change nothing)."""
    kit = Kit(tmp_path_factory.mktemp("seats"))
    with _three_held(kit):
        yield kit


def test_three_holders_fill_three_seats(full: Kit) -> None:
    report = cli_status(full)
    (feature,) = report["features"]
    assert feature["name"] == "netmap"
    assert feature["seats"] == 3
    assert feature["in_use"] == 3
    assert len({lease["lease"] for lease in feature["leases"]}) == 3
    assert {lease["version"] for lease in feature["leases"]} == {"5.0"}


def test_fourth_checkout_is_refused_seats_exhausted(full: Kit) -> None:
    result = full.cli("checkout", "netmap", "--json")
    assert result.returncode == 75, (result.stdout, result.stderr)
    assert result.stderr.startswith("netmap-lm: SEATS_EXHAUSTED: ")
    report = json.loads(result.stdout)
    assert report == {"ok": False, "reason": "SEATS_EXHAUSTED", "message": report["message"]}
    assert "3" in report["message"]
    # The refusal did not take or free a seat.
    assert in_use(full) == 3


def test_fourth_run_is_refused_and_never_starts_its_command(full: Kit, tmp_path: Path) -> None:
    marker = f"{tmp_path}/ran"
    result = full.cli("run", "netmap", "--", "touch", marker)
    assert result.returncode == 75, (result.stdout, result.stderr)
    assert "SEATS_EXHAUSTED" in result.stderr
    assert not os.path.exists(marker)


def test_seat_checked_in_by_holder_is_free_for_the_next(kit: Kit) -> None:
    """A holder whose command ends checks in at once (not after the timeout)."""
    kit.write_license([kit.feature_line("netmap", seats=1)])
    holders = Holders(kit)
    try:
        with ServerProcess(kit, heartbeat_interval=1.0, lease_timeout=30.0):
            holder = holders.spawn()
            sleep_pid = holders.wait_running(holder)
            assert kit.cli("checkout", "netmap").returncode == 75
            os.kill(sleep_pid, signal.SIGTERM)  # the gated command ends
            assert holder.wait(timeout=10) == 128 + signal.SIGTERM  # run exits with its code
            assert in_use(kit) == 0  # at once, not after the 30 s timeout
            result = kit.cli("checkout", "netmap")
            assert result.returncode == 0, result.stderr
    finally:
        holders.close()
