"""The lease store's writer process, seen from outside: a server whose writer
dies stops rather than grant seats it cannot keep, and a restart has every
lease that was answered."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

from support import Kit, ServerProcess, wait_for

from ._util import Holders, in_use, lease_ids, status


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(x) for x in text.split()]


def test_a_server_whose_writer_dies_stops_and_a_restart_keeps_the_leases(kit: Kit) -> None:
    kit.write_license()
    server = ServerProcess(kit, lease_timeout=60).start()
    holders = Holders(kit)
    try:
        holders.wait_running(holders.spawn())
        assert wait_for(lambda: in_use(kit) == 1, 10.0)
        before = lease_ids(kit)
        (writer,) = _children(server.proc.pid)
        os.kill(writer, signal.SIGKILL)
        assert server.proc is not None
        assert wait_for(lambda: server.proc.poll() is not None, 15.0), "server kept running"
        assert server.proc.returncode == 69, server.log()
        assert "lease store" in server.log() and "lease writer exited" in server.log()
        with ServerProcess(kit, lease_timeout=60) as again:
            assert lease_ids(kit) == before
            assert again.proc is not None and again.proc.poll() is None
    finally:
        server.kill()
        holders.close()


def test_the_writer_ends_with_a_killed_server(kit: Kit) -> None:
    """kill -9 of the server: its writer reads the end of the pipe and exits."""
    kit.write_license()
    server = ServerProcess(kit).start()
    try:
        assert server.proc is not None
        (writer,) = _children(server.proc.pid)
        server.kill(signal.SIGKILL)
    finally:
        server.kill()

    def gone() -> bool:
        try:
            os.kill(writer, 0)
        except ProcessLookupError:
            return True
        # A zombie until init reaps it counts as gone.
        return Path(f"/proc/{writer}/stat").read_text().split()[2] == "Z"

    assert wait_for(gone, 10.0), "the writer outlived its server"


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
