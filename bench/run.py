"""``make bench``: how fast is netmap_lm, against the floor of what is possible?

1. Throughput and latency.  A real ``netmap-lm serve`` process (SQLite store,
   fsync'd group commit: the durable path) and a bare asyncio JSON-lines
   echo server (``bench/echo_server.py``) are driven by the same closed-loop
   load generator (``bench/loadgen.py``) with N = 1 and N = 32 clients doing
   checkout + checkin.  The figure of merit is netmap_lm req/s ÷ echo req/s;
   target ≥ 0.5 with 32 clients.
2. Client start cost.  Fresh Python processes: ``pass``; importing the
   Ed25519 key class (the floor: the client must verify signatures); and a
   real application start (import ``LicenseClient``, one verified checkout,
   checkin).  Target: (c) ≤ 1.25 × (b).  Plus a ``-X importtime`` breakdown of
   what the client path imports beyond the floor.

Loopback only; every process started here is killed by PID at the end.
This is a measurement: it exits 0 whether or not the targets are met, and
non-zero only when the run itself broke.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadgen import LoadResult, measure
from netmap_lm import LicenseClient
from netmap_lm.licensing import keys, licensefile
from netmap_lm.server.admin import read_admin_token
from netmap_lm.server.identity import init_state

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent  # the repository
PYTHON = sys.executable
START_TIMEOUT = 20.0  # seconds for a server process to accept connections
RATIO_TARGET = 0.5  # netmap_lm req/s ÷ echo req/s with 32 clients, at least
START_TARGET = 1.25  # client start ÷ floor, at most
FEATURE = "netmap"
SEATS = 100_000

FLOOR_CODE = "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey"
CLIENT_CODE = (
    "from netmap_lm import LicenseClient\n"
    "c = LicenseClient(servers={servers!r}, vendor_key={vendor!r})\n"
    "lease = c.checkout('netmap', '5.0', heartbeat=False)\n"
    "lease.checkin()\n"
)


class BenchError(RuntimeError):
    """The benchmark itself broke (a process died, a reply was wrong)."""


# -- processes ------------------------------------------------------------------------


def free_port() -> int:
    """A port free for TCP and UDP on 127.0.0.1 (the server binds both)."""
    for _ in range(50):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            udp.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            tcp.close()
            udp.close()
    raise BenchError("no free port on 127.0.0.1")


class Processes:
    """Every child process of the run; :meth:`kill_all` ends each by its PID."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def start(
        self,
        name: str,
        argv: list[str],
        log: Path,
        port: int,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            env = dict(os.environ, PYTHONUNBUFFERED="1", XDG_DATA_HOME=str(log.parent / "xdg"))
            env.update(extra_env or {})
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.procs.append((name, proc, log))
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BenchError(f"{name} exited with {proc.returncode}:\n{_tail(log)}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return proc
            except OSError:
                time.sleep(0.05)
        raise BenchError(f"{name} did not accept connections in {START_TIMEOUT} s:\n{_tail(log)}")

    def check_alive(self) -> None:
        for name, proc, log in self.procs:
            if proc.poll() is not None:
                raise BenchError(f"{name} died with {proc.returncode}:\n{_tail(log)}")

    def kill_all(self) -> None:
        for _, proc, _ in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.procs.clear()


def run_comparison(body: Callable[[Path, Processes], None]) -> int:
    """Run ``body(tmp, procs)`` of a paired comparison: a temporary directory,
    and every process it starts killed by PID at the end; 1 if it broke."""
    tmp = Path(tempfile.mkdtemp(prefix="netmap-lm-compare-"))
    procs = Processes()
    try:
        body(tmp, procs)
        return 0
    except BenchError as exc:
        print(f"comparison broke: {exc}", file=sys.stderr)
        return 1
    finally:
        procs.kill_all()
        shutil.rmtree(tmp, ignore_errors=True)


def source_of(revision: str, into: Path) -> Path:
    """The ``src`` tree of a git revision of this repository, extracted under
    ``into`` (for the paired comparisons); :class:`BenchError` if git cannot."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "src"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise BenchError(f"cannot archive {revision}: {archive.stderr.decode().strip()}")
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- set-up ---------------------------------------------------------------------------


@dataclass
class Kit:
    root: Path
    port: int
    vendor_pub: Path
    license: Path
    state: Path

    @property
    def servers(self) -> str:
        return f"{self.port}@127.0.0.1"


def make_kit(root: Path, port: int) -> Kit:
    """Vendor keys, a server identity and a license with many seats, under ``root``."""
    vendor_dir = root / "vendor"
    keys.generate_pair(vendor_dir, "vendor", "benchmark vendor key")
    vendor_key = keys.read_private(vendor_dir / "vendor.key")
    state = root / "state"
    identity, _ = init_state(state)
    server = {"host": "127.0.0.1", "port": port, "key": identity.public_text}
    feature = {
        "name": FEATURE,
        "version": "5.0",
        "seats": SEATS,
        "type": "floating",
        "expires": "permanent",
        "id": "netmap-bench",
    }
    license_path = root / "license.lic"
    license_path.write_text(
        licensefile.sign_line(vendor_key, "SERVER", server)
        + "\n"
        + licensefile.sign_line(vendor_key, "FEATURE", feature)
        + "\n"
    )
    return Kit(root, port, vendor_dir / "vendor.pub", license_path, state)


def server_argv(kit: Kit, extra: list[str] | None = None) -> list[str]:
    """``netmap-lm serve`` as an administrator runs it: default logging, durable
    store, default limits, except the per-address request rate (``--rate-limit
    0``): one benchmark client sends far more than any real host, and the
    benchmark measures capacity, not that policy."""
    # fmt: off
    return [
        PYTHON, "-m", "netmap_lm", "serve",
        "--license", str(kit.license), "--state", str(kit.state),
        "--vendor-key", str(kit.vendor_pub), "--port", str(kit.port),
        "--bind", "127.0.0.1", "--heartbeat-interval", "30", "--lease-timeout", "120",
        "--rate-limit", "0",
        *(extra or []),
    ]
    # fmt: on


def source_addresses(run: int, clients: int) -> list[str]:
    """Fresh loopback source addresses (127.R.x.y) for the clients of one run.

    A license server serves many hosts: its per-address state (connection
    budgets, the abuse monitor) should see one host per client, as in an
    office, not the whole office behind one address.  New addresses for every
    run keep one run's history out of the next.
    """
    return [f"127.{1 + run % 250}.{i // 250}.{i % 250 + 1}" for i in range(clients)]


def capture_replies(port: int) -> dict[str, dict[str, Any]]:
    """One real hello, checkout and checkin; their replies become the echo
    server's canned replies, so both servers send the same bytes."""
    replies: dict[str, dict[str, Any]] = {}
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")

        def ask(message: dict[str, Any]) -> dict[str, Any]:
            sock.sendall(json.dumps(message).encode() + b"\n")
            reply = json.loads(reader.readline())
            if reply.get("ok") is not True:
                raise BenchError(f"the server refused {message['op']}: {reply}")
            replies[message["op"]] = {k: v for k, v in reply.items() if k != "id"}
            return reply

        ask({"op": "hello", "id": 1, "protocol": 1, "nonce": os.urandom(16).hex()})
        grant = ask(
            {
                "op": "checkout",
                "id": 2,
                "feature": FEATURE,
                "version": "5.0",
                "user": "bench0",
                "host": "bench-host-0",
                "display": ":0",
                "pid": 10_000,
                "project": "",
            }
        )["grant"]
        ask({"op": "checkin", "id": 3, "lease": grant["lease"]})  # as the load generator
    return replies


def needs_tokens(port: int) -> bool:
    """Whether the server at ``port`` wants the lease token in a checkin on
    the granting connection (revisions before the sixteenth session)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")

        def ask(message: dict[str, Any]) -> dict[str, Any]:
            sock.sendall(json.dumps(message).encode() + b"\n")
            reply: dict[str, Any] = json.loads(reader.readline())
            return reply

        ask({"op": "hello", "id": 1, "protocol": 1, "nonce": os.urandom(16).hex()})
        checkout = {"op": "checkout", "id": 2, "feature": FEATURE, "version": "5.0"}
        grant = ask({**checkout, "user": "probe", "host": "bench-probe"})["grant"]
        if ask({"op": "checkin", "id": 3, "lease": grant["lease"]}).get("ok") is True:
            return False
        from netmap_lm.encoding import b64u_decode
        from netmap_lm.licensing.trust import lease_token

        token = lease_token(b64u_decode(grant["key"]), grant["lease"])
        ask({"op": "checkin", "id": 4, "lease": grant["lease"], "token": token})
        return True


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, all threads, and of its running
    child processes (a server that starts helpers pays for them), from Linux /proc."""
    try:
        total = 0
        for one in (pid, *_children(pid)):
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _children(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(x) for x in (task / "children").read_text().split()]
    return children


def wal_commits(db: Path) -> int | None:
    """Write transactions committed so far: the ``iChange`` counter of SQLite's
    WAL index (``DB-shm``), bumped once per commit (fsync'd or not)."""
    try:
        with open(f"{db}-shm", "rb") as shm:
            header = shm.read(12)
        return struct.unpack("=III", header)[2] if len(header) == 12 else None
    except OSError:
        return None


def store_counters(kit: Kit) -> tuple[int, int] | None:
    """The server's lease store transactions and fsyncs so far (its ``audit``
    counters), or None from a server that does not count them."""
    client = LicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub))
    try:
        counters = client.admin("audit", read_admin_token(kit.state / "admin.token"))["counters"]
    finally:
        client.close()
    if "store_fsyncs" not in counters:
        return None
    return counters["store_transactions"], counters["store_fsyncs"]


# -- throughput -----------------------------------------------------------------------


@dataclass
class Run:
    server: str
    clients: int
    result: LoadResult
    commits: int | None = None  # SQLite commits inside the window (netmap_lm)
    synced: float | None = None  # the share of commits fsync'd, over warm-up and window
    cpu_seconds: float | None = None  # the server process's CPU time inside the window

    @property
    def cpu_us_per_request(self) -> float | None:
        if self.cpu_seconds is None or not self.result.requests:
            return None
        return self.cpu_seconds / self.result.requests * 1e6


def throughput(
    procs: Processes,
    kit: Kit,
    echo_port: int,
    pids: dict[str, int],
    *,
    counts: list[int],
    rounds: int,
    warmup: float,
    duration: float,
) -> dict[tuple[str, int], list[Run]]:
    """Per (server, N): one run per round, in round order.  Within a round the
    echo and netmap_lm runs of one N follow each other, so they share the
    machine's state; their ratio is the robust figure on a noisy machine."""
    db = kit.state / "leases.db"
    runs: dict[tuple[str, int], list[Run]] = {}
    serial = 0
    for r in range(rounds):
        for n in counts:
            for name, port in (("echo", echo_port), ("netmap_lm", kit.port)):
                pid = pids[name]
                mine = name == "netmap_lm"

                def probe(pid: int = pid, mine: bool = mine) -> tuple[int | None, float | None]:
                    return (wal_commits(db) if mine else None), cpu_seconds(pid)

                serial += 1
                before = store_counters(kit) if mine else None
                sources = source_addresses(serial, n)
                result = measure(
                    "127.0.0.1",
                    port,
                    n,
                    warmup=warmup,
                    duration=duration,
                    probe=probe,
                    sources=sources,
                )
                procs.check_alive()
                run = Run(name, n, result)
                if len(result.samples) == 2:
                    (c0, t0), (c1, t1) = result.samples
                    if c0 is not None and c1 is not None:
                        run.commits = c1 - c0
                    if t0 is not None and t1 is not None:
                        run.cpu_seconds = t1 - t0
                after = store_counters(kit) if mine else None
                if before and after and after[0] > before[0]:
                    run.synced = (after[1] - before[1]) / (after[0] - before[0])
                runs.setdefault((name, n), []).append(run)
                print(
                    f"  round {r + 1}/{rounds}  {name:<9} N={n:<3} {result.rps:9.0f} req/s",
                    flush=True,
                )
    return runs


def median_run(runs: list[Run]) -> Run:
    """The run with the median req/s (the lower median for an even count)."""
    ordered = sorted(runs, key=lambda run: run.result.rps)
    return ordered[(len(ordered) - 1) // 2]


# -- client start cost ------------------------------------------------------------------


def start_env(kit: Kit) -> dict[str, str]:
    """An application's environment: bytecode cached as in an installed program.

    (With ``PYTHONDONTWRITEBYTECODE`` set and sources newer than their
    ``.pyc``, every start would compile them again.)  The cache goes to the
    temporary directory, not into the source tree."""
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(kit.root / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def start_cost(kit: Kit, runs: int) -> dict[str, list[float]]:
    """Wall time (ms) of fresh interpreters, interleaved so they share the noise."""
    env = start_env(kit)
    code = CLIENT_CODE.format(servers=kit.servers, vendor=str(kit.vendor_pub))
    variants = {
        "pass": [PYTHON, "-c", "pass"],
        "floor": [PYTHON, "-c", FLOOR_CODE],
        "client": [PYTHON, "-c", code],
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants.items())
    for i in range(runs + 1):  # the first round warms caches and is not counted
        # Reversed every other round: no variant always follows the same one.
        for name, argv in order if i % 2 else reversed(order):
            t0 = time.perf_counter()
            done = subprocess.run(argv, capture_output=True, env=env)
            elapsed = (time.perf_counter() - t0) * 1000
            if done.returncode != 0:
                raise BenchError(f"{name} start failed:\n{done.stderr.decode(errors='replace')}")
            if i:
                times[name].append(elapsed)
    return times


@dataclass
class ImportCost:
    """``-X importtime`` of the client start beyond the floor (medians over runs)."""

    rows: list[tuple[str, float, float]]  # (module, self µs, cumulative µs), by self time
    total_us: float  # self time of every module the floor does not import
    own_us: float  # … of which netmap_lm.* itself
    pulls: list[tuple[str, str, float]]  # (netmap_lm module, what it imports, cumulative µs)


def import_times(kit: Kit, runs: int) -> ImportCost:
    """Which imports the client start adds to the floor, and which netmap_lm
    module pulls in each heavy package (the place to trim)."""
    code = CLIENT_CODE.format(servers=kit.servers, vendor=str(kit.vendor_pub))
    env = start_env(kit)
    floor = {m for _, m, _, _ in _importtime([PYTHON, "-X", "importtime", "-c", FLOOR_CODE], env)}
    costs: dict[str, list[tuple[int, int]]] = {}
    edges: dict[tuple[str, str], list[int]] = {}
    for _ in range(runs):
        lines = _importtime([PYTHON, "-X", "importtime", "-c", code], env)
        for i, (depth, module, self_us, cumulative_us) in enumerate(lines):
            costs.setdefault(module, []).append((self_us, cumulative_us))
            # importtime prints a module after everything it imported, one level
            # deeper: the importer is the next line at depth - 1.
            parent = next((m for d, m, _, _ in lines[i + 1 :] if d < depth), None)
            if (
                parent is not None
                and parent.startswith("netmap_lm")
                and not module.startswith("netmap_lm")
                and module not in floor
            ):
                edges.setdefault((parent, module), []).append(cumulative_us)
    rows = [
        (module, statistics.median(c[0] for c in cs), statistics.median(c[1] for c in cs))
        for module, cs in costs.items()
        if module not in floor
    ]
    rows.sort(key=lambda row: -row[1])
    pulls = [(parent, child, statistics.median(us)) for (parent, child), us in edges.items()]
    pulls.sort(key=lambda row: -row[2])
    own = sum(row[1] for row in rows if row[0].split(".")[0] == "netmap_lm")
    return ImportCost(rows, sum(row[1] for row in rows), own, pulls)


def _importtime(argv: list[str], env: dict[str, str]) -> list[tuple[int, str, int, int]]:
    """(depth, module, self µs, cumulative µs) per line of ``-X importtime``."""
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise BenchError(f"importtime run failed:\n{done.stderr[-2000:]}")
    lines = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|")
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        lines.append((depth, name.strip(), int(self_us), int(cumulative_us)))
    return lines


# -- report ---------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import uvloop

        loop = f"uvloop {uvloop.__version__}"
    except ImportError:
        loop = "asyncio (no uvloop)"
    return (
        f"{os.cpu_count()} CPU(s), {model}; Python {platform.python_version()}; {loop}; "
        f"SQLite {sqlite3.sqlite_version}; {platform.system()} {platform.release()}"
    )


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report_throughput(runs: dict[tuple[str, int], list[Run]], counts: list[int]) -> dict[str, Any]:
    chosen = {key: median_run(items) for key, items in runs.items()}
    print()
    print(
        f"{'server':<10}{'N':>4}{'req/s':>10}{'pairs/s':>10}"
        f"{'req p50':>10}{'req p99':>10}{'pair p50':>10}{'pair p99':>10}{'srv CPU':>9}"
        f"   req/s of all rounds"
    )
    summary: dict[str, Any] = {}
    for n in counts:
        for name in ("echo", "netmap_lm"):
            run = chosen[(name, n)]
            res = run.result
            every = [r.result.rps for r in runs[(name, n)]]
            spread = " ".join(f"{rps:.0f}" for rps in every)
            cpu = _median_cpu(runs[(name, n)])
            cpu_text = f"{cpu:9.0f}" if cpu is not None else f"{'?':>9}"
            print(
                f"{name:<10}{n:>4}{res.rps:>10.0f}{res.pps:>10.0f}"
                f"{res.request_pct(50):>10.0f}{res.request_pct(99):>10.0f}"
                f"{res.pair_pct(50):>10.0f}{res.pair_pct(99):>10.0f}{cpu_text}   {spread}"
            )
            summary[f"{name}_n{n}"] = {
                "rps": round(res.rps),
                "pairs_per_s": round(res.pps),
                "req_p50_us": round(res.request_pct(50)),
                "req_p99_us": round(res.request_pct(99)),
                "pair_p50_us": round(res.pair_pct(50)),
                "pair_p99_us": round(res.pair_pct(99)),
                "rps_all_rounds": [round(rps) for rps in every],
                "server_cpu_us_per_req": round(cpu) if cpu is not None else None,
            }
    print(
        "(latency in µs, of the round with the median req/s; srv CPU: server process CPU time"
        " per request, µs, all threads, median of rounds)"
    )
    print()
    for n in counts:
        pairs = zip(runs[("netmap_lm", n)], runs[("echo", n)], strict=True)
        ratios = [mine.result.rps / echo.result.rps for mine, echo in pairs]
        ratio = statistics.median(ratios)
        summary[f"ratio_n{n}"] = round(ratio, 3)
        summary[f"ratio_n{n}_rounds"] = [round(r, 3) for r in ratios]
        line = f"ratio netmap_lm ÷ echo, N={n:<3} {ratio:6.2f}"
        if n == 32:
            line += f"   target ≥ {RATIO_TARGET}: {verdict(ratio >= RATIO_TARGET)}"
        if len(ratios) > 1:
            line += "   (median of rounds: " + " ".join(f"{r:.2f}" for r in ratios) + ")"
        print(line)
    for n in counts:
        cpu_echo = _median_cpu(runs[("echo", n)])
        cpu_mine = _median_cpu(runs[("netmap_lm", n)])
        if cpu_echo and cpu_mine:
            print(
                f"server CPU per request, N={n:<3} echo {cpu_echo:.0f} µs, netmap_lm "
                f"{cpu_mine:.0f} µs: netmap_lm costs {cpu_mine / cpu_echo:.1f}× the echo"
            )
    for n in counts:
        run = chosen[("netmap_lm", n)]
        if run.commits:
            per = run.result.requests / run.commits
            synced = f", {run.synced:4.0%} of them fsync'd" if run.synced is not None else ""
            print(
                f"group commit, N={n:<3} {run.commits / run.result.duration:7.0f} "
                f"commits/s, {per:5.1f} grants+releases per commit{synced}"
            )
            summary[f"commits_per_s_n{n}"] = round(run.commits / run.result.duration)
            summary[f"changes_per_commit_n{n}"] = round(per, 2)
            if run.synced is not None:
                summary[f"fsynced_share_n{n}"] = round(run.synced, 3)
    return summary


def _median_cpu(runs: list[Run]) -> float | None:
    known = [c for c in (run.cpu_us_per_request for run in runs) if c is not None]
    return statistics.median(known) if known else None


def ratio_interval(
    top: list[float], bottom: list[float], *, resamples: int = 2000, seed: int = 1493
) -> tuple[float, float]:
    """5th and 95th percentiles of median(top) ÷ median(bottom) over rounds
    drawn again with replacement (a bootstrap), the two lists resampled
    together: their i-th values ran side by side.  How far the ratio could be
    from the one measured, on this machine, from this run's noise alone."""
    import random

    draw = random.Random(seed)
    n = len(top)
    ratios = []
    for _ in range(resamples):
        picks = [draw.randrange(n) for _ in range(n)]
        ratios.append(
            statistics.median(top[i] for i in picks) / statistics.median(bottom[i] for i in picks)
        )
    ratios.sort()
    return ratios[int(0.05 * (resamples - 1))], ratios[int(0.95 * (resamples - 1))]


def report_start(
    times: dict[str, list[float]],
    imports: ImportCost,
) -> dict[str, Any]:
    med = {name: statistics.median(values) for name, values in times.items()}
    runs = len(times["pass"])
    ratio = med["client"] / med["floor"]
    low, high = ratio_interval(times["client"], times["floor"])
    noise = "   (the target is inside it: noise decides)" if low <= START_TARGET <= high else ""
    print()
    print(f"client start, median of {runs} fresh processes each (interleaved):")
    print(f"  (a) python -c pass                          {med['pass']:7.1f} ms")
    print(f"  (b) import Ed25519PublicKey (the floor)     {med['floor']:7.1f} ms")
    print(f"  (c) import LicenseClient, checkout, checkin {med['client']:7.1f} ms")
    print(
        f"  (c) ÷ (b) = {ratio:.2f}   target ≤ {START_TARGET}: {verdict(ratio <= START_TARGET)}"
        f"   (c) − (b) = {med['client'] - med['floor']:.1f} ms"
    )
    print(f"  90 % interval of (c) ÷ (b) over resampled rounds: {low:.2f}–{high:.2f}{noise}")
    rows = imports.rows
    print()
    print(
        "imports of the client start beyond the floor (-X importtime, median; "
        "importtime inflates every figure, compare them with each other):"
    )
    print(
        f"  {imports.total_us / 1000:.1f} ms self time in {len(rows)} modules, "
        f"{imports.own_us / 1000:.1f} ms of it in netmap_lm.* itself; top 10 by self time:"
    )
    print(f"  {'self µs':>8} {'cumul µs':>9}  module")
    for module, self_us, cumulative_us in rows[:10]:
        print(f"  {self_us:>8.0f} {cumulative_us:>9.0f}  {module}")
    print("  heaviest imports made by netmap_lm modules (cumulative µs):")
    for parent, child, cumulative_us in imports.pulls[:6]:
        print(f"  {cumulative_us:>18.0f}  {parent} imports {child}")
    return {
        "start_pass_ms": round(med["pass"], 1),
        "start_floor_ms": round(med["floor"], 1),
        "start_client_ms": round(med["client"], 1),
        "start_ratio": round(ratio, 3),
        "start_ratio_interval": [round(low, 3), round(high, 3)],
        "start_extra_ms": round(med["client"] - med["floor"], 1),
        "import_extra_ms": round(imports.total_us / 1000, 1),
        "import_top": [[m, round(s), round(c)] for m, s, c in rows[:10]],
        "import_pulls": [[p, c, round(us)] for p, c, us in imports.pulls[:6]],
    }


# -- main -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="netmap_lm benchmark (see docs/performance.md)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 32], metavar="N")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per N (median reported)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured")
    parser.add_argument("--starts", type=int, default=100, help="fresh processes per variant")
    parser.add_argument("--imports", type=int, default=5, help="-X importtime runs")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s, 5 starts")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for netmap-lm serve (repeat for each word)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.warmup, args.duration, args.starts, args.imports = 1, 0.5, 2.0, 5, 2
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM runs the finally clause too, so no server outlives the benchmark.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    root = Path(tempfile.mkdtemp(prefix="netmap-lm-bench-"))
    procs = Processes()
    t_begin = time.monotonic()
    try:
        print(f"netmap_lm benchmark — {machine()}")
        print(
            f"load average before the run: {load_average()} "
            "(other work on the machine skews every figure)"
        )
        print(f"temporary files in {root}", flush=True)
        kit = make_kit(root, free_port())
        server = procs.start(
            "netmap-lm serve", server_argv(kit, args.serve_arg), root / "server.log", kit.port
        )
        replies_path = root / "replies.json"
        replies_path.write_text(json.dumps(capture_replies(kit.port)))
        echo_port = free_port()
        echo_argv = [PYTHON, str(HERE / "echo_server.py"), "--port", str(echo_port)]
        echo_argv += ["--replies", str(replies_path)]
        echo = procs.start("echo server", echo_argv, root / "echo.log", echo_port)
        print(
            f"throughput: closed loop (no pipelining), checkout+checkin, warm-up {args.warmup} s,"
            f" window {args.duration} s, {args.rounds} round(s), median round reported",
            flush=True,
        )
        runs = throughput(
            procs,
            kit,
            echo_port,
            {"echo": echo.pid, "netmap_lm": server.pid},
            counts=args.clients,
            rounds=args.rounds,
            warmup=args.warmup,
            duration=args.duration,
        )
        summary = report_throughput(runs, args.clients)
        print(flush=True)
        print(f"client start: {args.starts} runs of each variant ...", flush=True)
        times = start_cost(kit, args.starts)
        imports = import_times(kit, args.imports)
        procs.check_alive()
        summary.update(report_start(times, imports))
        print()
        print(
            f"benchmark took {time.monotonic() - t_begin:.0f} s; "
            f"load average after: {load_average()}"
        )
        if args.json:
            summary["machine"] = machine()
            args.json.write_text(json.dumps(summary, indent=2) + "\n")
        return 0
    except (BenchError, OSError) as exc:
        print(f"benchmark broke: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a LoadError, or a bug here: still report and clean up
        print(f"benchmark broke: {type(exc).__name__}: {exc}", file=sys.stderr)
        if (root / "server.log").exists():
            print(f"last lines of the server log:\n{_tail(root / 'server.log')}", file=sys.stderr)
        return 1
    finally:
        procs.kill_all()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
