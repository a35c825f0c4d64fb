"""Crashes on either side: a killed holder loses its seat after the timeout; a
killed server comes back with every lease still held (SPEC §6)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from support import Kit, ServerProcess, wait_for

from ._util import Holders, cli_status, in_use, lease_ids

HEARTBEAT_INTERVAL = 1.0
LEASE_TIMEOUT = 4.0
SWEEP_SLACK = 1.5  # the server's sweep period and scheduling


@pytest.fixture
def holders(kit: Kit) -> Iterator[Holders]:
    h = Holders(kit)
    try:
        yield h
    finally:
        h.close()


def _server(kit: Kit) -> ServerProcess:
    return ServerProcess(kit, heartbeat_interval=HEARTBEAT_INTERVAL, lease_timeout=LEASE_TIMEOUT)


def _hold_all_three(kit: Kit, holders: Holders) -> None:
    procs = [holders.spawn() for _ in range(3)]
    for proc in procs:
        holders.wait_running(proc)
    assert wait_for(lambda: in_use(kit) == 3, 10.0)


def test_killed_holder_seat_is_freed_within_lease_timeout(kit: Kit, holders: Holders) -> None:
    kit.write_license()
    with _server(kit):
        _hold_all_three(kit, holders)
        victim = holders.procs[1]
        victim_lease = next(
            lease["lease"]
            for lease in cli_status(kit)["features"][0]["leases"]
            if lease["pid"] == victim.pid
        )
        # Let the victim send a heartbeat or two first: the timeout counts from the last one.
        time.sleep(HEARTBEAT_INTERVAL * 1.5)
        killed_at = time.monotonic()
        holders.kill9(victim)

        assert wait_for(lambda: in_use(kit) < 3, LEASE_TIMEOUT + HEARTBEAT_INTERVAL + 5, 0.1)
        freed_after = time.monotonic() - killed_at
        assert freed_after <= LEASE_TIMEOUT + HEARTBEAT_INTERVAL + SWEEP_SLACK, freed_after
        # Not reclaimed early either: the last heartbeat was about one interval before the
        # kill (two, allowing for a loaded machine).
        assert freed_after >= LEASE_TIMEOUT - 2 * HEARTBEAT_INTERVAL, freed_after

        remaining = lease_ids(kit)
        assert victim_lease not in remaining
        assert len(remaining) == 2
        # The survivors are untouched and the freed seat is usable at once.
        assert all(p.poll() is None for p in holders.procs if p is not victim)
        result = kit.cli("checkout", "netmap", "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["ok"] is True


def test_server_crash_keeps_leases_and_holders_after_restart(kit: Kit, holders: Holders) -> None:
    # grace=1 (minute): the holders wait out the restart however slow the machine is;
    # the server still reclaims any lease not re-asserted within LEASE_TIMEOUT of it.
    kit.write_license([kit.feature_line("netmap", grace=1)])
    first = _server(kit).start()
    try:
        _hold_all_three(kit, holders)
        before = lease_ids(kit)
        assert len(before) == 3
        first.kill()  # SIGKILL: no clean shutdown, no chance to save anything more
        assert first.proc is not None and first.proc.returncode == -9
    finally:
        first.kill()

    with _server(kit) as second:
        restarted_at = time.monotonic()
        report = cli_status(kit)
        (feature,) = report["features"]
        assert {lease["lease"] for lease in feature["leases"]} == before
        assert feature["in_use"] == 3
        assert feature["seats"] == 3

        refused = kit.cli("checkout", "netmap", "--json")
        assert refused.returncode == 75, (refused.stdout, refused.stderr)
        assert json.loads(refused.stdout)["reason"] == "SEATS_EXHAUSTED"

        # Well past two lease timeouts the same three leases are still held:
        # the holders re-asserted them, their heartbeats are accepted.
        time.sleep(max(0.0, 2 * LEASE_TIMEOUT + 1.0 - (time.monotonic() - restarted_at)))
        assert lease_ids(kit) == before
        assert in_use(kit) == 3
        assert all(p.poll() is None for p in holders.procs), [p.poll() for p in holders.procs]
        assert second.proc is not None and second.proc.poll() is None
        assert "3 lease(s) restored" in second.log()
        assert "timeout:" not in second.log()


def test_run_stops_its_command_and_exits_75_when_the_server_stays_away(
    kit: Kit, holders: Holders
) -> None:
    """Without grace= the holder's patience is the lease timeout; then it
    warns, sends its command SIGTERM and exits 75 (SPEC §9)."""
    lease_timeout = 2.0
    kit.write_license()
    server = ServerProcess(
        kit, heartbeat_interval=HEARTBEAT_INTERVAL, lease_timeout=lease_timeout
    ).start()
    try:
        proc = holders.spawn()
        sleep_pid = holders.wait_running(proc)
        assert wait_for(lambda: in_use(kit) == 1, 10.0)
        time.sleep(HEARTBEAT_INTERVAL * 1.5)
        killed_at = time.monotonic()
        server.kill()
        code = proc.wait(timeout=lease_timeout + 4 * HEARTBEAT_INTERVAL + 5)
        gave_up_after = time.monotonic() - killed_at
    finally:
        server.kill()
    _, err = proc.communicate(timeout=5)
    assert code == 75, err
    assert "SERVER_UNREACHABLE" in err
    assert gave_up_after >= lease_timeout - 2 * HEARTBEAT_INTERVAL, gave_up_after
    assert gave_up_after <= lease_timeout + 3 * HEARTBEAT_INTERVAL + 1.0, gave_up_after
    # Its command was stopped with it.
    assert not _alive(sleep_pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
