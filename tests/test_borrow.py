"""Borrowing: a signed grant usable offline; counted on the server across restarts."""

from __future__ import annotations

import json

import pytest

from netmap_lm import LicenseClient, LicenseDenied
from support import ServerProcess


def client(kit):
    return LicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub))


def in_use(kit):
    return json.loads(kit.cli("status", "--json").stdout)["features"][0]["in_use"]


@pytest.fixture
def borrowable(kit, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(kit.root / "xdg"))
    kit.write_license([kit.feature_line(seats=2, borrow=24)])
    return kit


def test_borrow_survives_restart_works_offline_and_returns_early(borrowable):
    kit = borrowable
    server = ServerProcess(kit).start()
    try:
        c = client(kit)
        lease = c.borrow("netmap", "5.0", hours=8)
        assert lease.grant["borrow_until"] > lease.grant["time"]
        c.close()
        assert in_use(kit) == 1
        server.kill()
        # Offline: no server at all, the borrowed seat still serves this machine.
        offline = client(kit)
        used = offline.checkout("netmap", "5.0")
        assert used.borrowed and used.id == lease.id
        used.checkin()
        server = ServerProcess(kit).start()
        assert in_use(kit) == 1  # still counted after a crash and restart (no heartbeats)
        # The CLI lists and returns it.
        listed = kit.cli("borrow", "--list", env=kit.env())
        assert "netmap" in listed.stdout
        result = kit.cli("borrow", "--return", "netmap", env=kit.env())
        assert result.returncode == 0, result.stderr
        assert in_use(kit) == 0
    finally:
        server.kill()


def test_tampered_or_foreign_borrow_is_not_used_offline(borrowable, monkeypatch):
    kit = borrowable
    with ServerProcess(kit):
        client(kit).borrow("netmap", "5.0", hours=8)
    path = kit.root / "xdg" / "netmap-lm" / "borrow" / "netmap.json"
    record = json.loads(path.read_text())
    record["grant"]["borrow_until"] += 3_600_000 * 1000  # a longer borrow, self-made
    path.write_text(json.dumps(record))
    with pytest.raises(LicenseDenied) as info:
        client(kit).checkout("netmap", "5.0")
    assert info.value.reason == "SERVER_UNREACHABLE"  # the file did not verify: it asked a server


def test_borrow_from_another_machine_is_not_used(borrowable, monkeypatch):
    kit = borrowable
    with ServerProcess(kit):
        client(kit).borrow("netmap", "5.0", hours=8)
    monkeypatch.setenv("NETMAP_LM_HOSTID", "machine:someoneelse")
    with pytest.raises(LicenseDenied) as info:
        client(kit).checkout("netmap", "5.0")
    assert info.value.reason == "SERVER_UNREACHABLE"


def test_borrow_needs_borrow_on_the_license(kit, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(kit.root / "xdg"))
    kit.write_license()
    with ServerProcess(kit):
        with pytest.raises(LicenseDenied) as info:
            client(kit).borrow("netmap", "5.0", hours=8)
        assert info.value.reason == "NOT_AUTHORIZED"
