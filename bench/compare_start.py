"""Client start cost of this tree against another revision, paired.

``make bench`` compares a client start with the floor in one run; on a noisy
machine two such runs differ by more than most changes to the client.  This
measures the client start of two source trees side by side: one server (this
tree's), fresh processes of the floor, the baseline client and this client in
turns (the order reversed every other round), and the median of the
per-round differences, which the machine's drift cancels out of.

    .venv/bin/python bench/compare_start.py --baseline HEAD~1 [--runs 150]

The baseline is ``git archive REV src`` in a temporary directory; both
clients run with their tree first on ``PYTHONPATH``.  With ``--server`` the
servers are compared instead (a server change moves the client start too:
the client waits for it, and here shares its two CPUs): two servers side by
side, the baseline's and this tree's, each with its own state, and this
tree's client starting against each in turn.

    .venv/bin/python bench/compare_start.py --baseline HEAD~1 --server

With ``--rtt-ms`` the clients reach the server through
``bench/delay_proxy.py``, as if it were that far away.  Loopback only; every
process is killed by its PID at the end.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from run import (
    CLIENT_CODE,
    FLOOR_CODE,
    HERE,
    PYTHON,
    ROOT,
    BenchError,
    Kit,
    Processes,
    free_port,
    make_kit,
    run_comparison,
    server_argv,
    source_of,
    start_env,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="git revision to compare with")
    parser.add_argument("--runs", type=int, default=150, help="rounds (one start of each)")
    parser.add_argument(
        "--rtt-ms", type=float, default=0.0, help="round-trip time to the server (a delay proxy)"
    )
    parser.add_argument(
        "--server", action="store_true", help="compare the servers (this tree's client for both)"
    )
    args = parser.parse_args(argv)
    return run_comparison(lambda tmp, procs: compare(args, tmp, procs))


def compare(args: argparse.Namespace, tmp: Path, procs: Processes) -> None:
    baseline = source_of(args.baseline, tmp / "baseline")
    this = ROOT / "src"
    if args.server:  # one client, two servers
        kit, code = serve(args, tmp / "kit-baseline", procs, baseline)
        _, this_code = serve(args, tmp / "kit-this-tree", procs, this)
        variants = {"floor": (FLOOR_CODE, this), "baseline": (code, this)}
        variants["this tree"] = (this_code, this)
    else:  # two clients, one server
        kit, code = serve(args, tmp, procs, this)
        variants = {"floor": (FLOOR_CODE, this), "baseline": (code, baseline)}
        variants["this tree"] = (code, this)
    env = start_env(kit)
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
    away = f", server {args.rtt_ms:g} ms away" if args.rtt_ms else ""
    side = "the servers: this tree's client against each" if args.server else "the clients"
    print(f"client start, median of {args.runs} rounds (ms){away}; compared: {side}:")
    for name, value in med.items():
        ratio = "" if name == "floor" else f"   ÷ floor = {value / med['floor']:.3f}"
        print(f"  {name:10s} {value:6.1f}{ratio}")
    print(f"  this tree − baseline, median of paired rounds: {diff:+.2f} ms")


def serve(args: argparse.Namespace, root: Path, procs: Processes, source: Path) -> tuple[Kit, str]:
    """A server of ``source`` with its own kit under ``root`` (behind a delay
    proxy with ``--rtt-ms``), and the client start's code for it."""
    root.mkdir(exist_ok=True)
    kit = make_kit(root, free_port())
    argv = server_argv(kit)
    procs.start("netmap-lm serve", argv, root / "server.log", kit.port, {"PYTHONPATH": str(source)})
    servers = kit.servers
    if args.rtt_ms:
        port = free_port()
        proxy = [PYTHON, str(HERE / "delay_proxy.py"), "--port", str(port)]
        proxy += ["--to", str(kit.port), "--rtt-ms", str(args.rtt_ms)]
        procs.start("delay proxy", proxy, root / "proxy.log", port)
        servers = f"{port}@127.0.0.1"
    return kit, CLIENT_CODE.format(servers=servers, vendor=str(kit.vendor_pub))


if __name__ == "__main__":
    sys.exit(main())
