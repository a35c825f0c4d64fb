"""Host ids: what a SERVER or node-locked FEATURE line can be bound to.

FlexLM binds to an Ethernet address; we offer the same (``mac:``) plus the
systemd/D-Bus machine id (``machine:``), which survives network changes.
"""

from __future__ import annotations

import os

_NET = "/sys/class/net"
_MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")


def _sha256_hex(data: bytes) -> str:
    # cryptography's hash, not hashlib: the client library has it loaded already.
    from cryptography.hazmat.primitives import hashes

    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize().hex()


def _read(path: str) -> str:
    # Binary, then a built-in decode: a text-mode open with another codec costs
    # an application milliseconds of codec imports at every start.
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8", "replace").strip()


def host_ids() -> list[str]:
    """All host ids of this machine, the preferred one first."""
    ids: list[str] = []
    for path in _MACHINE_ID_FILES:
        try:
            text = _read(path)
        except OSError:
            continue
        if text:
            ids.append("machine:" + _sha256_hex(text.encode())[:16])
            break
    try:
        interfaces = sorted(os.listdir(_NET))
    except OSError:
        interfaces = []
    for name in interfaces:
        try:
            mac = _read(f"{_NET}/{name}/address").replace(":", "").lower()
        except OSError:
            continue
        if name != "lo" and mac and set(mac) != {"0"}:
            ids.append("mac:" + mac)
    return ids or ["machine:unknown"]


def primary_host_id() -> str:
    return host_ids()[0]
