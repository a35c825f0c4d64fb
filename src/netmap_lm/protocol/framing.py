"""Cutting a byte stream into protocol lines, with a hard size limit.

A line is at most :data:`MAX_LINE_BYTES` bytes including its ``\\n``.  A
peer that sends more without a newline is not buffered further: the buffer
reports :class:`LineTooLong` once and discards everything after, so a hostile
peer cannot grow server memory (SPEC §5).
"""

from __future__ import annotations

MAX_LINE_BYTES = 65536  # bytes per line, "\n" included (SPEC §5)


class LineTooLong(Exception):
    """The peer sent a line longer than :data:`MAX_LINE_BYTES`."""


class LineBuffer:
    """Bytes in, complete lines (without ``\\n``) out."""

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self._max_line = max_line
        self._pending = bytearray()
        self.broken = False

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the lines they complete.

        Raises :class:`LineTooLong` when a line exceeds the limit; the lines
        completed before it are lost with it, and the buffer stays broken (the
        connection should be answered and closed).
        """
        if self.broken:
            raise LineTooLong
        if not self._pending and data[-1:] == b"\n" and len(data) < self._max_line:
            # The usual case: whole lines, nothing left over from before.
            lines = data.split(b"\n")
            lines.pop()
            return lines
        self._pending += data
        if b"\n" not in data:
            if len(self._pending) >= self._max_line:
                self._fail()
            return []
        *lines, rest = bytes(self._pending).split(b"\n")
        self._pending = bytearray(rest)
        if len(rest) >= self._max_line or any(len(line) >= self._max_line for line in lines):
            self._fail()
        return lines

    def _fail(self) -> None:
        self.broken = True
        self._pending = bytearray()
        raise LineTooLong

    @property
    def pending_bytes(self) -> int:
        return len(self._pending)
