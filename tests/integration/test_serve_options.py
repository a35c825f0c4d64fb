"""Bad numbers on the ``serve`` command line: one line naming the option, exit 78.

Each value here used to crash with a traceback (NaN and infinities reached
``int()`` or ``round()``) or start a server that could not work (no connection
allowed, every connection idle at once).  The license, state and port are
good, so without the check the server would start and the run would time out.
"""

from __future__ import annotations

import pytest

from support import Kit, ServerProcess

START_OR_REFUSE = 20.0  # seconds; a refusal takes well under that, a started server never ends


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--clock-tolerance", "nan"),
        ("--clock-tolerance", "inf"),
        ("--clock-tolerance", "-1"),
        ("--clock-tolerance", "1e308"),
        ("--heartbeat-interval", "inf"),
        ("--heartbeat-interval", "nan"),
        ("--heartbeat-interval", "0.5"),
        ("--lease-timeout", "inf"),
        ("--lease-timeout", "nan"),
        ("--lease-timeout", "1e300"),
        ("--handshake-timeout", "nan"),
        ("--handshake-timeout", "0"),
        ("--idle-timeout", "-1"),
        ("--idle-timeout", "inf"),
        ("--rate-limit", "nan"),
        ("--rate-limit", "inf"),
        ("--rate-limit", "-1"),
        ("--max-connections", "0"),
        ("--max-connections-per-address", "0"),
    ],
)
def test_serve_refuses_a_bad_number_naming_the_option(kit: Kit, option: str, value: str) -> None:
    kit.write_license()
    result = kit.cli(*ServerProcess(kit, option, value).args, timeout=START_OR_REFUSE)
    assert result.returncode == 78, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"CONFIG_ERROR: {option} must be" in lines[0], result.stderr


def test_serve_accepts_the_edges_of_each_range(kit: Kit) -> None:
    kit.write_license()
    edges = ("--clock-tolerance", "0", "--rate-limit", "0", "--max-connections", "1")
    with ServerProcess(kit, *edges) as server:
        assert server.proc is not None and server.proc.poll() is None


def test_serve_refuses_an_options_number_in_other_digits_naming_file_and_line(kit: Kit) -> None:
    kit.write_license()
    path = kit.root / "site.opt"
    path.write_text("# two seconds, in superscript\nTIMEOUTALL \u00b2\n", encoding="utf-8")
    result = kit.cli(*ServerProcess(kit, "--options", str(path)).args, timeout=START_OR_REFUSE)
    assert result.returncode == 78, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert f"{path}:2: TIMEOUTALL seconds" in line
