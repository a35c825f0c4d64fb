"""``--demo``: every key and a demo license, made locally, so that a newcomer
runs the whole flow of SPEC §1 with one command (``make run``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from netmap_lm.licensing import keys, licensefile
from netmap_lm.server.identity import init_state

DEMO_FEATURES = (
    # name, version, seats, expires (days from today, None = permanent), grace minutes
    ("netmap", "5.0", 3, None, 10),
    ("netmap-pro", "5.0", 1, 365, 0),
)


def data_dir() -> Path:
    """Where demo keys and licenses live: ``$XDG_DATA_HOME/netmap-lm``."""
    from netmap_lm.client.environment import data_dir as user_data_dir

    return Path(user_data_dir())


def demo_dir() -> Path:
    return data_dir() / "demo"


def demo_vendor_pub() -> Path:
    return demo_dir() / "vendor.pub"


def ensure_demo(port: int, host: str = "localhost") -> tuple[Path, Path, Path]:
    """Create (or reuse) demo vendor keys, server state and license.

    Returns ``(license, state, vendor.pub)``.  The license is issued again
    when it does not verify or names another port, so the demo always works.
    """
    root = demo_dir()
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "vendor.key").exists():
        keys.generate_pair(root, "vendor", "netmap_lm DEMO vendor public key (not for production)")
    vendor_private = keys.read_private(root / "vendor.key")
    vendor_public = vendor_private.public_key()
    state = root / "state"
    identity, _ = init_state(state)
    license_path = root / "license.lic"
    if license_path.exists():
        current = licensefile.read(license_path, vendor_public)
        server = current.server_for_key(identity.public_text)
        if not current.problems and server is not None and server.port == port:
            return license_path, state, root / "vendor.pub"
    today = datetime.now(UTC).date()
    text = [
        "# netmap_lm DEMO license, made by 'netmap-lm serve --demo'.",
        "# Every line is signed by the demo vendor key; edit one and it stops verifying.",
        licensefile.sign_line(
            vendor_private, "SERVER", {"host": host, "port": port, "key": identity.public_text}
        ),
    ]
    for name, version, seats, days, grace in DEMO_FEATURES:
        expires = (today + timedelta(days=days)).isoformat() if days else "permanent"
        text.append(
            licensefile.sign_line(
                vendor_private,
                "FEATURE",
                {
                    "name": name,
                    "version": version,
                    "seats": seats,
                    "type": "floating",
                    "expires": expires,
                    "id": f"demo-{name}",
                    "grace": grace or None,
                    "customer": "Demo",
                },
            )
        )
    license_path.write_text("\n".join(text) + "\n")
    return license_path, state, root / "vendor.pub"
