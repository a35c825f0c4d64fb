"""A hand-edited license line is invalid, named by file and line; the other
lines keep serving (SPEC §3.5)."""

from __future__ import annotations

import json
from pathlib import Path

from support import Kit, ServerProcess


def _tamper(kit: Kit, lines: list[str], index: int) -> Path:
    """Write SERVER + ``lines`` and raise the seat count of ``lines[index]`` by hand."""
    assert "seats=3 " in lines[index]
    lines = list(lines)
    lines[index] = lines[index].replace("seats=3 ", "seats=30 ")
    return kit.write_license(lines)


def test_verify_names_file_and_line_of_edited_seat_count(kit: Kit) -> None:
    path = _tamper(kit, [kit.feature_line("netmap-pro"), kit.feature_line("netmap")], 1)
    assert "seats=30" in path.read_text().splitlines()[2]

    result = kit.cli("license", "verify", str(path), "--vendor-key", str(kit.vendor_pub))
    assert result.returncode != 0
    assert result.returncode == 77
    output = result.stdout + result.stderr
    assert f"{path}:3:" in output
    assert "LICENSE_INVALID" in output
    # Only the edited line is blamed; the good ones are reported ok.
    assert f"{path}:2:" not in result.stderr
    assert f"{path}:1: ok" in result.stdout
    assert f"{path}:2: ok" in result.stdout

    as_json = kit.cli("license", "verify", str(path), "--vendor-key", str(kit.vendor_pub), "--json")
    assert as_json.returncode == 77
    report = json.loads(as_json.stdout)
    assert report["ok"] is False
    assert [p["line"] for p in report["problems"]] == [3]
    assert [f["name"] for f in report["features"]] == ["netmap-pro"]


def test_untouched_license_verifies(kit: Kit) -> None:
    path = kit.write_license([kit.feature_line("netmap"), kit.feature_line("netmap-pro")])
    result = kit.cli("license", "verify", str(path), "--vendor-key", str(kit.vendor_pub))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_server_refuses_tampered_feature_and_serves_untouched_one(kit: Kit) -> None:
    path = _tamper(kit, [kit.feature_line("netmap-pro"), kit.feature_line("netmap")], 1)
    with ServerProcess(kit) as server:
        refused = kit.cli("checkout", "netmap", "--json")
        assert refused.returncode == 77, (refused.stdout, refused.stderr)
        assert json.loads(refused.stdout)["reason"] == "LICENSE_INVALID"
        assert "LICENSE_INVALID" in refused.stderr

        served = kit.cli("checkout", "netmap-pro", "--json")
        assert served.returncode == 0, served.stderr
        assert json.loads(served.stdout)["feature"] == "netmap-pro"

        report = json.loads(kit.cli("status", "--json").stdout)
        assert [f["name"] for f in report["features"]] == ["netmap-pro"]
        assert any(p.startswith(f"{path}:3: ") for p in report["problems"]), report["problems"]
        assert f"{path}:3:" in server.log()


def test_tampered_increment_line_adds_no_seats(kit: Kit) -> None:
    """Two lines of one name: the edited one is dropped, the good one still counts."""
    good = kit.feature_line("netmap", seats=1)
    _tamper(kit, [good, kit.feature_line("netmap")], 1)
    with ServerProcess(kit):
        report = json.loads(kit.cli("status", "--json").stdout)
        (feature,) = report["features"]
        assert feature["seats"] == 1
        assert len(feature["lines"]) == 1

        holder = kit.spawn("checkout", "netmap", "--hold", "20")
        try:
            line = holder.stdout.readline() if holder.stdout else ""
            assert line.startswith("granted netmap"), line
            second = kit.cli("checkout", "netmap", "--json")
            assert second.returncode == 75, second.stdout
            assert json.loads(second.stdout)["reason"] == "SEATS_EXHAUSTED"
        finally:
            holder.kill()
            holder.wait(timeout=10)
