"""What the status table says of license lines and of the server's uptime."""

from __future__ import annotations

import pytest

from netmap_lm.cli.output import duration_text, line_text

TODAY = "2026-12-04"


def view(start: str = "permanent", expires: str = "permanent") -> dict[str, str]:
    return {"id": "netmap-1", "version": "5.0", "start": start, "expires": expires}


@pytest.mark.parametrize(
    ("start", "expires", "shown"),
    [
        ("permanent", "permanent", "netmap-1 (v5.0, permanent)"),
        ("permanent", "2027-12-31", "netmap-1 (v5.0, until 2027-12-31)"),
        ("permanent", TODAY, f"netmap-1 (v5.0, until {TODAY})"),  # its last day is today
        ("2026-01-01", "2027-12-31", "netmap-1 (v5.0, until 2027-12-31)"),  # begun: no 'from'
        (TODAY, "2027-12-31", "netmap-1 (v5.0, until 2027-12-31)"),
        ("2027-01-01", "2027-12-31", "netmap-1 (v5.0, from 2027-01-01 until 2027-12-31)"),
        ("2027-01-01", "permanent", "netmap-1 (v5.0, from 2027-01-01 on)"),
        ("permanent", "2026-12-03", "netmap-1 (v5.0, expired 2026-12-03)"),
    ],
)
def test_a_line_says_when_it_is_valid(start: str, expires: str, shown: str) -> None:
    assert line_text(view(start, expires), TODAY) == shown


def test_a_line_from_an_older_server_without_start_still_shows() -> None:
    line = {"id": "x", "version": "1.0", "expires": "permanent"}
    assert line_text(line, TODAY) == "x (v1.0, permanent)"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0 s"),
        (59.9, "59 s"),
        (60, "1 min"),
        (3599, "59 min"),
        (3600, "1 h 0 min"),
        (3 * 3600 + 20 * 60 + 5, "3 h 20 min"),
        (86400, "1 d 0 h"),
        (12 * 86400 + 4 * 3600 + 59, "12 d 4 h"),
    ],
)
def test_uptime_at_a_glance(seconds: float, shown: str) -> None:
    assert duration_text(seconds) == shown
