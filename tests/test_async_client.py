"""The asyncio client against a real server process."""

from __future__ import annotations

import asyncio

import pytest

from netmap_lm import AsyncLicenseClient, LicenseDenied


def test_async_checkout_heartbeat_and_checkin(kit, server):
    async def scenario() -> None:
        async with AsyncLicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub)) as c:
            async with await c.checkout("netmap", "5.0") as lease:
                assert lease.feature == "netmap"
                status = await c.status("netmap")
                assert status["features"][0]["in_use"] == 1
                # Heartbeats (interval 1 s, timeout 4 s) keep the lease past its timeout.
                await asyncio.sleep(5.5)
                assert not lease.lost
                status = await c.status("netmap")
                assert [x["lease"] for x in status["features"][0]["leases"]] == [lease.id]
            status = await c.status("netmap")
            assert status["features"][0]["in_use"] == 0

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_async_refusal_carries_the_reason(kit, server):
    async def scenario() -> None:
        async with AsyncLicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub)) as c:
            with pytest.raises(LicenseDenied) as info:
                await c.checkout("netmap", "9.0")
            assert info.value.reason == "VERSION_NOT_LICENSED"
            leases = [await c.checkout("netmap", "5.0") for _ in range(3)]
            with pytest.raises(LicenseDenied) as info:
                await c.checkout("netmap", "5.0")
            assert info.value.reason == "SEATS_EXHAUSTED"
            for lease in leases:
                await lease.checkin()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_async_unreachable(kit):
    async def scenario() -> None:
        c = AsyncLicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub), timeout=1)
        with pytest.raises(LicenseDenied) as info:
            await c.checkout("netmap")
        assert info.value.reason == "SERVER_UNREACHABLE"

    asyncio.run(asyncio.wait_for(scenario(), 30))


async def _in_use(kit) -> int:
    async with AsyncLicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub)) as c:
        return (await c.status("netmap"))["features"][0]["in_use"]


async def _not_trusted_through(mitm, kit) -> str:
    """Check out through ``mitm``: SERVER_NOT_TRUSTED; the message."""
    c = AsyncLicenseClient(servers=mitm.servers, vendor_key=str(kit.vendor_pub))
    with pytest.raises(LicenseDenied) as info:
        await c.checkout("netmap", "5.0")
    assert info.value.reason == "SERVER_NOT_TRUSTED"
    return info.value.message


def test_async_grant_that_fails_verification_is_given_back(kit, server):
    """A man in the middle edits the grant: the client refuses it and checks the
    seat in at once, as a genuine server still counts it (lease timeout 4 s)."""
    from security._net import Mitm

    def edit(request, reply):
        if request.get("op") == "checkout" and reply.get("ok"):
            reply["grant"]["user"] = "mallory"
        return reply

    async def scenario() -> None:
        with Mitm(kit.port, on_reply=edit) as mitm:
            assert "not in the signed batch" in await _not_trusted_through(mitm, kit)
            assert mitm.ops() == ["hello", "checkout", "checkin"]
        assert await _in_use(kit) == 0

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_async_seat_granted_behind_a_distrusted_hello_is_given_back(kit, server):
    """The checkout rides with the hello; when the hello then fails (here its
    SERVER line is edited), the seat the genuine server granted is checked in."""
    import time

    from security._net import Mitm

    def edit(request, reply):
        if request.get("op") == "hello" and reply.get("ok"):
            reply["server_line"] = reply["server_line"].replace("127.0.0.1", "127.0.0.2")
        return reply

    async def scenario() -> None:
        with Mitm(kit.port, on_reply=edit) as mitm:
            assert "not signed by the vendor key" in await _not_trusted_through(mitm, kit)
            deadline = time.monotonic() + 5.0  # the give-back may still be on its way
            while time.monotonic() < deadline and (len(mitm.seen) < 3 or await _in_use(kit)):
                await asyncio.sleep(0.05)
            assert mitm.ops() == ["hello", "checkout", "checkin"]
            assert mitm.seen[1][1]["ok"] and mitm.seen[2][1]["ok"]
        assert await _in_use(kit) == 0

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_async_node_locked_line_gets_the_host_ids_when_it_asks(kit, monkeypatch):
    """The first checkout carries no host ids (it rides with the hello); a
    node-locked line answers hostid_required and the client asks again with them."""
    from support import ServerProcess

    kit.write_license(
        [kit.feature_line("cad", seats=2, type="nodelocked", hostid="machine:aaaabbbbccccdddd")]
    )

    async def scenario() -> None:
        async with AsyncLicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub)) as c:
            monkeypatch.setenv("NETMAP_LM_HOSTID", "machine:0000000000000000")
            with pytest.raises(LicenseDenied) as info:
                await c.checkout("cad")
            assert info.value.reason == "HOSTID_MISMATCH"
        async with AsyncLicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub)) as c:
            monkeypatch.setenv("NETMAP_LM_HOSTID", "mac:1,machine:aaaabbbbccccdddd")
            lease = await c.checkout("cad")
            assert lease.grant["hostid"] == "mac:1,machine:aaaabbbbccccdddd"
            await lease.checkin()

    with ServerProcess(kit):
        asyncio.run(asyncio.wait_for(scenario(), 30))


def test_the_async_client_loads_its_verifier_with_its_module():
    """The blocking client imports ``cryptography`` once its first request is
    on the wire; the asyncio one must not, or that import would stall the
    caller's event loop in the middle of a checkout."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from netmap_lm import AsyncLicenseClient\n"
        "print('cryptography.hazmat.primitives.asymmetric.ed25519' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "True"
