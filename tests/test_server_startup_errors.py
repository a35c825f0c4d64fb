"""``netmap-lm serve`` on a state directory it cannot use: one line naming the
file and what to do, exit 78 (a configuration error), never a traceback."""

from __future__ import annotations

import os
import sqlite3
import subprocess

import pytest

from support import Kit, ServerProcess, free_port


def serve_once(kit: Kit) -> subprocess.CompletedProcess[str]:
    """Run ``netmap-lm serve`` to completion: it must refuse to start."""
    return kit.cli(*ServerProcess(kit).args)


def assert_one_line_config_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode == 78, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_a_report_log_that_is_a_directory_is_named_with_the_fix(kit: Kit) -> None:
    kit.write_license()
    (kit.state / "report.log").mkdir()
    line = assert_one_line_config_error(serve_once(kit), f"{kit.state / 'report.log'}:")
    assert "cannot open the report log" in line and "a file the server's user can write" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_a_read_only_state_directory_is_named_with_the_fix(kit: Kit) -> None:
    kit.write_license()
    os.chmod(kit.state, 0o500)
    try:
        line = assert_one_line_config_error(serve_once(kit), "report.log:", "Permission denied")
    finally:
        os.chmod(kit.state, 0o700)
    assert "cannot open the report log" in line


def test_an_admin_credential_that_cannot_be_created_is_named_with_the_fix(kit: Kit) -> None:
    kit.write_license()
    token = kit.state / "admin.token"
    token.unlink()
    token.symlink_to(kit.root / "unmounted" / "admin.token")  # a dangling link: not writable
    line = assert_one_line_config_error(serve_once(kit), f"{token}:")
    assert "cannot create the admin credential" in line
    assert f"netmap-lm server init --state {kit.state}" in line


def test_a_lease_database_of_another_shape_is_named_with_the_fix(kit: Kit) -> None:
    kit.write_license()
    with sqlite3.connect(kit.state / "leases.db") as db:  # not ours: no feature column
        db.execute("CREATE TABLE leases (id TEXT PRIMARY KEY, owner TEXT)")
    db.close()
    line = assert_one_line_config_error(serve_once(kit), f"{kit.state / 'leases.db'}:")
    assert "cannot read the lease database" in line and "move it away" in line


def test_a_meta_table_of_another_shape_is_named_with_the_fix(kit: Kit) -> None:
    kit.write_license()
    with sqlite3.connect(kit.state / "leases.db") as db:
        db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, other TEXT)")
    db.close()
    line = assert_one_line_config_error(serve_once(kit), f"{kit.state / 'leases.db'}:")
    assert "move it away" in line


def test_a_state_directory_another_server_holds_is_refused(kit: Kit) -> None:
    """Two servers on one state directory would each count the license's seats
    and write into one lease database: the second one is refused, the first
    goes on serving, and a server killed with -9 leaves no stale lock."""
    kit.write_license()
    first = ServerProcess(kit).start()
    try:
        assert first.proc is not None
        second = ServerProcess(kit).args
        second[second.index("--port") + 1] = str(free_port())
        line = assert_one_line_config_error(
            kit.cli(*second), f"{kit.state} is in use by another netmap-lm serve"
        )
        assert f"pid {first.proc.pid}" in line and "its own --state DIR" in line
        assert (kit.state / "serve.lock").stat().st_mode & 0o777 == 0o600
        held = kit.cli("checkout", "netmap", "--json")
        assert held.returncode == 0, held.stderr  # the first server is untouched
    finally:
        first.kill()  # SIGKILL: the kernel drops the lock with the process
    with ServerProcess(kit):
        again = kit.cli("checkout", "netmap", "--json")
        assert again.returncode == 0, again.stderr


def test_a_license_of_another_vendor_is_named_as_such_not_as_a_missing_server_line(
    kit: Kit, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The key given is not the one that signed the file: every line fails only
    its signature.  (Before, the server said there was no SERVER line for its
    key and sent the administrator to the vendor for a new license.)"""
    kit.write_license()
    other = Kit(tmp_path_factory.mktemp("other-vendor"))
    env = kit.env(NETMAP_LM_VENDOR_KEY=str(other.vendor_pub))
    result = kit.cli(*ServerProcess(kit).args, env=env)
    line = assert_one_line_config_error(
        result, f"{kit.license}: no line verifies with the vendor key"
    )
    assert str(other.vendor_pub) in line and "--vendor-key" in line
    verified = kit.cli("license", "verify", str(kit.license), env=env)
    assert verified.returncode == 77
    assert verified.stderr.splitlines()[-1].startswith(
        f"netmap-lm: no line verifies with {other.vendor_pub} (fingerprint "
    )
    # One edited line among good ones is that line's problem alone.
    text = kit.license.read_text()
    kit.license.write_text(text.replace("seats=3", "seats=30"))
    verified = kit.cli("license", "verify", str(kit.license))
    assert verified.returncode == 77 and "no line verifies" not in verified.stderr
