"""The vendor and administrator commands, run in-process through ``main(argv)``."""

from __future__ import annotations

import json
import stat

import pytest

from netmap_lm.cli.main import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def issued(tmp_path, capsys):
    """vendor keygen → server init → license issue, as a vendor and an admin would."""
    code, out, _ = run(capsys, "vendor", "keygen", "--out", str(tmp_path / "v"))
    assert code == 0 and "fingerprint" in out
    code, out, _ = run(capsys, "server", "init", "--state", str(tmp_path / "s"), "--json")
    assert code == 0
    info = json.loads(out)
    assert info["created"] and info["hostid"]
    lic = tmp_path / "site.lic"
    code, out, err = run(
        capsys,
        "license",
        "issue",
        "--vendor-key",
        str(tmp_path / "v/vendor.key"),
        "--server-key",
        info["server_pub"],
        "--server-host",
        "lm1",
        "--feature",
        "netmap",
        "--seats",
        "3",
        "--version",
        "5.0",
        "--expires",
        "permanent",
        "--grace",
        "10",
        "-o",
        str(lic),
    )
    assert code == 0, err
    return tmp_path, lic


def test_keys_are_private(issued):
    root, _ = issued
    for path in (root / "v/vendor.key", root / "s/server.key"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_issue_verify_append_show(issued, capsys):
    root, lic = issued
    pub = str(root / "v/vendor.pub")
    code, out, _ = run(capsys, "license", "verify", str(lic), "--vendor-key", pub)
    assert code == 0 and ":2: ok: SERVER lm1" in out and "FEATURE netmap v5.0 3 seat(s)" in out
    code, _, err = run(
        capsys,
        "license",
        "issue",
        "--vendor-key",
        str(root / "v/vendor.key"),
        "--feature",
        "netmap",
        "--seats",
        "2",
        "--expires",
        "2030-01-01",
        "--append",
        "-o",
        str(lic),
    )
    assert code == 0, err
    code, out, _ = run(capsys, "license", "verify", str(lic), "--vendor-key", pub, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and len(report["features"]) == 2
    assert [(f["start"], f["expires"]) for f in report["features"]] == [
        ("permanent", "permanent"),
        ("permanent", "2030-01-01"),
    ]
    code, out, _ = run(capsys, "license", "verify", str(lic), "--vendor-key", pub)
    assert out.splitlines()[-2:][0].endswith(", permanent")
    assert out.splitlines()[-1].endswith(
        " seat(s) id=" + report["features"][1]["id"] + ", until 2030-01-01"
    )
    code, out, _ = run(capsys, "license", "show", str(lic), "--json")
    assert code == 0 and [f["seats"] for f in json.loads(out)["features"]] == [3, 2]
    code, out, _ = run(capsys, "license", "show", str(lic))
    assert code == 0 and "netmap" in out and "2030-01-01" in out


def test_edited_line_fails_verify_naming_file_and_line(issued, capsys):
    root, lic = issued
    lic.write_text(lic.read_text().replace("seats=3", "seats=30"))
    code, _, err = run(
        capsys, "license", "verify", str(lic), "--vendor-key", str(root / "v/vendor.pub")
    )
    assert code == 77
    assert f"{lic}:3: LICENSE_INVALID" in err and "signature" in err


def test_wrong_vendor_key_fails_every_line(issued, tmp_path, capsys):
    _, lic = issued
    run(capsys, "vendor", "keygen", "--out", str(tmp_path / "other"))
    code, _, err = run(
        capsys, "license", "verify", str(lic), "--vendor-key", str(tmp_path / "other/vendor.pub")
    )
    assert code == 77 and err.count("LICENSE_INVALID") == 2


def issue_with(vendor_key: str) -> list[str]:
    """``license issue`` of one permanent seat, signed with ``vendor_key``."""
    seat = ["--feature", "x", "--seats", "1", "--expires", "permanent", "-o", "{root}/n.lic"]
    return ["license", "issue", "--vendor-key", vendor_key, "--server-key", "{pub}", *seat]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["license", "verify", "/nonexistent.lic", "--vendor-key", "{pub}"], "cannot read"),
        (["license", "verify", "{lic}", "--vendor-key", "/nonexistent.pub"], "cannot read"),
        (["license", "verify", "{lic}", "--vendor-key", "{lic}"], "not an Ed25519 public key"),
        (
            ["license", "verify", "{lic}", "--vendor-key", "{key}"],
            "vendor.key: this is a private key; give the public key",
        ),
        (
            ["checkout", "netmap", "--server", "1@127.0.0.1", "--vendor-key", "{key}"],
            "vendor.key: this is a private key; pin the public key",
        ),
        (
            issue_with("{pub}"),
            "vendor.pub: this is a public key; give the private key",
        ),
        (
            issue_with("{lic}"),
            "not a PEM private key; expected the .key file",
        ),
        (
            [
                "license",
                "issue",
                "--vendor-key",
                "{key}",
                "--feature",
                "x",
                "--seats",
                "1",
                "--expires",
                "2027-02-30",
                "--append",
                "-o",
                "{lic}",
            ],
            "--expires",
        ),
        (
            [
                "license",
                "issue",
                "--vendor-key",
                "{key}",
                "--feature",
                "x",
                "--seats",
                "lots",
                "--expires",
                "permanent",
                "--append",
                "-o",
                "{lic}",
            ],
            "seats='lots'",
        ),
        (
            [
                "license",
                "issue",
                "--vendor-key",
                "{key}",
                "--feature",
                "x",
                "--seats",
                "1",
                "--expires",
                "permanent",
                "-o",
                "{lic}",
            ],
            "exists; use --append",
        ),
        (["vendor", "keygen", "--out", "{root}/v"], "refusing to overwrite"),
        (["serve", "--license", "{lic}"], "--state"),
        (["checkout"], "Missing argument"),
        (["checkout", "netmap", "--server", "nohost:99999", "--vendor-key", "{pub}"], "port"),
        (["frobnicate"], "No such command"),
        (["checkout", "netmap", "--version", "abc"], "'--version': version 'abc' is not dotted"),
        (["run", "netmap", "--version", "5.x", "--", "true"], "version '5.x' is not dotted"),
        (["borrow", "netmap", "--hours", "1", "--version", "1..2"], "'1..2' is not dotted"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_78(issued, capsys, argv, expected):
    root, lic = issued
    values = {
        "pub": str(root / "v/vendor.pub"),
        "key": str(root / "v/vendor.key"),
        "lic": str(lic),
        "root": str(root),
    }
    code, _, err = run(capsys, *(a.format(**values) for a in argv))
    assert code == 78, err
    assert expected in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_json_errors_go_to_stdout(issued, capsys):
    root, _ = issued
    code, out, _ = run(
        capsys,
        "checkout",
        "netmap",
        "--json",
        "--server",
        "1@127.0.0.1",
        "--vendor-key",
        str(root / "v/vendor.pub"),
    )
    assert code == 69
    assert json.loads(out)["reason"] == "SERVER_UNREACHABLE"


def test_hostid(capsys):
    code, out, _ = run(capsys, "hostid", "--json")
    ids = json.loads(out)["hostids"]
    assert code == 0 and ids and all(":" in i for i in ids)


def test_server_init_is_idempotent(tmp_path, capsys):
    _, first, _ = run(capsys, "server", "init", "--state", str(tmp_path), "--json")
    _, second, _ = run(capsys, "server", "init", "--state", str(tmp_path), "--json")
    assert json.loads(first)["server_key"] == json.loads(second)["server_key"]
    assert not json.loads(second)["created"]


def issue_args(key: str, output: str, *extra: str) -> list[str]:
    return [
        "license",
        "issue",
        "--vendor-key",
        key,
        "--feature",
        "x",
        "--seats",
        "1",
        "--expires",
        "permanent",
        *extra,
        "-o",
        output,
    ]


@pytest.mark.parametrize(
    ("output", "extra", "expected"),
    [
        ("{root}", ["--append"], "{root}: cannot read license file"),
        ("{root}/binary.lic", ["--append"], "{root}/binary.lic:1: not UTF-8 text"),
        ("{root}/n.lic", ["--server-key", "{spub}", "--server-port", "0"], "'--server-port'"),
        ("{root}/n.lic", ["--server-key", "{spub}", "--server-port", "99999"], "'--server-port'"),
        ("{root}/n.lic", ["--server-key", "{spub}", "--server-host", "h" * 9000], "SERVER line"),
        ("{root}/nodir/n.lic", ["--server-key", "{spub}"], "{root}/nodir/n.lic: cannot write"),
        (
            "{root}/n.lic",
            ["--server-key", "{spub}", "--expires", "2027-02-30"],
            "--expires: date '2027-02-30' is not a day of the calendar",
        ),
    ],
)
def test_issue_mistakes_are_one_line_and_exit_78(issued, capsys, output, extra, expected):
    root, _ = issued
    (root / "binary.lic").write_bytes(b"\x80\x81 SERVER\n")  # not UTF-8, nor UTF-16
    values = {"root": str(root), "spub": str(root / "s/server.pub")}
    argv = issue_args(str(root / "v/vendor.key"), output, *extra)
    code, _, err = run(capsys, *(a.format(**values) for a in argv))
    assert code == 78, err
    assert expected.format(**values) in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (root / "n.lic").exists()


def test_append_with_another_vendor_key_is_refused(issued, tmp_path, capsys):
    _, lic = issued
    before = lic.read_bytes()
    run(capsys, "vendor", "keygen", "--out", str(tmp_path / "other"))
    code, _, err = run(
        capsys, *issue_args(str(tmp_path / "other/vendor.key"), str(lic), "--append")
    )
    assert code == 78, err
    assert f"{lic}:2: does not verify" in err and "(and 1 more)" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert lic.read_bytes() == before


def test_an_expiry_in_the_past_is_issued_but_said(issued, capsys):
    root, _ = issued
    spub = str(root / "s/server.pub")
    argv = issue_args(str(root / "v/vendor.key"), str(root / "old.lic"), "--server-key", spub)
    code, out, err = run(capsys, *argv, "--expires", "2020-01-31")
    assert code == 0 and "wrote" in out
    assert err.startswith("netmap-lm: warning: --expires 2020-01-31 is before today (")
    assert "expired as issued" in err
    code, out, _ = run(capsys, "license", "verify", str(root / "old.lic"), "--vendor-key",
                       str(root / "v/vendor.pub"))  # fmt: skip
    assert code == 0  # every signature is good...
    assert out.splitlines()[-1].endswith(", expired 2020-01-31: it grants no seat")  # ...but
    argv = issue_args(str(root / "v/vendor.key"), str(root / "new.lic"), "--server-key", spub)
    code, _, err = run(capsys, *argv, "--expires", "2999-12-31")
    assert code == 0 and err == ""
