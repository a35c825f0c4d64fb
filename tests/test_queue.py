"""Queued checkouts: order, positions, leaving the queue (SPEC §11 checkout --wait)."""

from __future__ import annotations

import json
import signal
import threading
import time

from netmap_lm import LicenseClient
from support import ServerProcess, kill_quietly, wait_for


def status(kit):
    return json.loads(kit.cli("status", "--json").stdout)["features"][0]


def test_three_waiters_served_in_order_one_leaves(kit):
    kit.write_license([kit.feature_line(seats=1)])
    with ServerProcess(kit):
        holder = LicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub), user="h")
        lease = holder.checkout("netmap", "5.0")
        waiters = []
        for user in ("w1", "w2", "w3"):
            env = kit.env(NETMAP_LM_USER=user)
            waiters.append(
                kit.spawn("checkout", "netmap", "--wait", "60", "--hold", "30", "--json", env=env)
            )
            expected = len(waiters)
            assert wait_for(lambda: len(status(kit)["queue"]) == expected, 10)  # noqa: B023
        try:
            queue = status(kit)["queue"]
            assert [(q["user"], q["position"]) for q in queue] == [("w1", 1), ("w2", 2), ("w3", 3)]
            # w2 gives up (its process dies): nobody behind it is held up.
            waiters[1].send_signal(signal.SIGKILL)
            assert wait_for(lambda: [q["user"] for q in status(kit)["queue"]] == ["w1", "w3"], 10)
            lease.checkin()
            assert wait_for(lambda: [x["user"] for x in status(kit)["leases"]] == ["w1"], 10)
            assert [q["user"] for q in status(kit)["queue"]] == ["w3"]
            waiters[0].send_signal(signal.SIGTERM)  # w1 ends: its seat goes to w3
            assert wait_for(lambda: [x["user"] for x in status(kit)["leases"]] == ["w3"], 15)
            assert status(kit)["queue"] == []
            out = waiters[2]
            out.send_signal(signal.SIGTERM)
            lines = [json.loads(x) for x in out.communicate(timeout=20)[0].splitlines() if x]
            assert [x.get("position") for x in lines if x.get("queued")] == [3, 2, 1]
            assert any(x.get("ok") is True and x.get("lease") for x in lines)
        finally:
            for proc in waiters:
                kill_quietly(proc)
            holder.close()


def test_wait_runs_out_with_seats_exhausted(kit):
    kit.write_license([kit.feature_line(seats=1)])
    with ServerProcess(kit):
        holder = LicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub))
        holder.checkout("netmap", "5.0")
        started = time.monotonic()
        result = kit.cli("checkout", "netmap", "--wait", "2", "--json")
        assert result.returncode == 75
        assert json.loads(result.stdout.splitlines()[-1])["reason"] == "SEATS_EXHAUSTED"
        assert time.monotonic() - started >= 1.5
        assert status(kit)["queue"] == []
        holder.close()


def test_client_library_wait_reports_positions(kit):
    kit.write_license([kit.feature_line(seats=1)])
    with ServerProcess(kit):
        a = LicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub))
        b = LicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub))
        first = a.checkout("netmap", "5.0")
        freer = threading.Timer(1.5, first.checkin)  # the seat frees a little later
        freer.start()
        positions: list[int] = []
        try:
            lease = b.checkout("netmap", "5.0", wait=20, on_queued=positions.append)
            assert positions == [1] and lease.feature == "netmap"
            lease.checkin()
        finally:
            freer.join()
            a.close()
            b.close()
