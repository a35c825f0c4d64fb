"""The server side of one TCP connection, as a sans-IO state machine.

Bytes go in through :meth:`ServerConnection.receive`; out come requests to
act on and ready-made error replies for what cannot be acted on.  The
connection enforces the session rules of docs/protocol.md: ``hello`` first
and once, a supported protocol version, and the line limit.  It keeps the
client's nonce, which every grant of the session must carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netmap_lm import PROTOCOL_VERSION
from netmap_lm.protocol import messages
from netmap_lm.protocol.framing import MAX_LINE_BYTES, LineBuffer, LineTooLong


@dataclass(frozen=True)
class Reply:
    """An answer the connection produced by itself (always an error)."""

    message: dict[str, Any]
    close: bool = False  # the connection cannot go on after this reply


Event = messages.Request | Reply


class ServerConnection:
    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self._buffer = LineBuffer(max_line)
        self.nonce: str | None = None
        self.closed = False

    def receive(self, data: bytes) -> list[Event]:
        if self.closed:
            return []
        try:
            lines = self._buffer.feed(data)
        except LineTooLong:
            self.closed = True
            return [
                Reply(
                    messages.protocol_error(
                        None, f"line longer than {self._buffer._max_line} bytes; closing"
                    ),
                    close=True,
                )
            ]
        events: list[Event] = []
        for line in lines:
            if not line.strip():
                continue
            event = self._event(line)
            events.append(event)
            if isinstance(event, Reply) and event.close:
                self.closed = True  # nothing after this line is read
                break
        return events

    def _event(self, line: bytes) -> Event:
        try:
            request = messages.parse_request(line)
        except messages.ProtocolViolation as exc:
            return Reply(messages.protocol_error(exc.request_id, exc.message))
        if isinstance(request, messages.Hello):
            if self.nonce is not None:
                return Reply(messages.protocol_error(request.id, "hello was already sent"))
            if request.protocol != PROTOCOL_VERSION:
                return Reply(
                    messages.protocol_error(
                        request.id,
                        f"protocol {request.protocol} is not supported; "
                        f"this server speaks {PROTOCOL_VERSION}",
                    ),
                    close=True,
                )
            self.nonce = request.nonce
        elif self.nonce is None:
            return Reply(messages.protocol_error(request.id, "send hello first"))
        return request
