"""The benchmark and its paired comparisons still run end to end.

They are measurements, so nothing here looks at a figure: only that each
tool completes on a tiny load against real processes, prints its verdict
lines and leaves no process behind.  (``make bench`` runs the real thing.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


def _run(args: list[str], timeout: float = 90) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _has_revision(revision: str) -> bool:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


needs_git = pytest.mark.skipif(not _has_revision("HEAD"), reason="needs the git history")
# The last revision whose server wants the lease token in every checkin.
BEFORE_TOKENLESS_CHECKINS = "0f9ca29"


def test_make_bench_runs_on_a_tiny_load_and_writes_its_figures(tmp_path: Path) -> None:
    figures = tmp_path / "bench.json"
    out = _run(
        [
            str(BENCH / "run.py"),
            *("--clients", "2", "--rounds", "1", "--warmup", "0.2", "--duration", "0.5"),
            *("--starts", "2", "--imports", "1", "--json", str(figures)),
        ]
    )
    assert "ratio netmap_lm ÷ echo, N=2" in out
    assert "(c) ÷ (b) = " in out
    summary = json.loads(figures.read_text())
    assert summary["netmap_lm_n2"]["rps"] > 0
    assert 0 < summary["fsynced_share_n2"] <= 1  # from the server's audit counters
    assert summary["start_floor_ms"] > 0 and summary["start_client_ms"] > 0
    low, high = summary["start_ratio_interval"]
    assert low <= summary["start_ratio"] <= high


def test_the_start_ratio_interval_follows_the_noise_of_the_rounds() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        from run import ratio_interval
    finally:
        sys.path.remove(str(BENCH))
    floor = [30.0 + (7 * i) % 11 for i in range(60)]
    assert ratio_interval([1.2 * f for f in floor], floor) == pytest.approx((1.2, 1.2))
    noisy = [1.2 * f + (13 * i) % 17 - 8 for i, f in enumerate(floor)]
    low, high = ratio_interval(noisy, floor)
    assert low < 1.2 < high
    assert high - low > 0.02


@needs_git
def test_compare_start_runs_through_the_delay_proxy() -> None:
    out = _run(
        [str(BENCH / "compare_start.py"), "--baseline", "HEAD", "--runs", "2", "--rtt-ms", "2"]
    )
    assert "server 2 ms away" in out
    assert "this tree − baseline, median of paired rounds" in out


@needs_git
def test_compare_start_compares_two_servers_with_one_client() -> None:
    out = _run([str(BENCH / "compare_start.py"), "--baseline", "HEAD", "--runs", "2", "--server"])
    assert "compared: the servers: this tree's client against each" in out
    assert "this tree − baseline, median of paired rounds" in out


@needs_git
def test_compare_servers_runs_both_servers_and_the_echo() -> None:
    out = _run(
        [
            str(BENCH / "compare_servers.py"),
            *("--baseline", "HEAD", "--rounds", "2", "--clients", "2"),
            *("--warmup", "0.1", "--duration", "0.3"),
        ]
    )
    assert "baseline   ÷ echo" in out and "this tree  ÷ echo" in out
    assert "this tree ÷ baseline, median of paired rounds" in out


@pytest.mark.skipif(
    not _has_revision(BEFORE_TOKENLESS_CHECKINS), reason="needs the git history back to it"
)
def test_compare_servers_gives_an_older_server_the_tokens_it_wants() -> None:
    out = _run(
        [
            str(BENCH / "compare_servers.py"),
            *("--baseline", BEFORE_TOKENLESS_CHECKINS, "--rounds", "1", "--clients", "2"),
            *("--warmup", "0.1", "--duration", "0.3"),
        ]
    )
    assert "baseline: checkins carry the lease token" in out
    assert "this tree: checkins carry" not in out
    assert "this tree ÷ baseline, median of paired rounds" in out


def test_a_comparison_with_an_unknown_revision_says_so() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "compare_start.py"), "--baseline", "no-such-revision"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "cannot archive no-such-revision" in done.stderr
    assert "Traceback" not in done.stderr
