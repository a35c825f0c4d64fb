"""One server per state directory.

Two servers on one state directory would each count seats from the same
license with their own engine and write their leases into the same
database: together they could grant twice the seats, and the next start
would load both servers' leases.  ``serve`` therefore holds an exclusive
``flock(2)`` on ``STATE/serve.lock`` while it runs.  The kernel drops the
lock when the process ends, however it ends (``kill -9`` included), so a
crash never leaves a stale lock behind; the file only says who holds it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock (documented)
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = "serve.lock"
LOCK_MODE = 0o600


class StateInUse(Exception):
    """Another server holds the state directory; the message names it."""


class StateLock:
    """The exclusive hold of one state directory (:func:`hold`)."""

    def __init__(self, handle: IO[str]) -> None:
        self._handle = handle

    def release(self) -> None:
        self._handle.close()  # closing the file drops the flock


def hold(state: Path) -> StateLock:
    """Take ``state`` for this process; :class:`StateInUse` if a server has it."""
    path = state / LOCK_FILE
    # 0600: whoever can open the file can take the lock, and so keep the
    # server from starting.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, LOCK_MODE)
    try:
        os.fchmod(fd, LOCK_MODE)  # also one made by hand or by an older release
    except OSError:
        os.close(fd)
        raise
    handle = os.fdopen(fd, "r+", encoding="utf-8")
    if fcntl is not None:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "its pid is not recorded"
            handle.close()
            raise StateInUse(
                f"{state} is in use by another netmap-lm serve ({holder}); one server "
                "per state directory: stop that one first, or give this one its own --state DIR"
            ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return StateLock(handle)
