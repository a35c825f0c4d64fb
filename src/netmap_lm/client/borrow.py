"""Borrowed seats (SPEC §4 ``borrow=``): a signed grant kept on disk for offline use.

A borrow is a checkout with ``borrow=HOURS``: the server counts the seat
until the borrow ends (across restarts) and signs a grant whose
``borrow_until`` says when.  The client keeps that grant, with the SERVER
and FEATURE lines it rests on, in ``$XDG_DATA_HOME/netmap-lm/borrow/``; until
it ends, ``LicenseClient.checkout`` verifies it offline against the pinned
vendor key and this machine's host id and needs no server at all.  An early
return checks the lease in and deletes the file.

``json`` is imported only when a borrow file is read or written, and this
module only when a borrow file exists (``environment.borrow_path``) or a
seat is borrowed or returned: a checkout without one should not pay for it
at every application start.
"""

from __future__ import annotations

import os
import time
from typing import Any

from netmap_lm import reasons
from netmap_lm.client.environment import AddressError, borrow_dir, borrow_path, parse_servers
from netmap_lm.encoding import b64u_decode
from netmap_lm.licensing import trust
from netmap_lm.reasons import LicenseDenied

BORROW_MODE = 0o600  # the file holds the lease key
LAST_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: later is no date


def save(feature: str, record: dict[str, Any]) -> str:
    import json

    os.makedirs(borrow_dir(), exist_ok=True)
    path = borrow_path(feature)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, BORROW_MODE)
    with os.fdopen(fd, "w") as out:
        json.dump(record, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    return path


def load_valid(feature: str, version: str, vendor_key: Any, host_ids: str) -> dict[str, Any] | None:
    """The saved borrow of ``feature`` if it verifies offline now and its
    FEATURE line licenses ``version``; else None (a checkout then asks a
    server), also when the file is damaged."""
    try:
        record = _read(borrow_path(feature))
    except (OSError, ValueError):
        return None
    if _damage(record) is not None:
        return None
    try:
        grant = trust.verify_grant_offline(
            record, vendor_key, int(time.time() * 1000), version=version
        )
    except trust.Untrusted:
        return None
    mine = set(host_ids.split(","))
    if not mine & set(str(grant["hostid"]).split(",")):
        return None  # copied from another machine
    return record


def load_any(feature: str) -> dict[str, Any] | None:
    """The saved borrow of ``feature``, valid or not (for an early return);
    None when there is no borrow file.

    A file there that cannot be read or is not a borrow record (damaged, or
    edited by hand) raises ``LicenseDenied`` with ``CONFIG_ERROR`` naming it:
    whoever returns a seat believes one is borrowed here, and "nothing
    borrowed" would hide the file.  It is left in place for them to look at."""
    path = borrow_path(feature)
    try:
        record = _read(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LicenseDenied(reasons.CONFIG_ERROR, f"{path}: cannot read ({exc})") from None
    except ValueError:
        record = None  # not JSON
    damage = _damage(record)
    if damage is not None:
        raise LicenseDenied(
            reasons.CONFIG_ERROR,
            f"{path}: not a borrow record ({damage}); delete it "
            "(the server frees the seat when the borrow ends)",
        )
    return record


def _read(path: str) -> Any:
    """The JSON in ``path``: ``OSError`` if unreadable, ``ValueError`` if not JSON."""
    import json

    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _damage(record: Any) -> str | None:
    """What keeps ``record`` from being a borrow record as :func:`save` writes
    one, or None.  Only the shape, so that code reading the fields cannot
    fail; whether it is genuine is ``trust.verify_grant_offline``'s to say."""
    if not isinstance(record, dict):
        return "not a JSON object"
    grant = record.get("grant")
    if not isinstance(grant, dict):
        return "no grant"
    for key in ("lease", "key", "feature", "version"):
        if not isinstance(grant.get(key), str):
            return f"the grant has no {key}"
    try:
        if len(b64u_decode(grant["key"])) != 32:
            raise ValueError
    except ValueError:
        return "the grant's key is not 32 bytes of base64url"
    until = grant.get("borrow_until")
    if not isinstance(until, int) or isinstance(until, bool):
        return "the grant has no borrow_until"
    if not 0 < until <= LAST_TIME_MS:
        return "borrow_until is out of range"
    for key in ("sig", "feature_line", "server_line", "server"):
        if not isinstance(record.get(key), str):
            return f"no {key}"
    if not isinstance(record.get("batch"), list):
        return "no batch"
    try:
        if len(parse_servers(record["server"])) != 1:
            raise AddressError("more than one")
    except AddressError:
        return "server is not one server address"
    return None


def remove(feature: str) -> bool:
    try:
        os.remove(borrow_path(feature))
    except FileNotFoundError:
        return False
    return True


def saved_features() -> list[str]:
    """The features with a borrow file on this machine, in order (a file may
    still be damaged: :func:`load_any` says so)."""
    try:
        names = os.listdir(borrow_dir())
    except OSError:
        return []
    return sorted(name.removesuffix(".json") for name in names if name.endswith(".json"))
