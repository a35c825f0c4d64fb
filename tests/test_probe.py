"""``netmap-lm probe`` tells apart: nothing, something else, netmap_lm (genuine or not)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from netmap_lm.licensing import keys
from support import free_port


def probe(kit, target, *extra):
    result = kit.cli("probe", target, "--json", "--timeout", "2", *extra)
    return result.returncode, json.loads(result.stdout)


def test_closed_port_is_nothing(kit):
    code, report = probe(kit, f"127.0.0.1:{free_port()}")
    assert code == 69 and report["verdict"] == "nothing"


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_http_server_is_something_else(kit):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        code, report = probe(kit, f"127.0.0.1:{httpd.server_address[1]}")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert code == 76 and report["verdict"] == "other"
    assert "HTTP server" in report["message"] and report["reason"] == "PROTOCOL_ERROR"


def test_banner_server_is_something_else(kit):
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
        conn.recv(100)
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        code, report = probe(kit, f"127.0.0.1:{listener.getsockname()[1]}")
    finally:
        listener.close()
    assert code == 76 and "SSH server" in report["message"]


def test_genuine_server_with_the_right_vendor_key(kit, server):
    code, report = probe(kit, f"127.0.0.1:{kit.port}", "--vendor-key", str(kit.vendor_pub))
    assert code == 0 and report["verdict"] == "netmap_lm" and report["verified"] is True
    assert report["server_key_fingerprint"] == kit.identity.fingerprint
    assert report["features"] == [{"name": "netmap", "seats": 3, "in_use": 0}]
    text = kit.cli("probe", f"{kit.port}@127.0.0.1", "--vendor-key", str(kit.vendor_pub))
    assert "genuine netmap_lm server" in text.stdout and kit.identity.fingerprint in text.stdout


def test_genuine_server_with_a_wrong_vendor_key(kit, server, tmp_path):
    keys.generate_pair(tmp_path, "other", "another vendor")
    code, report = probe(kit, f"127.0.0.1:{kit.port}", "--vendor-key", str(tmp_path / "other.pub"))
    assert code == 76 and report["verdict"] == "netmap_lm" and report["verified"] is False
    assert report["reason"] == "SERVER_NOT_TRUSTED"
