"""The server's own Ed25519 identity in its state directory (SPEC §3.2)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from netmap_lm.licensing import keys
from netmap_lm.licensing.hostid import primary_host_id
from netmap_lm.server.admin import ensure_admin_token

SERVER_KEY_FILE = "server.key"
SERVER_PUB_FILE = "server.pub"


@dataclass(frozen=True)
class ServerIdentity:
    private_key: Ed25519PrivateKey
    public_text: str  # base64url, as in the SERVER line's key=
    fingerprint: str

    @cached_property
    def host_id(self) -> str:
        """This machine's primary host id, for ``server init`` to print; read
        when asked (machine-id, network interfaces), not at every server start."""
        return primary_host_id()


def init_state(state: Path) -> tuple[ServerIdentity, bool]:
    """Create the identity in ``state`` unless it exists; True when created."""
    state.mkdir(parents=True, exist_ok=True)
    created = False
    if not (state / SERVER_KEY_FILE).exists():
        keys.generate_pair(state, "server", "netmap_lm server public key; send it to your vendor")
        created = True
    ensure_admin_token(state)
    return load_identity(state), created


def load_identity(state: Path) -> ServerIdentity:
    path = state / SERVER_KEY_FILE
    if not path.exists():
        raise keys.KeyFileError(
            f"{path}: no server identity; create one with 'netmap-lm server init --state {state}'"
        )
    private = keys.read_private(path)
    public = private.public_key()
    return ServerIdentity(
        private_key=private,
        public_text=keys.public_text(public),
        fingerprint=keys.fingerprint(public),
    )
