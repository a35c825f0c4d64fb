"""The lease store's writer process: ``python -m netmap_lm.store.writer DB [BUSY_MS]``.

Started by :meth:`netmap_lm.store.sqlite.LeaseStore.start`.  It reads frames
from standard input (a 4-byte little-endian length, then a JSON array of
encoded changes), applies every frame waiting in the pipe in one transaction,
commits (WAL, ``synchronous=FULL``: fsync'd), and answers one line on standard
output: ``ok N`` or ``err N message`` for the N frames of that transaction.
The first line it writes is ``ready`` (or ``error message`` and it exits 1).
At the end of its input, it exits.  It ignores SIGINT and SIGTERM: a Ctrl-C
or a service manager reaches the server too, and the server ends the writer
by closing the pipe once the last changes are handed over.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from netmap_lm.store.sqlite import BUSY_TIMEOUT_MS, MAX_BATCH, apply_changes, open_database

READ_BYTES = 1 << 20


class Frames:
    """Frames from a file descriptor: blocking for the first, then what is buffered."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = bytearray()
        self.ended = False

    def _fill(self) -> bool:
        data = os.read(self.fd, READ_BYTES)
        if not data:
            self.ended = True
            return False
        self.buffer += data
        return True

    def _complete(self) -> list[Any] | None:
        if len(self.buffer) < 4:
            return None
        size = int.from_bytes(self.buffer[:4], "little")
        if len(self.buffer) < 4 + size:
            return None
        frame = orjson.loads(bytes(self.buffer[4 : 4 + size]))
        del self.buffer[: 4 + size]
        return frame

    def take(self) -> list[list[Any]]:
        """At least one frame (empty only at the end of input), and every frame
        complete in the buffer after it, up to about MAX_BATCH changes."""
        first = self._complete()
        while first is None:
            if not self._fill():
                return []
            first = self._complete()
        frames = [first]
        count = len(first)
        while count < MAX_BATCH:
            frame = self._complete()
            if frame is None:
                break
            frames.append(frame)
            count += len(frame)
        return frames


def commit(db: sqlite3.Connection, frames: Sequence[Sequence[Sequence[Any]]]) -> str | None:
    """Apply and commit the frames in one transaction; the error, if it failed."""
    try:
        db.execute("BEGIN IMMEDIATE")
        for frame in frames:
            apply_changes(db, frame)
        db.execute("COMMIT")
    except (sqlite3.Error, ValueError, TypeError, IndexError) as exc:
        if db.in_transaction:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        return f"write failed ({exc})"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out = sys.stdout.buffer
    if not 1 <= len(args) <= 2:
        out.write(b"error usage: python -m netmap_lm.store.writer DB [BUSY_MS]\n")
        return 2
    busy = int(args[1]) if len(args) == 2 else BUSY_TIMEOUT_MS
    try:
        db = open_database(Path(args[0]), busy)
    except sqlite3.Error as exc:
        out.write(f"error cannot open the lease database ({exc})\n".encode())
        out.flush()
        return 1
    out.write(b"ready\n")
    out.flush()
    frames = Frames(sys.stdin.buffer.fileno())
    try:
        while batch := frames.take():
            why = commit(db, batch)
            answer = f"ok {len(batch)}" if why is None else f"err {len(batch)} {why}"
            answer = answer.replace("\n", " ") + "\n"
            out.write(answer.encode())
            out.flush()
    except BrokenPipeError:
        pass  # the server is gone; what was committed stays
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
