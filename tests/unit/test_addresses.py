"""Server lists as users type them (SPEC §2): what is read, and what is refused
with an AddressError naming the entry rather than a traceback."""

from __future__ import annotations

import pytest

from netmap_lm import DEFAULT_PORT
from netmap_lm.client.environment import AddressError, parse_servers


def test_the_forms_of_a_server_list() -> None:
    assert parse_servers("1493@lm1, lm2:1600,[::1]:1700,lm3,[fe80::1]") == [
        ("lm1", 1493),
        ("lm2", 1600),
        ("::1", 1700),
        ("lm3", DEFAULT_PORT),
        ("fe80::1", DEFAULT_PORT),
    ]


@pytest.mark.parametrize(
    "spec",
    [
        "lm1:²",  # a superscript two: str.isdigit() says yes, int() says no
        "²@lm1",
        "[::1]:١٢",  # Arabic-Indic digits: int() would read them as port 12
        "lm1:𝟏𝟒𝟗𝟑",  # mathematical bold digits
        "lm1:0",
        "lm1:65536",
        "lm1:port",
        "lm1: 1493",
    ],
)
def test_a_port_that_is_not_ascii_digits_in_range_is_an_address_error(spec: str) -> None:
    with pytest.raises(AddressError, match="is not a number from 1 to 65535"):
        parse_servers(spec)


def test_without_a_list_the_environment_is_read_and_named_when_wrong(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NETMAP_LM_SERVERS", raising=False)
    assert parse_servers(None) == [("localhost", DEFAULT_PORT)]
    monkeypatch.setenv("NETMAP_LM_SERVERS", "1600@lm1,lm2")
    assert parse_servers(None) == [("lm1", 1600), ("lm2", DEFAULT_PORT)]
    monkeypatch.setenv("NETMAP_LM_SERVERS", "lm1:port")
    with pytest.raises(AddressError) as raised:
        parse_servers(None)
    assert raised.value.reason == "CONFIG_ERROR" and raised.value.message == (
        "NETMAP_LM_SERVERS: 'lm1:port': port 'port' is not a number from 1 to 65535"
    )
