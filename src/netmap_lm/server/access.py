"""Who may talk to the server at all: the ``--allow`` list (SPEC §8).

Enforced by the server itself, not only by a firewall: a connection or a
datagram from elsewhere is refused before any protocol work.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AllowList:
    """Client networks; empty means everybody."""

    def __init__(self, cidrs: Iterable[str] = ()) -> None:
        self.networks: list[Network] = []
        for cidr in cidrs:
            try:
                self.networks.append(ipaddress.ip_network(cidr, strict=False))
            except ValueError:
                raise ValueError(
                    f"--allow {cidr!r} is not an address or network (e.g. 10.0.0.0/8)"
                ) from None
        self._cache: dict[str, bool] = {}

    def permits(self, address: str) -> bool:
        if not self.networks:
            return True
        known = self._cache.get(address)
        if known is not None:
            return known
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        verdict = any(ip.version == net.version and ip in net for net in self.networks)
        if len(self._cache) < 65536:  # bounded: spoofed UDP sources must not grow it forever
            self._cache[address] = verdict
        return verdict


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False
