"""What is listening on a port: nothing, something else, or netmap_lm (SPEC §8).

``probe`` answers the question that brought people to port 1493 in the
first place.  It connects, listens briefly for a banner (SSH, SMTP and FTP
servers speak first), sends a ``hello`` and reads what comes back.  A
netmap_lm server is then checked against the vendor key like any client
would, and its features are listed.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from netmap_lm import PROTOCOL_VERSION, __version__, reasons
from netmap_lm.licensing import trust

BANNER_WAIT = 0.5  # seconds to wait for a server that speaks first
MAX_READ = 65536  # bytes read from an unknown server


def probe(host: str, port: int, vendor_key: Any | None, timeout: float = 3.0) -> dict[str, Any]:
    """A report of what listens at ``host:port``; ``verdict`` is one of
    ``nothing``, ``other``, ``netmap_lm``; ``reason`` the matching reason code."""
    report: dict[str, Any] = {"host": host, "port": port}
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        return {
            **report,
            "verdict": "nothing",
            "reason": reasons.SERVER_UNREACHABLE,
            "message": f"nothing is listening ({exc.strerror or exc})",
        }
    try:
        return {**report, **_identify(sock, vendor_key, timeout)}
    finally:
        sock.close()


def _identify(sock: socket.socket, vendor_key: Any | None, timeout: float) -> dict[str, Any]:
    sock.settimeout(BANNER_WAIT)
    try:
        banner = sock.recv(MAX_READ)
    except TimeoutError:
        banner = b""
    except OSError as exc:
        return _other(f"the connection failed at once ({exc})", b"")
    if banner:
        return _other("it speaks first, unlike netmap_lm", banner)
    nonce = os.urandom(16).hex()
    hello = {
        "id": 1,
        "op": "hello",
        "protocol": PROTOCOL_VERSION,
        "nonce": nonce,
        "client": f"netmap-lm-probe/{__version__}",
    }
    sock.settimeout(timeout)
    data = b""
    try:
        sock.sendall(json.dumps(hello).encode() + b"\n")
        while b"\n" not in data and len(data) < MAX_READ:
            chunk = sock.recv(MAX_READ)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    line = data.split(b"\n", 1)[0]
    try:
        reply = json.loads(line)
    except ValueError:
        return _other("it does not answer hello with JSON", data)
    if not isinstance(reply, dict) or reply.get("server") != "netmap_lm" or not reply.get("ok"):
        return _other("it answers JSON, but not a netmap_lm hello", data)
    found: dict[str, Any] = {
        "verdict": "netmap_lm",
        "version": reply.get("version"),
        "protocol": reply.get("protocol"),
        "server_key": reply.get("server_key"),
        "server_key_fingerprint": _fingerprint(reply.get("server_key")),
        "server_line": reply.get("server_line"),
        "time": reply.get("time"),
    }
    if vendor_key is None:
        found.update(
            verified=None,
            reason=None,
            message="netmap_lm server; chain not checked (no vendor key)",
        )
    else:
        try:
            trust.verify_hello(reply, nonce, vendor_key, PROTOCOL_VERSION)
        except trust.Untrusted as exc:
            found.update(
                verified=False,
                reason=reasons.SERVER_NOT_TRUSTED,
                message=f"netmap_lm server, but NOT trusted: {exc}",
            )
        else:
            found.update(
                verified=True, reason=None, message="genuine netmap_lm server: its chain verifies"
            )
    found["features"] = _features(sock)
    return found


def _features(sock: socket.socket) -> list[dict[str, Any]]:
    try:
        sock.sendall(b'{"id":2,"op":"status"}\n')
        data = b""
        while b"\n" not in data and len(data) < 1 << 22:
            chunk = sock.recv(MAX_READ)
            if not chunk:
                break
            data += chunk
        status = json.loads(data.split(b"\n", 1)[0])
        return [
            {"name": f["name"], "seats": f["seats"], "in_use": f["in_use"]}
            for f in status.get("features", [])
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def _other(why: str, data: bytes) -> dict[str, Any]:
    looks = _looks_like(data)
    return {
        "verdict": "other",
        "reason": reasons.PROTOCOL_ERROR,
        "message": f"not netmap_lm: {why}" + (f"; looks like {looks}" if looks else ""),
        "first_bytes": data[:64].decode("latin-1"),
    }


def _looks_like(data: bytes) -> str | None:
    head = data[:64]
    if head.startswith(b"HTTP/"):
        server = next(
            (
                ln.split(b":", 1)[1].strip().decode("latin-1", "replace")
                for ln in data.split(b"\r\n")
                if ln.lower().startswith(b"server:")
            ),
            "",
        )
        return "an HTTP server" + (f" ({server})" if server else "")
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html")):
        return "an HTTP server (it answered with an HTML page)"
    if head.startswith(b"SSH-"):
        return "an SSH server (" + head.split(b"\r\n")[0].decode("latin-1") + ")"
    if head[:4] in (b"220 ", b"220-"):
        return "an SMTP or FTP server"
    if head[:1] == b"\x15" or head[:1] == b"\x16":
        return "a TLS server"
    return None


def _fingerprint(key_text: Any) -> str | None:
    from netmap_lm.licensing.keys import fingerprint, public_from_text

    try:
        return fingerprint(public_from_text(str(key_text)))
    except ValueError:
        return None
