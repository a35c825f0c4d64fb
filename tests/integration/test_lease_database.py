"""The lease database seen from outside: a server started on the database of
an older release serves the leases held in it, and one whose writes fail
grants nothing it could not keep."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from typing import Any

import pytest

from netmap_lm import LicenseClient, LicenseDenied
from netmap_lm.encoding import b64u_decode
from netmap_lm.licensing import trust
from support import Kit, LineSocket, ServerProcess, wait_for

from ._util import in_use, lease_ids, status


def test_a_lease_database_of_the_first_release_is_served_with_its_leases(kit: Kit) -> None:
    """leases.db from before host ids, addresses, borrows and handles: the
    server adds the columns and restores the held lease."""
    kit.write_license()
    db = sqlite3.connect(kit.state / "leases.db", isolation_level=None)
    db.executescript(
        "CREATE TABLE leases (id TEXT PRIMARY KEY, feature TEXT NOT NULL,"
        " version TEXT NOT NULL, user TEXT NOT NULL, host TEXT NOT NULL,"
        " display TEXT NOT NULL, pid INTEGER NOT NULL, project TEXT NOT NULL,"
        " line_id TEXT NOT NULL, granted_at_ms INTEGER NOT NULL, key BLOB NOT NULL);"
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
    )
    held = "0123456789abcdef0123456789abcdef"
    db.execute(
        "INSERT INTO leases VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (held, "netmap", "5.0", "olduser", "ws1", ":0", 42, "", "gone-line", 1, b"k" * 32),
    )
    db.close()
    with ServerProcess(kit, lease_timeout=60) as server:
        assert lease_ids(kit) == {held}, server.log()
        (lease,) = [x for x in status(kit)["features"][0]["leases"] if x["lease"] == held]
        assert lease["user"] == "olduser" and lease["handle"] == 1


def test_a_grant_that_cannot_be_written_is_not_given_and_the_server_goes_on(kit: Kit) -> None:
    """A commit that fails (here a trigger refuses the row, as a full disk
    would) answers no grant and holds no seat; the next commit is kept."""
    kit.write_license()
    with ServerProcess(kit, lease_timeout=60) as server:
        db = sqlite3.connect(kit.state / "leases.db", isolation_level=None)
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON leases"
            " BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
        )
        client = LicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub), timeout=3.0)
        try:
            with pytest.raises(LicenseDenied):
                client.checkout("netmap", version="5.0")
            assert in_use(kit) == 0
            assert "cannot write the lease database (disk on fire)" in server.log()
            db.execute("DROP TRIGGER refuse")
            lease = client.checkout("netmap", version="5.0")
            assert lease_ids(kit) == {lease.id}
            assert [row[0] for row in db.execute("SELECT id FROM leases")] == [lease.id]
        finally:
            client.close()
            db.close()
        assert server.proc is not None and server.proc.poll() is None


def test_a_checkin_that_cannot_be_written_is_answered_recorded_and_written_later(
    kit: Kit,
) -> None:
    """A checkin is answered as soon as its seat is free, before its release
    is committed: a commit that fails (a trigger refuses the DELETE) neither
    fails the checkin nor closes the connection.  The CHECKIN is recorded;
    the row goes with the next commit that succeeds, so a restart would not
    bring the lease back."""
    from support import wait_for

    kit.write_license()
    report = kit.state / "report.log"
    with ServerProcess(kit, lease_timeout=60) as server:
        client = LicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub), timeout=3.0)
        db = sqlite3.connect(kit.state / "leases.db", isolation_level=None)
        raw = LineSocket(socket.create_connection(("127.0.0.1", kit.port), timeout=5.0))
        try:
            hello = {"op": "hello", "protocol": 1, "nonce": "ab" * 16, "client": "test"}
            checkout = {"op": "checkout", "feature": "netmap", "version": "5.0"}
            checkout |= {"user": "u", "host": "h", "display": "", "pid": 1, "project": ""}
            assert _exchange(raw, hello, 1)["ok"]
            grant = _exchange(raw, checkout, 2)["grant"]
            db.execute(
                "CREATE TRIGGER refuse BEFORE DELETE ON leases"
                " BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
            )
            token = trust.lease_token(b64u_decode(grant["key"]), grant["lease"])
            checkin = {"op": "checkin", "lease": grant["lease"], "token": token}
            assert _exchange(raw, checkin, 3) == {"id": 3, "ok": True, "lease": grant["lease"]}
            assert wait_for(lambda: "cannot write the lease database" in server.log(), 10)
            assert _exchange(raw, {"op": "status"}, 4)["ok"]  # the connection goes on
            assert in_use(kit) == 0  # free, while its row is still in the file
            assert [row[0] for row in db.execute("SELECT id FROM leases")] == [grant["lease"]]
            db.execute("DROP TRIGGER refuse")
            kept = client.checkout("netmap", version="5.0", heartbeat=False)
            kept.checkin()
            assert wait_for(lambda: f"CHECKIN lease={kept.id}" in report.read_text(), 10)
            records = report.read_text()
            assert f"CHECKOUT lease={grant['lease']}" in records
            assert records.count(f"CHECKIN lease={grant['lease']}") == 1
            # The seat was free all along; the file caught up with the next commit.
            assert [row[0] for row in db.execute("SELECT id FROM leases")] == []
        finally:
            raw.close()
            client.close()
            db.close()


def test_a_checkin_waits_for_no_fsync_and_its_release_survives_a_killed_server(
    kit: Kit,
) -> None:
    """A transaction of checkins' releases alone is written without an fsync
    (the next grant's takes it along, or a sync within a second): one fsync a
    checkout+checkin, not two.  Written is safe from a crash of the server:
    killed right after, it does not bring the lease back."""
    kit.write_license()
    server = ServerProcess(kit, lease_timeout=60).start()
    client = LicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub), timeout=5.0)
    db = sqlite3.connect(kit.state / "leases.db", isolation_level=None)
    try:
        pairs, started = 20, time.monotonic()
        for _ in range(pairs):
            client.checkout("netmap", version="5.0", heartbeat=False).checkin()
        elapsed = time.monotonic() - started
        audit = kit.cli("audit", "--state", str(kit.state), "--json")
        assert audit.returncode == 0, audit.stderr
        counters = json.loads(audit.stdout)["counters"]
        # A release may share the next checkout's transaction; none is left out.
        assert counters["store_changes"] >= 2 * pairs, counters
        # One fsync a grant, at most one a second for the releases, and the
        # server's own commits of its clock (at start, once a minute).
        assert counters["store_fsyncs"] <= pairs + elapsed + 4, (counters, elapsed)

        lease = client.checkout("netmap", version="5.0", heartbeat=False)
        assert [row[0] for row in db.execute("SELECT id FROM leases")] == [lease.id]
        lease.checkin()
        assert wait_for(lambda: db.execute("SELECT count(*) FROM leases").fetchone() == (0,), 5)
        server.kill()  # SIGKILL, before the release's sync is due
    finally:
        client.close()
        db.close()
        server.kill()
    with ServerProcess(kit, lease_timeout=60) as again:
        assert lease_ids(kit) == set(), again.log()
        assert in_use(kit) == 0


def _exchange(raw: LineSocket, message: dict[str, Any], rid: int) -> dict[str, Any]:
    """Send one request with id ``rid``; its reply (the connection must stay open)."""
    raw.sock.sendall(json.dumps({**message, "id": rid}).encode() + b"\n")
    line = raw.read_line()
    assert line is not None, "the server closed the connection"
    reply = json.loads(line)
    assert reply["id"] == rid, reply
    return dict(reply)
