"""Text a client controls ends up in the server log, in the administrator's
terminal and in every reply: it must not be able to forge log lines, drive the
terminal, or break the reply encoder.  (Found while writing the fuzzers.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support import Kit, ServerProcess

from ._net import RawSession, source

FORGED = "2020-01-01 00:00:00,000 INFO checkin: lease 0 of netmap by admin@root (10.0.0.1)"


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Kit, ServerProcess]]:
    kit = Kit(tmp_path_factory.mktemp("validation"))
    kit.write_license([kit.feature_line("netmap", seats=20)])
    with ServerProcess(kit, heartbeat_interval=1.0, lease_timeout=60.0) as server:
        yield kit, server


def _checkout(kit: Kit, user: str, host: str = "ws1", feature: str = "netmap") -> dict | None:
    with RawSession(kit.port, source(50)) as session:
        assert session.hello() is not None
        return session.request(
            {"op": "checkout", "feature": feature, "version": "5.0", "user": user, "host": host}
        )


def test_a_user_name_cannot_forge_a_line_in_the_server_log(
    target: tuple[Kit, ServerProcess],
) -> None:
    kit, server = target
    reply = _checkout(kit, "eve\n" + FORGED, "ws1\r\n" + FORGED, feature="nosuch")
    assert reply is not None and reply["reason"] == "PROTOCOL_ERROR", reply
    assert "control characters" in reply["message"]
    assert not [line for line in server.log().splitlines() if line.startswith(FORGED)]


def test_status_table_does_not_pass_terminal_escapes_to_the_administrator(
    target: tuple[Kit, ServerProcess],
) -> None:
    kit, _ = target
    reply = _checkout(kit, "mallory\x1b]0;owned\x07\x1b[2J", "ws\x1b[8m")
    assert reply is not None and reply["reason"] == "PROTOCOL_ERROR", reply  # refused at parse
    held = _checkout(kit, "[bold red]mallory[/]", "ws1")  # rich markup is only text
    assert held is not None and held["ok"], held
    result = kit.cli("status")
    assert result.returncode == 0, result.stderr
    assert "[bold red]mallory[/]" in result.stdout
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout


def test_a_request_id_that_is_not_unicode_gets_a_protocol_error(
    target: tuple[Kit, ServerProcess],
) -> None:
    kit, server = target
    with RawSession(kit.port, source(51)) as session:
        assert session.hello() is not None
        session.sock.sendall(b'{"id":"\\ud800","op":"status"}\n')
        reply = session.read()
        assert reply is not None, "the server dropped the connection without a reply"
        assert reply["reason"] == "PROTOCOL_ERROR"
        assert session.request({"op": "status"}) is not None  # and the session goes on
    assert "Traceback" not in server.log()
