"""Failures of ``netmap-lm`` commands: one line on stderr naming what to fix,
and the exit code of SPEC §9 — never a traceback.  Run in-process through
``main(argv)``, as ``netmap-lm`` runs them."""

from __future__ import annotations

import json

import pytest

from netmap_lm.cli.main import main
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
    ["remove", "--lease", "x", "--state", "{state}"],
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
    assert one_line(err).startswith("netmap-lm: SERVER_UNREACHABLE: ")
    assert json.loads(out.strip().splitlines()[-1])["reason"] == "SERVER_UNREACHABLE"


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
