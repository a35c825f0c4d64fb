"""Ed25519 key files for vendors and servers (SPEC §3).

Private keys are PKCS#8 PEM files created with mode 0600.  Public keys are
one line of base64url (the raw 32-byte key), after optional ``#`` comment
lines, so that a vendor can paste one into application source and the client
library can load one without the PEM machinery.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from netmap_lm.encoding import b64u_decode, b64u_encode
from netmap_lm.licensing import textfile

PRIVATE_MODE = 0o600  # owner read/write only: a leaked key forges licenses or grants


class KeyFileError(ValueError):
    """A key file is missing or unreadable; the message names the file and the fix."""


def public_text(key: Ed25519PublicKey) -> str:
    """The base64url form of a public key, as in ``key=`` of a SERVER line."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return b64u_encode(raw)


def public_from_text(text: str) -> Ed25519PublicKey:
    raw = b64u_decode(text.strip())
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def fingerprint(key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 16 hex digits of its SHA-256."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def write_private(path: Path, key: Ed25519PrivateKey) -> None:
    """Write a private key, refusing to overwrite one (a lost key cannot be recovered)."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    os.chmod(path, PRIVATE_MODE)


def write_public(path: Path, key: Ed25519PublicKey, comment: str) -> None:
    path.write_text(f"# {comment}\n{public_text(key)}\n")


def read_private(path: Path) -> Ed25519PrivateKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read private key ({exc.strerror})") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        if _is_public_key_file(data):
            raise KeyFileError(
                f"{path}: this is a public key; give the private key (the .key file "
                "that 'netmap-lm vendor keygen' or 'netmap-lm server init' wrote beside it)"
            ) from None
        raise KeyFileError(
            f"{path}: not a PEM private key; expected the .key file written by "
            "'netmap-lm vendor keygen' or 'netmap-lm server init'"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 private key")
    return key


def _is_public_key_file(data: bytes) -> bool:
    """Whether ``data`` reads as a public key file (a common mix-up for a private one)."""
    try:
        lines = [line.strip() for line in textfile.decode(data, "a key file").splitlines()]
        (text,) = [line for line in lines if line and not line.startswith("#")]
        public_from_text(text)
    except ValueError:  # UnicodeDecodeError, unpacking, base64url and key errors
        return False
    return True


def read_public(path: Path) -> Ed25519PublicKey:
    """Load a public key file: the first line that is not blank or a ``#`` comment."""
    try:
        text = textfile.decode(Path(path).read_bytes(), "a public key file")
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read public key ({exc.strerror})") from None
    except textfile.NotText as exc:
        raise KeyFileError(exc.at(path)) from None
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-----BEGIN") and "PRIVATE KEY" in line:
            raise KeyFileError(
                f"{path}: this is a private key; give the public key (the .pub file "
                "beside it), and keep the private key off machines that only verify"
            )
        try:
            return public_from_text(line)
        except ValueError as exc:
            raise KeyFileError(
                f"{path}:{lineno}: not an Ed25519 public key ({exc}); "
                "expected one line of base64url as written by 'netmap-lm vendor keygen'"
            ) from None
    raise KeyFileError(f"{path}: no public key in the file")


def generate_pair(directory: Path, stem: str, comment: str) -> tuple[Path, Path]:
    """Create ``stem.key`` (0600) and ``stem.pub`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / f"{stem}.key", directory / f"{stem}.pub"
    if private_path.exists():
        raise KeyFileError(f"{private_path}: already exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    write_private(private_path, key)
    write_public(public_path, key.public_key(), comment)
    return private_path, public_path
