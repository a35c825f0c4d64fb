"""Admin operations against a real server: credential, remove, reread, shutdown, audit."""

from __future__ import annotations

import json
import re
import time

from netmap_lm import LicenseClient, LicenseDenied
from support import ServerProcess, wait_for


def client(kit, **kw):
    return LicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub), **kw)


def test_admin_operations_without_the_credential_are_refused(kit, server):
    for args in (["remove", "netmap", "ann", "ws1"], ["shutdown"], ["reread"], ["audit"]):
        result = kit.cli(*args, "--json")
        assert result.returncode == 77, (args, result.stderr)
        assert json.loads(result.stdout)["reason"] == "ADMIN_REQUIRED"
    assert server.proc.poll() is None  # shutdown was refused: still running


def test_a_proof_from_another_session_is_refused(kit, server):
    """The credential never travels; a proof seen on the wire is worthless elsewhere."""
    from netmap_lm.licensing import trust
    from netmap_lm.server.admin import read_admin_token

    key = read_admin_token(kit.state / "admin.token")
    c = client(kit)
    try:
        stolen = trust.admin_proof(key, "0" * 32)
        _, reply = c._request({"op": "audit", "admin": stolen})
        assert reply["reason"] == "ADMIN_REQUIRED"
    finally:
        c.close()


def test_remove_frees_the_seat_and_the_holder_is_told(kit, server):
    lost = []
    c = client(kit, user="ann", host="ws1")
    lease = c.checkout("netmap", "5.0", on_lost=lambda lease, r, m: lost.append((r, m)))
    result = kit.cli("remove", "netmap", "ann", "ws1", "--state", str(kit.state))
    assert result.returncode == 0, result.stderr
    assert lease.id in result.stdout
    status = json.loads(kit.cli("status", "--json").stdout)
    assert status["features"][0]["in_use"] == 0
    # The holder learns at its next heartbeat (interval 1 s) and is not regranted.
    assert wait_for(lambda: lost, 6)
    assert lost[0][0] == "LEASE_UNKNOWN" and "removed by an administrator" in lost[0][1]
    assert lease.lost
    c.close()
    status = json.loads(kit.cli("status", "--json").stdout)
    assert status["features"][0]["in_use"] == 0


def test_remove_by_lease_id_and_unknown_lease(kit, server):
    c = client(kit)
    lease = c.checkout("netmap", "5.0")
    token = ["--admin-token", str(kit.state / "admin.token")]
    not_an_id = kit.cli("remove", "--lease", "nope", *token)
    assert not_an_id.returncode == 78
    assert not_an_id.stderr.strip() == (
        "netmap-lm: CONFIG_ERROR: --lease 'nope': a lease id is 32 hex digits, "
        "as 'netmap-lm status' shows it"
    )
    assert kit.cli("remove", "--lease", f" {lease.id.upper()}", *token).returncode == 0
    again = kit.cli("remove", "--lease", lease.id, *token, "--json")
    assert json.loads(again.stdout)["reason"] == "LEASE_UNKNOWN"
    c.close()


def test_reread_with_fewer_seats_revokes_the_newest_leases(kit, server):
    c = client(kit)
    leases = [c.checkout("netmap", "5.0") for _ in range(3)]
    time.sleep(0.01)
    kit.write_license([kit.feature_line(seats=1, id="smaller")])
    result = kit.cli("reread", "--state", str(kit.state), "--json")
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["kept"] == 1 and set(reply["revoked"]) == {leases[1].id, leases[2].id}
    status = json.loads(kit.cli("status", "--json").stdout)
    assert [x["lease"] for x in status["features"][0]["leases"]] == [leases[0].id]
    assert wait_for(lambda: leases[1].lost and leases[2].lost, 6)
    assert "revoked" in leases[2].lost[1]
    assert not leases[0].lost
    c.close()


def test_bad_reread_keeps_the_current_license(kit, server):
    c = client(kit)
    lease = c.checkout("netmap", "5.0")
    kit.license.write_text("this is not a license\n")
    result = kit.cli("reread", "--state", str(kit.state), "--json")
    assert result.returncode == 77
    assert json.loads(result.stdout)["reason"] == "LICENSE_INVALID"
    status = json.loads(kit.cli("status", "--json").stdout)
    assert status["features"][0]["leases"][0]["lease"] == lease.id
    c.close()


def test_shutdown_is_clean_and_leases_survive_it(kit):
    kit.write_license()
    proc = ServerProcess(kit).start()
    try:
        c = client(kit)
        lease = c.checkout("netmap", "5.0", heartbeat=False)
        result = kit.cli("shutdown", "--state", str(kit.state))
        assert result.returncode == 0, result.stderr
        assert "1 lease(s) kept" in result.stdout
        proc.proc.wait(timeout=10)
        assert proc.proc.returncode == 0
        proc = ServerProcess(kit).start()
        status = json.loads(kit.cli("status", "--json").stdout)
        assert [x["lease"] for x in status["features"][0]["leases"]] == [lease.id]
    finally:
        proc.kill()


def test_admin_loopback_needs_no_credential(kit):
    kit.write_license()
    with ServerProcess(kit, "--admin-loopback"):
        result = kit.cli("audit", "--json")
        assert result.returncode == 0, result.stderr
        assert "findings" in json.loads(result.stdout)


def test_audit_lists_a_burst_of_denials(kit, server):
    c = client(kit, user="mallory", host="probe1")
    for _ in range(25):
        try:
            c.checkout("nosuchfeature")
        except LicenseDenied:
            pass
    c.close()
    result = kit.cli("audit", "--state", str(kit.state), "--json")
    kinds = {f["kind"]: f for f in json.loads(result.stdout)["findings"]}
    assert kinds["denial_burst"]["address"] == "127.0.0.1"
    assert kinds["denial_burst"]["count"] >= 1
    text = kit.cli("audit", "--state", str(kit.state))
    assert "denial_burst" in text.stdout
    # The counters too: the lease store's in a sentence, the others by name.
    assert re.search(
        r"^lease store: \d+ changes? in \d+ transactions?, \d+ fsyncs?\b", text.stdout, re.M
    )
    assert re.search(r"^counters: .*denials_NO_SUCH_FEATURE 25\b", text.stdout, re.M), text.stdout


def test_shutdown_seen_from_the_holder_lease_survives_and_is_reasserted(kit):
    """A clean shutdown keeps the lease; the running holder rides it out (grace) and,
    once the server is back, re-asserts the same lease over TCP, then UDP again."""
    kit.write_license([kit.feature_line(grace=1)])
    proc = ServerProcess(kit).start()
    c = client(kit)
    try:
        lease = c.checkout("netmap", "5.0")
        assert wait_for(lambda: lease.heartbeats_udp >= 1, 5)
        assert kit.cli("shutdown", "--state", str(kit.state)).returncode == 0
        proc.proc.wait(timeout=10)
        time.sleep(2.5)  # heartbeats go unanswered meanwhile
        assert lease.lost is None
        # Counted while the server is down (no heartbeat can succeed then): the
        # holder may re-assert before start() returns.
        tcp_before = lease.heartbeats_tcp
        proc = ServerProcess(kit).start()
        assert wait_for(lambda: lease.heartbeats_tcp > tcp_before, 10)  # re-asserted
        udp_before = lease.heartbeats_udp
        assert wait_for(lambda: lease.heartbeats_udp > udp_before, 10)  # and UDP again
        status = json.loads(kit.cli("status", "--json").stdout)
        assert [x["lease"] for x in status["features"][0]["leases"]] == [lease.id]
        assert lease.lost is None
        lease.checkin()
    finally:
        c.close()
        proc.kill()


def test_audit_counters_read_as_text_also_from_an_older_server() -> None:
    from netmap_lm.cli.output import counter_lines

    store = {"store_transactions": 4, "store_changes": 6, "store_fsyncs": 3}
    assert counter_lines({"connections": 2, **store}) == [
        "lease store: 6 changes in 4 transactions, 3 fsyncs (2.0 changes an fsync)",
        "counters: connections 2",
    ]
    assert counter_lines({"connections": 2}) == ["counters: connections 2"]  # no store counts
    one = {"store_transactions": 1, "store_changes": 1, "store_fsyncs": 1}
    assert counter_lines(one) == [
        "lease store: 1 change in 1 transaction, 1 fsync (1.0 changes an fsync)"
    ]
    assert counter_lines({k: 0 for k in store}) == [
        "lease store: 0 changes in 0 transactions, 0 fsyncs"
    ]
