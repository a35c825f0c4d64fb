"""Borrowed seats (SPEC §4 ``borrow=``): a signed grant kept on disk for offline use.

A borrow is a checkout with ``borrow=HOURS``: the server counts the seat
until the borrow ends (across restarts) and signs a grant whose
``borrow_until`` says when.  The client keeps that grant, with the SERVER
and FEATURE lines it rests on, in ``$XDG_DATA_HOME/netmap-lm/borrow/``; until
it ends, ``LicenseClient.checkout`` verifies it offline against the pinned
vendor key and this machine's host id and needs no server at all.  An early
return checks the lease in and deletes the file.

``json`` is imported only when a borrow file is read or written: a checkout
without one should not pay for it at every application start.
"""

from __future__ import annotations

import os
import time
from typing import Any

from netmap_lm.protocol import trust

BORROW_MODE = 0o600  # the file holds the lease key


def data_dir() -> str:
    """This user's netmap-lm data: ``$XDG_DATA_HOME/netmap-lm`` (demo keys, borrows)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return os.path.join(base, "netmap-lm")


def borrow_dir() -> str:
    return os.path.join(data_dir(), "borrow")


def borrow_path(feature: str) -> str:
    return os.path.join(borrow_dir(), f"{feature}.json")


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
    """The saved borrow of ``feature`` if it verifies offline now; else None."""
    import json

    path = borrow_path(feature)
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    try:
        grant = trust.verify_grant_offline(record, vendor_key, int(time.time() * 1000))
    except trust.Untrusted:
        return None
    mine = set(host_ids.split(","))
    if not mine & set(str(grant["hostid"]).split(",")):
        return None  # copied from another machine
    from netmap_lm.licensing import lines

    _, fields = lines.tokenize(record["feature_line"])
    if trust._version_key(version) > trust._version_key(fields.get("version", "")):
        return None
    return record


def load_any(feature: str) -> dict[str, Any] | None:
    """The saved borrow of ``feature``, valid or not (for an early return)."""
    import json

    try:
        with open(borrow_path(feature), encoding="utf-8") as handle:
            record: dict[str, Any] = json.load(handle)
    except (OSError, ValueError):
        return None
    return record


def remove(feature: str) -> bool:
    try:
        os.remove(borrow_path(feature))
    except FileNotFoundError:
        return False
    return True


def list_all() -> list[dict[str, Any]]:
    try:
        names = sorted(os.listdir(borrow_dir()))
    except OSError:
        return []
    import json

    found = []
    for name in names:
        if name.endswith(".json"):
            try:
                with open(os.path.join(borrow_dir(), name), encoding="utf-8") as handle:
                    found.append(json.load(handle))
            except (OSError, ValueError):
                continue
    return found
