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
            c = AsyncLicenseClient(servers=mitm.servers, vendor_key=str(kit.vendor_pub))
            with pytest.raises(LicenseDenied) as info:
                await c.checkout("netmap", "5.0")
            assert info.value.reason == "SERVER_NOT_TRUSTED"
            assert "not in the signed batch" in info.value.message
            assert mitm.ops() == ["hello", "checkout", "checkin"]
        async with AsyncLicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub)) as c:
            status = await c.status("netmap")
            assert status["features"][0]["in_use"] == 0

    asyncio.run(asyncio.wait_for(scenario(), 30))
