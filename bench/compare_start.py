"""Client start cost of this tree against another revision, paired.

``make bench`` compares a client start with the floor in one run; on a noisy
machine two such runs differ by more than most changes to the client.  This
measures the client start of two source trees side by side: one server (this
tree's), fresh processes of the floor, the baseline client and this client in
turns (the order reversed every other round), and the median of the
per-round differences, which the machine's drift cancels out of.

    .venv/bin/python bench/compare_start.py --baseline HEAD~1 [--runs 150]

The baseline is ``git archive REV src`` in a temporary directory; both
clients run with their tree first on ``PYTHONPATH``.  Loopback only; the
server is killed by its PID at the end.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import (
    CLIENT_CODE,
    FLOOR_CODE,
    PYTHON,
    BenchError,
    Processes,
    free_port,
    make_kit,
    server_argv,
    start_env,
)

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="git revision to compare with")
    parser.add_argument("--runs", type=int, default=150, help="rounds (one start of each)")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="netmap-lm-compare-"))
    procs = Processes()
    try:
        baseline = tmp / "baseline"
        baseline.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.baseline, "src"],
            capture_output=True,
            check=False,
        )
        if archive.returncode != 0:
            print(f"cannot archive {args.baseline}: {archive.stderr.decode().strip()}")
            return 1
        subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive.stdout, check=True)
        kit = make_kit(tmp, free_port())
        procs.start("netmap-lm serve", server_argv(kit), tmp / "server.log", kit.port)
        code = CLIENT_CODE.format(servers=kit.servers, vendor=str(kit.vendor_pub))
        env = start_env(kit)
        variants = {
            "floor": (FLOOR_CODE, ROOT / "src"),
            "baseline": (code, baseline / "src"),
            "this tree": (code, ROOT / "src"),
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        for i in range(args.runs + 1):  # round 0 warms the caches and is not counted
            order = list(variants.items())
            for name, (source, path) in order if i % 2 else reversed(order):
                t0 = time.perf_counter()
                done = subprocess.run(
                    [PYTHON, "-c", source], env=dict(env, PYTHONPATH=str(path)), check=False
                )
                if done.returncode != 0:
                    raise BenchError(f"{name} start failed")
                if i:
                    times[name].append((time.perf_counter() - t0) * 1000)
        med = {name: statistics.median(values) for name, values in times.items()}
        pairs = zip(times["baseline"], times["this tree"], strict=True)
        diff = statistics.median(b - a for a, b in pairs)
        print(f"client start, median of {args.runs} rounds (ms):")
        for name, value in med.items():
            ratio = "" if name == "floor" else f"   ÷ floor = {value / med['floor']:.3f}"
            print(f"  {name:10s} {value:6.1f}{ratio}")
        print(f"  this tree − baseline, median of paired rounds: {diff:+.2f} ms")
        return 0
    except BenchError as exc:
        print(f"comparison broke: {exc}", file=sys.stderr)
        return 1
    finally:
        procs.kill_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
