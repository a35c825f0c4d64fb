"""Server throughput of this tree against another revision, paired.

``make bench`` compares the server with the echo baseline, one run after the
other; on a noisy machine the echo alone moves by a factor of two between
rounds, more than most changes to the server.  This runs the echo server,
the baseline's server and this tree's server at once (each with its own
state), and in every round drives each of them for the same window, the
order of the two servers reversed every other round.  It prints the median
of the per-round ratios to the echo, the median of the per-round ratio this
tree ÷ baseline, which the machine's drift cancels out of, and the server
CPU time per request (less sensitive to other load than req/s).  Each server
gets the checkins its own revision's client sends: with the lease token for
a revision that wants it on the granting connection (before the sixteenth
session), without for the others.

    .venv/bin/python bench/compare_servers.py --baseline HEAD~1 [--rounds 8] [--clients 32]

The baseline is ``git archive REV src`` in a temporary directory, run with
it first on ``PYTHONPATH``.  Loopback only; every process is killed by its
PID at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from loadgen import measure
from run import (
    HERE,
    PYTHON,
    ROOT,
    Processes,
    capture_replies,
    cpu_seconds,
    free_port,
    make_kit,
    needs_tokens,
    run_comparison,
    server_argv,
    source_addresses,
    source_of,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds before each window")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds of each window")
    args = parser.parse_args(argv)
    return run_comparison(lambda tmp, procs: compare(args, tmp, procs))


def compare(args: argparse.Namespace, tmp: Path, procs: Processes) -> None:
    baseline = source_of(args.baseline, tmp / "baseline")
    servers: dict[str, tuple[int, int]] = {}  # name: (port, pid)
    for name, source in (("baseline", baseline), ("this tree", ROOT / "src")):
        root = tmp / ("kit-" + name.replace(" ", "-"))
        root.mkdir()
        kit = make_kit(root, free_port())
        proc = procs.start(
            name, server_argv(kit), root / "server.log", kit.port, {"PYTHONPATH": str(source)}
        )
        servers[name] = (kit.port, proc.pid)
    replies = tmp / "replies.json"
    replies.write_text(json.dumps(capture_replies(servers["this tree"][0])))
    echo_port = free_port()
    echo_argv = [PYTHON, str(HERE / "echo_server.py"), "--port", str(echo_port)]
    echo_argv += ["--replies", str(replies)]
    echo = procs.start("echo", echo_argv, tmp / "echo.log", echo_port)
    order = [("echo", (echo_port, echo.pid)), *servers.items()]
    # Each server gets the checkins its own revision's client sends.
    tokens = {name: name != "echo" and needs_tokens(port) for name, (port, _) in order}
    for name in (name for name, wanted in tokens.items() if wanted):
        print(f"{name}: checkins carry the lease token (its revision wants it)", flush=True)
    rps: dict[str, list[float]] = {name: [] for name, _ in order}
    cpu: dict[str, list[float]] = {name: [] for name, _ in order}
    serial = 0
    print(
        f"N={args.clients}, {args.rounds} rounds of {args.duration} s "
        f"(warm-up {args.warmup} s); req/s, in round order:",
        flush=True,
    )
    for r in range(args.rounds):
        line = f"  round {r + 1:2d}"
        turn = order if r % 2 == 0 else [order[0], *reversed(order[1:])]
        for name, (port, pid) in turn:
            serial += 1
            result = measure(
                "127.0.0.1",
                port,
                args.clients,
                warmup=args.warmup,
                duration=args.duration,
                probe=lambda pid=pid: cpu_seconds(pid),
                sources=source_addresses(serial, args.clients),
                tokens=tokens[name],
            )
            procs.check_alive()
            rps[name].append(result.rps)
            t0, t1 = result.samples if len(result.samples) == 2 else (None, None)
            if t0 is not None and t1 is not None and result.requests:
                cpu[name].append((t1 - t0) / result.requests * 1e6)
            line += f"  {name} {result.rps:7.0f}"
        print(line, flush=True)
    for name in servers:
        ratios = [x / e for x, e in zip(rps[name], rps["echo"], strict=True)]
        print(
            f"{name:10s} ÷ echo: median {statistics.median(ratios):.3f} "
            f"(rounds {' '.join(f'{q:.2f}' for q in ratios)}); "
            f"server CPU {statistics.median(cpu[name] or [0]):.0f} µs a request"
        )
    paired = [b / a for a, b in zip(rps["baseline"], rps["this tree"], strict=True)]
    print(
        f"this tree ÷ baseline, median of paired rounds: {statistics.median(paired):.3f} "
        f"(rounds {' '.join(f'{q:.2f}' for q in paired)})"
    )


if __name__ == "__main__":
    sys.exit(main())
