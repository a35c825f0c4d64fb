"""ServerConfig.check: any number in any setting is accepted or refused with
a ValueError naming its option, never another exception (SPEC §11: exit 78)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netmap_lm.server.budgets import Limits
from netmap_lm.server.config import (
    HOUR_MS,
    MAX_CLOCK_TOLERANCE_HOURS,
    ServerConfig,
    clock_tolerance_ms,
)

ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
ANY_INT = st.integers(min_value=-(2**70), max_value=2**70)


def config(**settings: object) -> ServerConfig:
    limits = {k: settings.pop(k) for k in list(settings) if k in Limits.__dataclass_fields__}
    return ServerConfig(
        license_path=Path("license.lic"),
        state_dir=Path("state"),
        vendor_key_path=Path("vendor.pub"),
        limits=Limits(**limits),  # type: ignore[arg-type]
        **settings,  # type: ignore[arg-type]
    )


def test_the_defaults_pass() -> None:
    config().check()


@given(
    heartbeat_interval=ANY_FLOAT,
    lease_timeout=ANY_FLOAT,
    handshake_timeout=ANY_FLOAT,
    idle_timeout=ANY_FLOAT,
    requests_per_second=ANY_FLOAT,
    max_connections=ANY_INT,
    max_per_address=ANY_INT,
    clock_tolerance_ms=ANY_INT,
)
def test_check_raises_only_value_errors_naming_an_option(**settings: object) -> None:
    try:
        config(**settings).check()
    except ValueError as exc:
        assert str(exc).startswith("--") and "\n" not in str(exc)


@given(ANY_FLOAT)
def test_clock_tolerance_is_finite_and_in_range_or_refused(hours: float) -> None:
    if math.isfinite(hours) and 0 <= hours <= MAX_CLOCK_TOLERANCE_HOURS:
        assert clock_tolerance_ms(hours) == round(hours * HOUR_MS)
    else:
        with pytest.raises(ValueError, match=r"^--clock-tolerance "):
            clock_tolerance_ms(hours)


@pytest.mark.parametrize(
    ("settings", "option"),
    [
        ({"lease_timeout": math.nan}, "--lease-timeout"),
        ({"heartbeat_interval": math.inf}, "--heartbeat-interval"),
        ({"heartbeat_interval": 30.0, "lease_timeout": 30.4}, "--lease-timeout"),
        ({"idle_timeout": -1.0}, "--idle-timeout"),
        ({"handshake_timeout": math.nan}, "--handshake-timeout"),
        ({"requests_per_second": math.nan}, "--rate-limit"),
        ({"max_connections": 0}, "--max-connections"),
        ({"max_per_address": 0}, "--max-connections-per-address"),
        ({"clock_tolerance_ms": -1}, "--clock-tolerance"),
    ],
)
def test_each_bad_setting_is_named(settings: dict[str, object], option: str) -> None:
    with pytest.raises(ValueError, match=f"^{option} must be"):
        config(**settings).check()
