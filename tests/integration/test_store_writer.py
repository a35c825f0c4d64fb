"""The lease store's writer process, seen from outside: a server whose writer
dies stops rather than grant seats it cannot keep, and a restart has every
lease that was answered."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from support import Kit, ServerProcess, wait_for

from ._util import Holders, in_use, lease_ids


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
