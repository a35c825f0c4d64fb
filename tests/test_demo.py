"""``make run`` is ``netmap-lm serve --demo``: once it listens on port 1493 it
prints what to try in another terminal, and those commands work as printed,
with no flag and no variable added.

Port 1493 of this machine may be taken (by a ``make run`` of its own), so the
server runs in a network namespace of its own (``unshare -n``, loopback only)
and each printed command joins it (``nsenter``).  Where namespaces are not
allowed, the server takes a free port instead and the commands get only
``NETMAP_LM_SERVERS`` naming it.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from support import NETMAP_LM, free_port, kill_quietly, wait_for

PRINTED = re.compile(r"^\s+\.venv/bin/netmap-lm (?P<args>.+?)\s+# (?P<says>.+)$")
START_TIMEOUT = 20.0  # seconds for the demo to make its keys and listen


def namespaces_allowed() -> bool:
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0
    except OSError:
        return False


class Demo:
    """``serve --demo`` with the user's data directory under ``root``."""

    def __init__(self, root: Path) -> None:
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("NETMAP_LM_")  # the newcomer's environment names nothing
        }
        self.env.update(XDG_DATA_HOME=str(root / "xdg"), PYTHONUNBUFFERED="1")
        self.isolated = namespaces_allowed()
        serve = [*NETMAP_LM, "serve", "--demo"]
        if self.isolated:
            self.port = 1493
            argv = ["unshare", "-n", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
            argv += serve
        else:
            self.port = free_port()
            argv = [*serve, "--port", str(self.port)]
            self.env["NETMAP_LM_SERVERS"] = f"{self.port}@127.0.0.1"
        # unshare and sh exec what follows: the PID is the server's
        self.log = root / "serve.log"  # a file: a pipe nobody reads could stall the server
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(argv, env=self.env, stdout=subprocess.PIPE, stderr=log)
        self.printed = self._read_until("Stop with Ctrl-C")

    def _read_until(self, marker: str) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()  # read unbuffered: select() sees only the pipe
        text, deadline = b"", time.monotonic() + START_TIMEOUT
        while marker.encode() not in text:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0))
            chunk = os.read(fd, 65536) if ready else b""
            if not chunk:
                kill_quietly(self.proc)
                pytest.fail(f"the demo printed {text!r}; its log:\n{self.log.read_text()}")
            text += chunk
        return text.decode()

    def argv(self, args: str) -> list[str]:
        command = [*NETMAP_LM, *args.split()]
        if self.isolated:
            return ["nsenter", f"--net=/proc/{self.proc.pid}/ns/net", "--", *command]
        return command

    def run(self, args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(args), env=self.env, capture_output=True, text=True, timeout=30
        )

    def spawn(self, args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(args), env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def in_use(self) -> int:
        status = json.loads(self.run("status --json").stdout)
        return next(f["in_use"] for f in status["features"] if f["name"] == "netmap")


@pytest.fixture
def demo(tmp_path: Path):
    d = Demo(tmp_path)
    try:
        yield d
    finally:
        kill_quietly(d.proc)


def test_the_demo_commands_work_as_printed(demo: Demo) -> None:
    assert f"demo server on port {demo.port}." in demo.printed
    commands = {}
    for line in demo.printed.splitlines():
        if match := PRINTED.match(line):
            commands[match["args"]] = match["says"]
    assert list(commands) == [
        "status",
        "checkout netmap --hold 5",
        "run netmap -- sleep 30",
        "checkout netmap --version 6.0",
    ]

    status = demo.run("status")
    assert status.returncode == 0, status.stderr
    assert "demo-netmap (v5.0, permanent)" in status.stdout
    assert re.search(r"demo-netmap-pro \(v5\.0, until \d{4}-\d\d-\d\d\)", status.stdout)
    assert re.search(r", up \d+ s\n", status.stdout) and "no seats in use" in status.stdout

    held = demo.spawn("checkout netmap --hold 5")
    gated = demo.spawn("run netmap -- sleep 30")
    try:
        assert wait_for(lambda: demo.in_use() == 2, timeout=15), "two seats were not taken"
        holders = [ln for ln in demo.run("status").stdout.splitlines() if "│ netmap " in ln]
        assert len(holders) == 3  # the feature's row, and one for each holder...
        assert sum("│ any " in ln for ln in holders) == 2  # ...neither of which asked for a version
        gated.send_signal(signal.SIGTERM)  # its program ends; its seat is given back
        gated.wait(timeout=15)
        assert held.wait(timeout=15) == 0, held.stderr.read() if held.stderr else ""
        assert wait_for(lambda: demo.in_use() == 0, timeout=5), "the seats were not given back"
    finally:
        kill_quietly(held)
        kill_quietly(gated)

    refused = demo.run("checkout netmap --version 6.0")
    assert commands["checkout netmap --version 6.0"] == "refused: VERSION_NOT_LICENSED (exit 77)"
    assert refused.returncode == 77, refused.stderr
    assert "VERSION_NOT_LICENSED" in refused.stdout + refused.stderr
    assert "Traceback" not in status.stderr + refused.stderr


def test_the_demo_prints_what_to_try_only_once_it_listens(tmp_path: Path) -> None:
    """A demo that cannot start says why, with no list of commands that cannot work."""
    bad = tmp_path / "bad.opt"
    bad.write_text("LINGR netmap 5\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETMAP_LM_")}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")

    result = subprocess.run(
        [*NETMAP_LM, "serve", "--demo", "--port", str(free_port()), "--options", str(bad)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 78, result.stderr
    assert f"{bad}:1: unknown keyword 'LINGR'" in result.stderr
    assert "In another terminal" not in result.stdout
