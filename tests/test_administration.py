"""Options file and license types end to end: real server, identities from the environment."""

from __future__ import annotations

import json

import pytest

from support import ServerProcess


def checkout(kit, user, host="ws1", *args):
    env = kit.env(NETMAP_LM_USER=user, NETMAP_LM_HOST=host)
    return kit.cli("checkout", "netmap", "--json", *args, env=env)


def reason(result):
    return json.loads(result.stdout.splitlines()[-1]).get("reason")


def hold(kit, user, host="ws1"):
    env = kit.env(NETMAP_LM_USER=user, NETMAP_LM_HOST=host)
    return kit.spawn("run", "netmap", "--", "sleep", "60", env=env)


def in_use(kit):
    return json.loads(kit.cli("status", "--json").stdout)["features"][0]["in_use"]


@pytest.fixture
def with_options(kit):
    def start(options: str, **feature):
        path = kit.root / "site.opt"
        path.write_text(options)
        kit.write_license([kit.feature_line(**feature)])
        return ServerProcess(kit, "--options", str(path)).start()

    return start


def test_exclude_reserve_and_max_through_a_real_server(kit, with_options):
    from support import wait_for

    server = with_options(
        "GROUP eng ann bob\n"
        "EXCLUDE netmap USER mallory\n"
        "RESERVE 1 netmap USER carol\n"
        "MAX 1 netmap GROUP eng\n",
        seats=3,
    )
    holders = []
    try:
        result = checkout(kit, "mallory")
        assert result.returncode == 77 and reason(result) == "NOT_AUTHORIZED"
        holders.append(hold(kit, "ann"))
        assert wait_for(lambda: in_use(kit) == 1, 10)
        result = checkout(kit, "bob")  # eng already holds its MAX of 1
        assert result.returncode == 75 and reason(result) == "SEATS_EXHAUSTED"
        assert "MAX 1 for GROUP eng" in result.stderr
        holders.append(hold(kit, "dave"))
        assert wait_for(lambda: in_use(kit) == 2, 10)
        # The last free seat is carol's: erin is refused, carol is served.
        result = checkout(kit, "erin")
        assert result.returncode == 75 and "reserved for USER carol" in result.stderr
        assert checkout(kit, "carol").returncode == 0
        status = json.loads(kit.cli("status", "--json").stdout)["features"][0]
        assert status["reservations"][0]["name"] == "carol"
        lmstat = kit.cli("status", "--lmstat").stdout
        assert "\t1 RESERVATION for USER carol (" in lmstat
        assert "(Total of 3 licenses issued;  Total of 2 licenses in use)" in lmstat
    finally:
        for proc in holders:
            proc.kill()
            proc.wait()
        server.kill()


def test_bad_options_file_refuses_to_start_with_file_and_line(kit):
    path = kit.root / "bad.opt"
    path.write_text("# ok\nRESERVE many netmap USER carol\n")
    kit.write_license()
    result = kit.cli(*ServerProcess(kit, "--options", str(path)).args)
    assert result.returncode == 78
    assert f"{path}:2:" in result.stderr and "RESERVE" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_options_file_with_several_problems_names_them_all_before_refusing(kit):
    path = kit.root / "bad.opt"
    path.write_text(
        "GROUP eng ann\nRESERVE many netmap USER carol\nMAX 1 netmap GROUP qa\nLINGR netmap 5\n"
    )
    kit.write_license()
    result = kit.cli(*ServerProcess(kit, "--options", str(path)).args)
    assert result.returncode == 78, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert [n for n in (2, 3, 4) if any(f"{path}:{n}:" in x for x in lines)] == [2, 3, 4]
    assert lines[-1].endswith("(fix the options file; nothing was changed)")


def test_bad_options_on_reread_keeps_the_old_ones(kit, with_options):
    server = with_options("EXCLUDE netmap USER mallory\n")
    try:
        (kit.root / "site.opt").write_text("EXCLUDE netmap PERSON mallory\nMAX x netmap\n")
        result = kit.cli("reread", "--state", str(kit.state), "--json")
        assert result.returncode == 77 and "site.opt:1" in result.stdout
        assert "site.opt:2" in result.stdout  # every problem, not the first only
        assert reason(checkout(kit, "mallory")) == "NOT_AUTHORIZED"  # still excluded
        (kit.root / "site.opt").write_text("# nobody excluded now\nRESERVE 1 netmapp USER ann\n")
        result = kit.cli("reread", "--state", str(kit.state))
        assert result.returncode == 0, result.stderr
        # The administrator who made the typo sees it, not only the server's log.
        assert "warning: " in result.stderr and "site.opt:2: RESERVE names feature 'netmapp'" in (
            result.stderr
        )
        assert "(did you mean 'netmap'?)" in result.stderr
        assert checkout(kit, "mallory").returncode == 0
    finally:
        server.kill()


def test_node_locked_and_named_lines(kit):
    kit.write_license(
        [
            kit.feature_line(
                "cad", seats="uncounted", type="nodelocked", hostid="machine:aaaabbbbccccdddd"
            ),
            kit.feature_line("viewer", seats=2, type="named", users="ann,bob"),
        ]
    )
    with ServerProcess(kit):
        env = kit.env(NETMAP_LM_HOSTID="machine:0000000000000000")
        result = kit.cli("checkout", "cad", "--json", env=env)
        assert result.returncode == 77 and reason(result) == "HOSTID_MISMATCH"
        env = kit.env(NETMAP_LM_HOSTID="mac:1,machine:aaaabbbbccccdddd")
        assert kit.cli("checkout", "cad", env=env).returncode == 0
        env = kit.env(NETMAP_LM_USER="zed")
        result = kit.cli("checkout", "viewer", "--json", env=env)
        assert result.returncode == 77 and reason(result) == "NOT_AUTHORIZED"
        assert kit.cli("checkout", "viewer", env=kit.env(NETMAP_LM_USER="bob")).returncode == 0


def test_dup_grouping_and_linger_through_a_real_server(kit):
    from support import wait_for

    kit.write_license([kit.feature_line(seats=1, dup="user_host", linger=2)])
    with ServerProcess(kit):
        first = hold(kit, "ann")
        try:
            assert wait_for(lambda: in_use(kit) == 1, 10)
            # The same user on the same host: the same seat.
            assert checkout(kit, "ann").returncode == 0
            assert reason(checkout(kit, "bob")) == "SEATS_EXHAUSTED"
        finally:
            first.terminate()
            first.wait()
        # After checkin the seat lingers for 2 s, then frees.
        assert in_use(kit) == 1
        assert reason(checkout(kit, "bob")) == "SEATS_EXHAUSTED"
        assert wait_for(lambda: in_use(kit) == 0, 6)
        assert checkout(kit, "bob").returncode == 0
