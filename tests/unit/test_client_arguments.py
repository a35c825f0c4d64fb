"""What an application passes the client library (SPEC §9): a bad server list,
feature name or version is a ``LicenseDenied`` with ``CONFIG_ERROR`` (exit 78),
raised before anything is sent, so that ``except LicenseDenied`` covers it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netmap_lm import AsyncLicenseClient, LicenseClient, LicenseDenied
from netmap_lm.client.sync import check_request
from netmap_lm.licensing.licensefile import FEATURE_NAME, parse_version
from support import Kit, free_port


@pytest.mark.parametrize("servers", ["", "x@y", "lm1:99999"])
def test_a_bad_server_list_is_a_config_error(kit: Kit, servers: str) -> None:
    with pytest.raises(LicenseDenied) as denied:
        LicenseClient(servers=servers, vendor_key=str(kit.vendor_pub))
    assert denied.value.reason == "CONFIG_ERROR" and denied.value.exit_code == 78
    assert isinstance(denied.value, ValueError)  # as before it was a LicenseDenied


BAD_REQUESTS = [
    ("", "5.0", "feature '' is not a feature name"),
    ("../../etc/x", "5.0", "feature '../../etc/x' is not a feature name"),
    ("-netmap", "5.0", "is not a feature name"),
    ("n" * 65, "5.0", "is not a feature name"),
    (None, "5.0", "feature None is not a feature name"),
    ("netmap", 5.0, "version 5.0 is not a version: a string of dotted numbers like '5.0'"),
    ("netmap", "5.x", "version '5.x' is not a version"),
    ("netmap", "1.2.3.4.5", "is not a version"),
    ("netmap", "1234567", "is not a version"),
    ("netmap", "٥.0", "is not a version"),
    ("netmap", "", "version '' is not a version"),
]


@pytest.mark.parametrize(("feature", "version", "message"), BAD_REQUESTS)
def test_a_bad_request_is_refused_before_anything_is_sent(
    kit: Kit, feature: Any, version: Any, message: str
) -> None:
    # Nothing listens on the port: a check made after connecting would say
    # SERVER_UNREACHABLE instead.
    client = LicenseClient(servers=f"{free_port()}@127.0.0.1", vendor_key=str(kit.vendor_pub))
    with pytest.raises(LicenseDenied) as denied:
        client.checkout(feature, version, heartbeat=False)
    assert denied.value.reason == "CONFIG_ERROR" and message in denied.value.message

    async def async_checkout() -> None:
        aclient = AsyncLicenseClient(
            servers=f"{free_port()}@127.0.0.1", vendor_key=str(kit.vendor_pub)
        )
        await aclient.checkout(feature, version)

    with pytest.raises(LicenseDenied) as denied:
        asyncio.run(async_checkout())
    assert denied.value.reason == "CONFIG_ERROR" and message in denied.value.message


def _accepted(feature: str, version: str) -> bool:
    try:
        check_request(feature, version)
    except LicenseDenied:
        return False
    return True


@given(st.text(alphabet="0123456789.٥５x", max_size=30))
def test_the_client_takes_a_version_exactly_when_licenses_do(version: str) -> None:
    try:
        parse_version(version)
        licensed = True
    except ValueError:
        licensed = False
    assert _accepted("netmap", version) is licensed


@given(st.text(alphabet="aZ09_.-/é ", max_size=70))
def test_the_client_takes_a_feature_name_exactly_when_licenses_do(feature: str) -> None:
    assert _accepted(feature, "5.0") is bool(FEATURE_NAME.fullmatch(feature))
