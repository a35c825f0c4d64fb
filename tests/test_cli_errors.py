"""Failures of ``netmap-lm`` commands: one line on stderr naming what to fix,
and the exit code of SPEC §9 — never a traceback.  Run in-process through
``main(argv)``, as ``netmap-lm`` runs them."""

from __future__ import annotations

import json

import pytest

from netmap_lm.cli.main import main
from netmap_lm.encoding import b64u_encode
from support import Kit, ServerProcess, free_port


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def hermetic(kit: Kit, monkeypatch: pytest.MonkeyPatch) -> Kit:
    """No demo key, token or borrow of the user's own data directory is used."""
    monkeypatch.setenv("XDG_DATA_HOME", str(kit.root / "xdg"))
    for name in ("NETMAP_LM_SERVERS", "NETMAP_LM_VENDOR_KEY", "NETMAP_LM_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return kit


# -- a refusal (LicenseDenied) from any command: its reason and exit code ----------------

UNREACHABLE_COMMANDS = [
    ["checkout", "netmap"],
    ["run", "netmap", "true"],
    ["status"],
    ["borrow", "netmap", "--hours", "1"],
    ["remove", "--lease", "0" * 32, "--state", "{state}"],
    ["reread", "--state", "{state}"],
    ["shutdown", "--state", "{state}"],
    ["audit", "--state", "{state}"],
]


@pytest.mark.parametrize("argv", UNREACHABLE_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_unreachable_server_is_one_line_and_exit_69(hermetic, capsys, argv):
    kit = hermetic
    args = [a.format(state=kit.state) for a in argv]
    where = ["--server", f"{free_port()}@127.0.0.1", "--vendor-key", str(kit.vendor_pub)]
    code, out, err = run(capsys, args[0], *where, "--json", *args[1:])
    assert code == 69, err
    line = one_line(err)
    assert line.startswith(f"netmap-lm: SERVER_UNREACHABLE: {where[1]}: ")
    assert line.count(where[1]) == 1, line  # the server is named once
    assert line.endswith(" (is the server running, on that host and port? "
                         "'netmap-lm probe HOST:PORT' says what answers there)")  # fmt: skip
    reply = json.loads(out.strip().splitlines()[-1])
    assert reply["reason"] == "SERVER_UNREACHABLE" and "probe" not in reply["message"]


def test_refusals_keep_their_reason_and_exit_code(hermetic, capsys):
    kit = hermetic
    kit.write_license()
    where = ["--server", kit.servers, "--vendor-key", str(kit.vendor_pub)]
    with ServerProcess(kit):
        code, _, err = run(capsys, "checkout", "nosuch", *where)
        assert code == 77 and one_line(err).startswith("netmap-lm: NO_SUCH_FEATURE: ")
        code, _, err = run(capsys, "status", "--feature", "nosuch", *where)
        assert code == 77 and one_line(err).startswith("netmap-lm: NO_SUCH_FEATURE: ")
        code, _, err = run(capsys, "borrow", "netmap", "--hours", "1", *where)
        assert code == 77 and one_line(err).startswith("netmap-lm: NOT_AUTHORIZED: "), err
        code, _, err = run(capsys, "reread", *where)
        assert code == 77 and one_line(err).startswith("netmap-lm: ADMIN_REQUIRED: "), err


@pytest.mark.parametrize("source", ["--server", "NETMAP_LM_SERVERS"])
def test_a_bad_server_list_names_where_it_came_from(hermetic, capsys, monkeypatch, source):
    kit = hermetic
    where = ["--vendor-key", str(kit.vendor_pub)]
    if source == "--server":
        where += ["--server", "notaport@127.0.0.1"]
    else:
        monkeypatch.setenv("NETMAP_LM_SERVERS", "notaport@127.0.0.1")
    code, _, err = run(capsys, "checkout", "netmap", *where)
    assert code == 78, err
    assert one_line(err) == (
        f"netmap-lm: CONFIG_ERROR: {source}: 'notaport@127.0.0.1': "
        "port 'notaport' is not a number from 1 to 65535"
    )


# -- which vendor key: --vendor-key, else NETMAP_LM_VENDOR_KEY, else the demo key ----------


def test_probe_finds_the_vendor_key_as_every_command(hermetic, capsys, monkeypatch):
    kit = hermetic
    target = f"127.0.0.1:{free_port()}"
    code, _, err = run(capsys, "probe", target, "--timeout", "1")
    assert code == 69 and "warning" not in err  # no key anywhere: probe does without
    demo = kit.root / "xdg/netmap-lm/demo/vendor.pub"
    demo.parent.mkdir(parents=True)
    demo.write_text("not a key\n")
    code, _, err = run(capsys, "probe", target, "--timeout", "1")
    warning, error = err.strip().splitlines()
    assert code == 78 and f"using the demo vendor key {demo}" in warning
    assert error.startswith("netmap-lm: CONFIG_ERROR: ") and str(demo) in error
    env_key = kit.root / "env.pub"
    env_key.write_text("not a key either\n")
    monkeypatch.setenv("NETMAP_LM_VENDOR_KEY", str(env_key))
    code, _, err = run(capsys, "probe", target, "--timeout", "1")
    assert code == 78 and str(env_key) in one_line(err)
    flag = ["--vendor-key", str(kit.vendor_pub)]
    code, _, err = run(capsys, "probe", target, "--timeout", "1", *flag)
    assert code == 69 and err == "", err


# -- borrow --list: a damaged record is a warning naming its file ------------------------


def test_borrow_list_skips_damaged_records_naming_them(hermetic, capsys):
    kit = hermetic
    folder = kit.root / "xdg/netmap-lm/borrow"
    folder.mkdir(parents=True)
    until = 4_102_444_800_000  # 2100-01-01
    grant = {
        "lease": "L1",
        "key": b64u_encode(bytes(32)),
        "feature": "netmap",
        "version": "5.0",
        "borrow_until": until,
    }
    good = {
        "grant": grant,
        "sig": "s",
        "feature_line": "FEATURE",
        "server_line": "SERVER",
        "server": "1493@lm1",
        "batch": [],
    }
    (folder / "netmap.json").write_text(json.dumps(good))
    damaged = {
        "nogrant": ({k: v for k, v in good.items() if k != "grant"}, "no grant"),
        "partial": (good | {"grant": {"feature": "partial"}}, "the grant has no lease"),
        "badtime": (good | {"grant": grant | {"borrow_until": "soon"}}, "no borrow_until"),
        "hugetime": (good | {"grant": grant | {"borrow_until": 10**30}}, "out of range"),
        "alist": ([good], "not a JSON object"),
    }
    for name, (record, _) in damaged.items():
        (folder / f"{name}.json").write_text(json.dumps(record))
    (folder / "cut.json").write_text('{"grant": {"feat')
    (folder / "netmap.json.123.tmp").write_text("{")  # a save in progress: not a record
    code, out, err = run(capsys, "borrow", "--list")
    assert code == 0, err
    ((line),) = out.splitlines()
    assert line.startswith("netmap v5.0 until 2") and line.endswith("from 1493@lm1 (lease L1)")
    assert "Traceback" not in err and len(err.splitlines()) == len(damaged) + 1
    for name, (_, why) in [*damaged.items(), ("cut", ("", "not a JSON object"))]:
        warning = f"netmap-lm: warning: {folder / name}.json: not a borrow record ("
        assert any(w.startswith(warning) and why in w for w in err.splitlines()), (name, err)
    code, out, json_err = run(capsys, "borrow", "--list", "--json")
    assert code == 0 and json_err == err
    assert json.loads(out) == [grant | {"server": "1493@lm1"}]
