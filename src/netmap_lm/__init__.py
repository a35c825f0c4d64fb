"""netmap_lm — open network license manager for port 1493.

The package root stays cheap to import: an application pays for it at every
start (SPEC §9).  The client classes are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
PROTOCOL_VERSION = 1
DEFAULT_PORT = 1493  # IANA "netmap_lm", TCP and UDP (SPEC §2)

__all__ = [
    "AsyncLicenseClient",
    "Lease",
    "LicenseClient",
    "LicenseDenied",
    "TlsSettings",
    "__version__",
]

if TYPE_CHECKING:
    from netmap_lm.client.aio import AsyncLicenseClient
    from netmap_lm.client.session import TlsSettings
    from netmap_lm.client.sync import Lease, LicenseClient
    from netmap_lm.reasons import LicenseDenied


def __getattr__(name: str) -> Any:
    if name in ("LicenseClient", "Lease"):
        from netmap_lm.client import sync

        return getattr(sync, name)
    if name == "AsyncLicenseClient":
        from netmap_lm.client import aio

        return aio.AsyncLicenseClient
    if name == "TlsSettings":
        from netmap_lm.client.session import TlsSettings

        return TlsSettings
    if name == "LicenseDenied":
        from netmap_lm.reasons import LicenseDenied

        return LicenseDenied
    raise AttributeError(f"module 'netmap_lm' has no attribute {name!r}")
