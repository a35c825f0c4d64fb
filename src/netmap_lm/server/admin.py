"""The admin credential (SPEC §7): a secret in the server's state directory.

``server init`` writes ``DIR/admin.token`` (mode 0600).  An administrator's
command reads it and proves possession with an HMAC over the session nonce
(``trust.admin_proof``), so the secret never crosses the network.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

from netmap_lm.encoding import b64u_decode, b64u_encode
from netmap_lm.licensing.keys import PRIVATE_MODE, KeyFileError

ADMIN_TOKEN_FILE = "admin.token"
TOKEN_BYTES = 32  # 256-bit secret


def ensure_admin_token(state: Path) -> Path:
    """Create ``state/admin.token`` unless it exists; return its path.

    Raises :class:`KeyFileError` (one line: the file and what to do) when it
    cannot be written."""
    path = state / ADMIN_TOKEN_FILE
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
        except OSError as exc:
            _cannot_create(path, state, exc)
        try:
            with os.fdopen(fd, "w") as out:
                out.write("# netmap_lm admin credential; keep it secret (mode 0600)\n")
                out.write(b64u_encode(os.urandom(TOKEN_BYTES)) + "\n")
            os.chmod(path, PRIVATE_MODE)
        except OSError as exc:
            path.unlink(missing_ok=True)  # half written: the next start writes it anew
            _cannot_create(path, state, exc)
    return path


def _cannot_create(path: Path, state: Path, exc: OSError) -> NoReturn:
    raise KeyFileError(
        f"{path}: cannot create the admin credential ({exc.strerror or exc}); "
        f"make {state} writable by the server's user, or create it there with "
        f"'netmap-lm server init --state {state}'"
    ) from None


def read_admin_token(path: Path) -> bytes:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the admin credential ({exc.strerror})") from None
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            try:
                token = b64u_decode(line)
            except ValueError:
                break
            if len(token) == TOKEN_BYTES:
                return token
            break
    raise KeyFileError(f"{path}: not an admin credential written by 'netmap-lm server init'")
