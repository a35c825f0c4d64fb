"""The embedded client library against a real server: check-in on leaving a
``with`` block, the lease-lost callback, failover along the server list (SPEC §6, §9)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from netmap_lm import AsyncLicenseClient, LicenseClient
from support import Kit, ServerProcess, free_port, wait_for

from ._util import in_use, lease_ids

HEARTBEAT_INTERVAL = 1.0
LEASE_TIMEOUT = 3.0


@pytest.fixture
def served(kit: Kit) -> Iterator[ServerProcess]:
    kit.write_license()
    with ServerProcess(
        kit, heartbeat_interval=HEARTBEAT_INTERVAL, lease_timeout=LEASE_TIMEOUT
    ) as server:
        yield server


def _client(kit: Kit, servers: str | None = None) -> LicenseClient:
    return LicenseClient(servers=servers or kit.servers, vendor_key=str(kit.vendor_pub))


def test_lease_context_manager_checks_in_on_exit(kit: Kit, served: ServerProcess) -> None:
    client = _client(kit)
    try:
        with client.checkout("netmap", version="5.0") as lease:
            assert lease_ids(kit) == {lease.id}
        assert lease.checked_in
        assert in_use(kit) == 0
    finally:
        client.close()


def test_lease_context_manager_checks_in_when_the_block_raises(
    kit: Kit, served: ServerProcess
) -> None:
    client = _client(kit)
    try:
        with pytest.raises(RuntimeError), client.checkout("netmap", version="5.0"):
            assert in_use(kit) == 1
            raise RuntimeError("application failed")
        assert in_use(kit) == 0
    finally:
        client.close()


def test_client_context_manager_checks_in_its_leases_on_exit(
    kit: Kit, served: ServerProcess
) -> None:
    with _client(kit) as client:
        lease = client.checkout("netmap", version="5.0")
        assert in_use(kit) == 1
    try:
        assert wait_for(lambda: in_use(kit) == 0, 1.0), "seat still held after the with block"
    finally:
        lease.checkin()


def test_lost_callback_fires_server_unreachable_when_server_stays_away(
    kit: Kit, served: ServerProcess
) -> None:
    calls: list[tuple[Any, str, str, float]] = []
    fired = threading.Event()

    def on_lost(lease: Any, reason: str, message: str) -> None:
        calls.append((lease, reason, message, time.monotonic()))
        fired.set()

    client = _client(kit)
    lease = client.checkout("netmap", version="5.0", on_lost=on_lost)
    try:
        assert wait_for(lambda: lease.heartbeats_udp >= 1, 5.0)
        assert lease.grace_seconds == LEASE_TIMEOUT  # no grace= in the license
        killed_at = time.monotonic()
        served.kill()
        assert fired.wait(LEASE_TIMEOUT + 2 * HEARTBEAT_INTERVAL + 1.0), "callback never fired"
        ((called_lease, reason, message, at),) = calls
        assert called_lease is lease
        assert reason == "SERVER_UNREACHABLE"
        assert message
        assert lease.lost == (reason, message)
        # The client was patient for its grace (its last confirmed heartbeat was about
        # one interval before the kill; two, allowing for a loaded machine), and no longer.
        assert at - killed_at >= LEASE_TIMEOUT - 2 * HEARTBEAT_INTERVAL
        assert at - killed_at <= LEASE_TIMEOUT + 2 * HEARTBEAT_INTERVAL + 1.0
        time.sleep(HEARTBEAT_INTERVAL * 1.5)
        assert len(calls) == 1  # once
    finally:
        lease.checkin()  # a lost lease has nothing to return; must not raise
        client.close()


def test_failover_to_the_second_server_of_the_list(kit: Kit, served: ServerProcess) -> None:
    servers = f"{free_port()}@127.0.0.1,{kit.port}@127.0.0.1"
    client = _client(kit, servers)
    try:
        with client.checkout("netmap", version="5.0") as lease:
            assert lease.server == ("127.0.0.1", kit.port)
            assert lease_ids(kit) == {lease.id}
        assert in_use(kit) == 0
    finally:
        client.close()

    result = kit.cli("checkout", "netmap", "--server", servers, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["server"] == f"{kit.port}@127.0.0.1"


def test_failover_list_of_dead_servers_is_unreachable(kit: Kit) -> None:
    servers = f"{free_port()}@127.0.0.1,127.0.0.1:{free_port()}"
    result = kit.cli("checkout", "netmap", "--server", servers, "--json")
    assert result.returncode == 69, (result.stdout, result.stderr)
    report = json.loads(result.stdout)
    assert report["reason"] == "SERVER_UNREACHABLE"


def test_the_request_is_on_its_way_before_the_verifier_is_imported(
    kit: Kit, served: ServerProcess
) -> None:
    """An application's first checkout sends its hello and request, and only
    then imports ``cryptography`` (most of a license check's start cost), so
    the import runs while the server answers.  Importing the library and
    making a client load none of it; a checkin on the connection that carried
    the grant sends no lease token, so its HMAC is never made."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "def loaded(): return 'cryptography' in sys.modules\n"
        "from netmap_lm import LicenseClient\n"
        "import netmap_lm.client.session as session\n"
        "seen = {'imported': loaded()}\n"
        "send = session.Session._send\n"
        "def first_send(self, *messages):\n"
        "    seen.setdefault('sent', loaded())\n"
        "    return send(self, *messages)\n"
        "session.Session._send = first_send\n"
        f"client = LicenseClient(servers={kit.servers!r}, vendor_key={str(kit.vendor_pub)!r})\n"
        "seen['client made'] = loaded()\n"
        "lease = client.checkout('netmap', '5.0', heartbeat=False)\n"
        "seen['checked out'] = loaded()\n"
        "hmac = 'cryptography.hazmat.primitives.hmac'\n"
        "seen['hmac at checkout'] = hmac in sys.modules\n"
        "lease.checkin()\n"
        "seen['hmac at checkin'] = hmac in sys.modules\n"
        "print(sorted(seen.items()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(
        [
            ("checked out", True),
            ("client made", False),
            ("hmac at checkin", False),  # no token on the granting connection
            ("hmac at checkout", False),
            ("imported", False),
            ("sent", False),
        ]
    )
    assert lease_ids(kit) == set()  # the tokenless checkin was taken


@pytest.mark.parametrize("op", ["checkout", "status", "async checkout"])
def test_checkout_goes_out_with_the_hello(kit: Kit, served: ServerProcess, op: str) -> None:
    """A proxy that forwards nothing until it holds two lines: a client that
    waited for the hello's answer before sending its checkout (or status)
    would hang here (and time out); this one sends both at once."""
    from ._util import relay, thread_server

    before_answer: list[str] = []

    def two_lines_first(stream: Any) -> None:
        upstream = relay(kit.port)
        reader = upstream.makefile("rb")
        try:
            held = [stream.read(), stream.read()]
            before_answer.extend(json.loads(line)["op"] for line in held if line)
            upstream.sendall(b"".join(line for line in held if line))

            def answers() -> None:
                while line := reader.readline():
                    stream.write(line)

            answering = threading.Thread(target=answers, daemon=True)
            answering.start()
            while line := stream.read():
                upstream.sendall(line)
            answering.join(timeout=5)
        finally:
            upstream.close()

    with thread_server(two_lines_first) as proxy:
        client = LicenseClient(servers=proxy.servers, vendor_key=str(kit.vendor_pub), timeout=3.0)
        try:
            if op == "checkout":
                lease = client.checkout("netmap", "5.0", heartbeat=False)
                assert lease_ids(kit) == {lease.id}
                lease.checkin()
            elif op == "async checkout":
                asyncio.run(asyncio.wait_for(_async_checkout_and_checkin(kit, proxy.servers), 10))
            else:
                assert client.status("netmap")["features"][0]["name"] == "netmap"
        finally:
            client.close()
    assert before_answer == ["hello", op.removeprefix("async ")]
    assert in_use(kit) == 0


async def _async_checkout_and_checkin(kit: Kit, servers: str) -> None:
    async with AsyncLicenseClient(servers=servers, vendor_key=str(kit.vendor_pub), timeout=3) as c:
        lease = await c.checkout("netmap", "5.0")
        assert lease_ids(kit) == {lease.id}
        await lease.checkin()
