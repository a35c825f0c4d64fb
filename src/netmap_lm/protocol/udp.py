"""UDP heartbeat datagrams (SPEC §5): fixed size, authenticated, replay-proof.

Layout (61 bytes, network byte order)::

    magic  4  b"NMH1"
    type   1  1 = heartbeat (client → server), 2 = ack (server → client)
    lease 16  lease id (the 32 hex digits of the grant, as bytes)
    seq    8  unsigned, strictly increasing per lease
    mac   32  HMAC-SHA256(lease key, the 29 bytes above)

The lease key is the grant's ``key``.  The server answers a heartbeat only
when its MAC verifies and its ``seq`` is above every one seen before for
that lease; the ack has the request's size exactly, so the port cannot be
used to amplify traffic.  Everything else is dropped without an answer.
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

MAGIC = b"NMH1"
HEARTBEAT = 1
ACK = 2
DATAGRAM_BYTES = 61
_HEADER = struct.Struct("!4sB16sQ")
MAC_BYTES = 32


def _mac(key: bytes, header: bytes) -> bytes:
    mac = crypto_hmac.HMAC(key, hashes.SHA256())
    mac.update(header)
    return mac.finalize()


def pack(kind: int, lease_id: str, seq: int, key: bytes) -> bytes:
    header = _HEADER.pack(MAGIC, kind, bytes.fromhex(lease_id), seq)
    return header + _mac(key, header)


def unpack_unverified(data: bytes) -> tuple[int, str, int] | None:
    """``(type, lease id, seq)`` of a well-formed datagram, else ``None``.

    The MAC is not checked yet: the caller looks up the lease key first.
    """
    if len(data) != DATAGRAM_BYTES or not data.startswith(MAGIC):
        return None
    _, kind, lease, seq = _HEADER.unpack_from(data)
    if kind not in (HEARTBEAT, ACK):
        return None
    return kind, lease.hex(), seq


def authentic(data: bytes, key: bytes) -> bool:
    """True when the datagram's MAC verifies with ``key`` (constant time)."""
    mac = crypto_hmac.HMAC(key, hashes.SHA256())
    mac.update(data[: _HEADER.size])
    try:
        mac.verify(data[_HEADER.size :])
    except InvalidSignature:
        return False
    return True
