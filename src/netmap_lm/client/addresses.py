"""Server address lists, FlexLM style (SPEC §2): ``1493@lm1,lm2:1493,[::1]:1493``."""

from __future__ import annotations

import os

from netmap_lm import DEFAULT_PORT

DEFAULT_SERVERS = f"{DEFAULT_PORT}@localhost"
SERVERS_ENV = "NETMAP_LM_SERVERS"


class AddressError(ValueError):
    """A server list cannot be read; the message shows the bad entry."""


def parse_servers(spec: str | None) -> list[tuple[str, int]]:
    """``"1493@lm1,lm2:1600"`` → ``[("lm1", 1493), ("lm2", 1600)]``.

    ``None`` reads ``NETMAP_LM_SERVERS`` and falls back to ``1493@localhost``.
    """
    if spec is None:
        spec = os.environ.get(SERVERS_ENV) or DEFAULT_SERVERS
    result = []
    for entry in spec.split(","):
        entry = entry.strip()
        if not entry:
            continue
        result.append(_parse_one(entry))
    if not result:
        raise AddressError(f"no server in {spec!r}; expected e.g. 1493@lmhost")
    return result


def _parse_one(entry: str) -> tuple[str, int]:
    host, port_text = entry, str(DEFAULT_PORT)
    if "@" in entry:
        port_text, host = entry.split("@", 1)
    elif entry.startswith("["):
        close = entry.find("]")
        if close < 0:
            raise AddressError(f"{entry!r}: missing ']' after an IPv6 address")
        host, rest = entry[1:close], entry[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise AddressError(f"{entry!r}: expected ':PORT' after ']'")
            port_text = rest[1:]
    elif entry.count(":") == 1:
        host, port_text = entry.split(":")
    host = host.strip("[]")
    if not host:
        raise AddressError(f"{entry!r}: no host name")
    # isdigit() alone takes "²" and "١٢" (which int() reads, or raises on)
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        raise AddressError(f"{entry!r}: port {port_text!r} is not a number from 1 to 65535")
    return host, int(port_text)


def format_address(address: tuple[str, int]) -> str:
    return f"{address[1]}@{address[0]}"
