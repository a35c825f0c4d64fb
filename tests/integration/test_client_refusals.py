"""A server that refuses the client itself (allow list, request rate) is
reported with its reason by both clients, not as an untrusted or unreachable
server (SPEC §9: RATE_LIMITED exits 75, NOT_AUTHORIZED 77)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from netmap_lm import AsyncLicenseClient, LicenseClient, LicenseDenied
from support import Kit, ServerProcess

# A request rate with a burst of under one request: every line, hello first,
# is refused (the burst is --rate-limit × BURST_SECONDS = 0.5 requests).
REFUSE_EVERY_LINE = "0.1"
# One request a second, a burst of five: a session's hello and four requests
# pass, the sixth line at once is refused.
FIVE_AT_ONCE = "1"


@pytest.fixture
def refusing_server(kit: Kit, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    kit.write_license()
    with ServerProcess(kit, *request.param) as server:
        yield server


def _sync_checkout(kit: Kit) -> LicenseDenied:
    client = LicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub), timeout=5)
    try:
        with pytest.raises(LicenseDenied) as info:
            client.checkout("netmap", "5.0")
        assert client._session is None  # the server closes after a refusal
        return info.value
    finally:
        client.close()


def _async_checkout(kit: Kit) -> LicenseDenied:
    async def scenario() -> LicenseDenied:
        async with AsyncLicenseClient(
            servers=kit.servers, vendor_key=str(kit.vendor_pub), timeout=5
        ) as client:
            with pytest.raises(LicenseDenied) as info:
                await client.checkout("netmap", "5.0")
            assert client._session is None
            return info.value

    return asyncio.run(asyncio.wait_for(scenario(), 30))


CLIENTS: list[Callable[[Kit], LicenseDenied]] = [_sync_checkout, _async_checkout]


@pytest.mark.parametrize("refusing_server", [("--allow", "10.0.0.0/8")], indirect=True)
@pytest.mark.parametrize("checkout", CLIENTS, ids=["sync", "async"])
def test_a_client_outside_the_allow_list_is_told_not_authorized(
    kit: Kit, refusing_server: ServerProcess, checkout: Callable[[Kit], LicenseDenied]
) -> None:
    denied = checkout(kit)
    assert denied.reason == "NOT_AUTHORIZED", denied
    assert "allow list" in denied.message


@pytest.mark.parametrize("refusing_server", [("--rate-limit", REFUSE_EVERY_LINE)], indirect=True)
@pytest.mark.parametrize("checkout", CLIENTS, ids=["sync", "async"])
def test_a_rate_limited_hello_is_rate_limited_not_an_untrusted_server(
    kit: Kit, refusing_server: ServerProcess, checkout: Callable[[Kit], LicenseDenied]
) -> None:
    denied = checkout(kit)
    assert denied.reason == "RATE_LIMITED", denied
    assert "too many requests" in denied.message


@pytest.mark.parametrize("refusing_server", [("--rate-limit", REFUSE_EVERY_LINE)], indirect=True)
def test_cli_checkout_of_a_rate_limited_client_exits_75(
    kit: Kit, refusing_server: ServerProcess
) -> None:
    result = kit.cli("checkout", "netmap", "--json")
    assert result.returncode == 75, (result.stdout, result.stderr)
    assert json.loads(result.stdout)["reason"] == "RATE_LIMITED"


def _sync_status_until_refused(kit: Kit) -> tuple[list[Any], bool]:
    client = LicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub), timeout=5)
    outcomes: list[Any] = []
    try:
        for _ in range(6):
            try:
                outcomes.append(client.status()["ok"])
            except LicenseDenied as exc:
                outcomes.append(exc.reason)
        dropped = client._session is None
        time.sleep(2.5)  # the budget refills: a new session's hello and one request
        outcomes.append(client.status()["ok"])
        return outcomes, dropped
    finally:
        client.close()


def _async_status_until_refused(kit: Kit) -> tuple[list[Any], bool]:
    async def scenario() -> tuple[list[Any], bool]:
        async with AsyncLicenseClient(
            servers=kit.servers, vendor_key=str(kit.vendor_pub), timeout=5
        ) as client:
            outcomes: list[Any] = []
            for _ in range(6):
                try:
                    outcomes.append((await client.status())["ok"])
                except LicenseDenied as exc:
                    outcomes.append(exc.reason)
            dropped = client._session is None
            await asyncio.sleep(2.5)
            outcomes.append((await client.status())["ok"])
            return outcomes, dropped

    return asyncio.run(asyncio.wait_for(scenario(), 30))


@pytest.mark.parametrize("refusing_server", [("--rate-limit", FIVE_AT_ONCE)], indirect=True)
@pytest.mark.parametrize(
    "run", [_sync_status_until_refused, _async_status_until_refused], ids=["sync", "async"]
)
def test_a_refusal_mid_session_drops_the_session_without_a_retry(
    kit: Kit, refusing_server: ServerProcess, run: Callable[[Kit], tuple[list[Any], bool]]
) -> None:
    """The refused request is not sent again (a retry would only spend more of
    the budget), the closed session is dropped, and a later request reconnects."""
    outcomes, dropped = run(kit)
    assert outcomes == [True, True, True, True, "RATE_LIMITED", "RATE_LIMITED", True]
    assert dropped
