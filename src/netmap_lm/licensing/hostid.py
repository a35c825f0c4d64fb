"""Host ids: what a SERVER or node-locked FEATURE line can be bound to.

FlexLM binds to an Ethernet address; we offer the same (``mac:``) plus the
systemd/D-Bus machine id (``machine:``), which survives network changes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_NET = Path("/sys/class/net")
_MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))


def host_ids() -> list[str]:
    """All host ids of this machine, the preferred one first."""
    ids: list[str] = []
    for path in _MACHINE_ID_FILES:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text:
            ids.append("machine:" + hashlib.sha256(text.encode()).hexdigest()[:16])
            break
    try:
        interfaces = sorted(_NET.iterdir())
    except OSError:
        interfaces = []
    for iface in interfaces:
        try:
            mac = (iface / "address").read_text().strip().replace(":", "").lower()
        except OSError:
            continue
        if iface.name != "lo" and mac and set(mac) != {"0"}:
            ids.append("mac:" + mac)
    return ids or ["machine:unknown"]


def primary_host_id() -> str:
    return host_ids()[0]
