"""Each kind of refusal exits with its sysexits code and names its reason (SPEC §9)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support import Kit, ServerProcess, free_port

from ._util import status


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kit]:
    """One server with an expired, a future and a current feature (up to 5.0)."""
    kit = Kit(tmp_path_factory.mktemp("refusals"))
    today = datetime.now(UTC).date()
    kit.write_license(
        [
            kit.feature_line("netmap"),
            kit.feature_line(
                "oldmap",
                start=(today - timedelta(days=60)).isoformat(),
                expires=(today - timedelta(days=2)).isoformat(),
            ),
            kit.feature_line(
                "newmap",
                start=(today + timedelta(days=2)).isoformat(),
                expires=(today + timedelta(days=60)).isoformat(),
            ),
        ]
    )
    with ServerProcess(kit):
        yield kit


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("oldmap",), "EXPIRED"),
        (("newmap",), "NOT_YET_VALID"),
        (("nosuchmap",), "NO_SUCH_FEATURE"),
        (("netmap", "--version", "6.0"), "VERSION_NOT_LICENSED"),
        (("netmap", "--version", "5.0.1"), "VERSION_NOT_LICENSED"),
    ],
    ids=["expired", "not-yet-valid", "unknown-feature", "version-too-high", "patch-too-high"],
)
def test_refused_checkout_exits_77_with_reason(
    refusing: Kit, args: tuple[str, ...], reason: str
) -> None:
    result = refusing.cli("checkout", *args, "--json")
    assert result.returncode == 77, (result.stdout, result.stderr)
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["reason"] == reason
    assert report["message"]
    # ... and one line on stderr with the reason code (SPEC §11).
    assert result.stderr == f"netmap-lm: {reason}: {report['message']}\n"


@pytest.mark.parametrize(
    ("feature", "says"),
    [
        ("netmapp", "; did you mean 'netmap' or 'newmap'?"),
        ("NetMap", "; did you mean 'netmap'? (feature names are case-sensitive)"),
        ("cad", "; this server licenses netmap, newmap, oldmap"),
    ],
)
def test_an_unknown_feature_names_the_near_ones(refusing: Kit, feature: str, says: str) -> None:
    result = refusing.cli("checkout", feature)
    assert result.returncode == 77
    assert (
        result.stderr == f"netmap-lm: NO_SUCH_FEATURE: no license for feature {feature!r}{says}\n"
    )
    result = refusing.cli("status", "--feature", feature)  # the same words
    assert result.returncode == 77 and says in result.stderr


def test_licensed_version_at_the_limit_is_granted(refusing: Kit) -> None:
    result = refusing.cli("checkout", "netmap", "--version", "5.0", "--json")
    assert result.returncode == 0, result.stderr
    grant = json.loads(result.stdout)
    assert grant["ok"] is True
    assert grant["feature"] == "netmap"
    assert grant["version"] == "5.0"


def test_a_grant_says_the_version_only_when_one_was_asked_for(refusing: Kit) -> None:
    where = f"by {refusing.servers}: lease "
    plain = refusing.cli("checkout", "netmap")
    assert plain.returncode == 0 and plain.stdout.startswith("granted netmap to ")
    assert where in plain.stdout
    versioned = refusing.cli("checkout", "netmap", "--version", "5.0")
    assert versioned.returncode == 0 and versioned.stdout.startswith("granted netmap v5.0 to ")


def test_refusals_take_no_seat(refusing: Kit) -> None:
    for _ in range(2):
        assert refusing.cli("checkout", "oldmap").returncode == 77
    assert {f["name"]: f["in_use"] for f in status(refusing)["features"]} == {
        "netmap": 0,
        "newmap": 0,
        "oldmap": 0,
    }


def test_no_server_listening_exits_69_server_unreachable(tmp_path: Path) -> None:
    kit = Kit(tmp_path)
    dead = f"{free_port()}@127.0.0.1"
    result = kit.cli("checkout", "netmap", "--server", dead, "--json")
    assert result.returncode == 69, (result.stdout, result.stderr)
    assert json.loads(result.stdout)["reason"] == "SERVER_UNREACHABLE"
    assert "SERVER_UNREACHABLE" in result.stderr
