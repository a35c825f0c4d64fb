"""The baseline: a bare asyncio JSON-lines server that does no work.

Usage: ``python bench/echo_server.py --port P [--bind ADDR] [--replies FILE]``.

Per request it does what any JSON-lines server must do and nothing else:
split lines, ``json.loads`` each, build a reply that echoes the request's
``id``, ``json.dumps`` it and write it.  ``--replies`` names a JSON object
``{op: reply}`` of canned replies (``bench/run.py`` captures real replies of
the netmap_lm server, so both send the same bytes and the load generator
does the same work against both); without it the reply is ``{"id", "ok"}``.
Runs on uvloop when available, as ``netmap-lm serve`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any


class EchoProtocol(asyncio.Protocol):
    def __init__(self, replies: dict[str, dict[str, Any]]) -> None:
        self.replies = replies
        self.transport: asyncio.Transport | None = None
        self.pending = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        *lines, self.pending = (self.pending + data).split(b"\n")
        out = []
        for line in lines:
            if not line.strip():
                continue
            request = json.loads(line)
            reply = dict(self.replies.get(request.get("op"), {"ok": True}))
            reply["id"] = request.get("id")
            out.append(json.dumps(reply, separators=(",", ":"), ensure_ascii=False).encode())
            out.append(b"\n")
        if out and self.transport is not None:
            self.transport.write(b"".join(out))


async def serve(bind: str, port: int, replies: dict[str, dict[str, Any]]) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: EchoProtocol(replies), bind, port)
    print(f"echo server on {bind}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--replies", type=Path, help="JSON object of canned replies per op")
    args = parser.parse_args()
    replies = json.loads(args.replies.read_text()) if args.replies else {}
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.bind, args.port, replies))
    else:
        uvloop.run(serve(args.bind, args.port, replies))


if __name__ == "__main__":
    main()
