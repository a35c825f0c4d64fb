"""Who may check a lease in, or heartbeat it over TCP, without its token.

Only the connection that carried the grant: its peer is the holder.  Any
other connection must prove the lease key with the token, and a token that
is sent must be right, on the granting connection too (docs/protocol.md §5).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netmap_lm.encoding import b64u_decode
from netmap_lm.licensing import trust
from netmap_lm.server.tcp import GRANTS_REMEMBERED
from support import Kit, ServerProcess

from ._net import RawSession, source


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Kit, ServerProcess]]:
    kit = Kit(tmp_path_factory.mktemp("tokens"))
    kit.write_license([kit.feature_line("netmap", seats=5)])
    with ServerProcess(kit, heartbeat_interval=1.0, lease_timeout=60.0) as server:
        yield kit, server


def _open(kit: Kit, n: int) -> RawSession:
    session = RawSession(kit.port, source(n))
    hello = session.hello()
    assert hello is not None and hello["ok"], hello
    return session


def _checkout(session: RawSession) -> dict[str, Any]:
    reply = session.request(
        {"op": "checkout", "feature": "netmap", "version": "5.0", "user": "u", "host": "h"}
    )
    assert reply is not None and reply["ok"], reply
    grant: dict[str, Any] = reply["grant"]
    return grant


def _token(grant: dict[str, Any]) -> str:
    return trust.lease_token(b64u_decode(grant["key"]), grant["lease"])


def _in_use(session: RawSession) -> int:
    reply = session.request({"op": "status", "feature": "netmap"})
    assert reply is not None and reply["ok"], reply
    count: int = reply["features"][0]["in_use"]
    return count


def test_the_granting_connection_checks_in_and_heartbeats_without_a_token(
    target: tuple[Kit, ServerProcess],
) -> None:
    kit, _ = target
    with _open(kit, 60) as session:
        grant = _checkout(session)
        beat = session.request({"op": "heartbeat", "lease": grant["lease"], "seq": 5})
        assert beat is not None and beat["ok"], beat
        assert _in_use(session) == 1
        done = session.request({"op": "checkin", "lease": grant["lease"]})
        assert done is not None and done["ok"] and done["lease"] == grant["lease"], done
        assert _in_use(session) == 0
        for _ in range(2):  # a lease gone is unknown, as with a token
            again = session.request({"op": "checkin", "lease": grant["lease"], "token": ""})
            assert again is not None and again["reason"] == "LEASE_UNKNOWN", again


def test_another_connection_needs_the_token_whether_or_not_the_lease_exists(
    target: tuple[Kit, ServerProcess],
) -> None:
    kit, _ = target
    with _open(kit, 61) as holder, _open(kit, 62) as other:
        grant = _checkout(holder)
        for op in ("checkin", "heartbeat"):
            for lease in (grant["lease"], "0" * 32):  # held, and not held: the same answer
                reply = other.request({"op": op, "lease": lease})
                assert reply is not None and reply["reason"] == "PROTOCOL_ERROR", reply
                assert "token" in reply["message"], reply
        assert _in_use(other) == 1  # still held
        done = other.request({"op": "checkin", "lease": grant["lease"], "token": _token(grant)})
        assert done is not None and done["ok"], done
        assert _in_use(holder) == 0


def test_a_wrong_token_is_refused_on_the_granting_connection_too(
    target: tuple[Kit, ServerProcess],
) -> None:
    kit, _ = target
    with _open(kit, 63) as session:
        grant = _checkout(session)
        wrong = "A" * 22
        for op in ("heartbeat", "checkin"):
            reply = session.request({"op": op, "lease": grant["lease"], "token": wrong})
            assert reply is not None and reply["reason"] == "LEASE_UNKNOWN", reply
        assert _in_use(session) == 1
        done = session.request({"op": "checkin", "lease": grant["lease"], "token": _token(grant)})
        assert done is not None and done["ok"], done


def test_a_new_connection_of_the_same_host_needs_the_token(
    target: tuple[Kit, ServerProcess],
) -> None:
    kit, _ = target
    with _open(kit, 64) as first:
        grant = _checkout(first)
    with _open(kit, 64) as second:  # same address, same user: another connection
        reply = second.request({"op": "checkin", "lease": grant["lease"]})
        assert reply is not None and reply["reason"] == "PROTOCOL_ERROR", reply
        done = second.request({"op": "checkin", "lease": grant["lease"], "token": _token(grant)})
        assert done is not None and done["ok"], done


def test_past_the_bound_a_connection_forgets_only_the_leases_gone(tmp_path: Path) -> None:
    """A connection whose leases are checked in elsewhere keeps their ids until
    it holds GRANTS_REMEMBERED of them; then it drops those gone and keeps the
    ones still held."""
    kit = Kit(tmp_path)
    kit.write_license([kit.feature_line("netmap", seats=5)])
    with (
        ServerProcess(kit, "--rate-limit", "0", lease_timeout=60.0),
        _open(kit, 66) as holder,
        _open(kit, 67) as other,
    ):
        kept = _checkout(holder)
        gone = []
        for _ in range(GRANTS_REMEMBERED + 50):
            grant = _checkout(holder)
            done = other.request({"op": "checkin", "lease": grant["lease"], "token": _token(grant)})
            assert done is not None and done["ok"], done
            gone.append(grant["lease"])
        forgotten = holder.request({"op": "checkin", "lease": gone[0]})
        assert forgotten is not None and forgotten["reason"] == "PROTOCOL_ERROR", forgotten
        remembered = holder.request({"op": "checkin", "lease": gone[-1]})
        assert remembered is not None and remembered["reason"] == "LEASE_UNKNOWN", remembered
        beat = holder.request({"op": "heartbeat", "lease": kept["lease"]})
        assert beat is not None and beat["ok"], beat
        done = holder.request({"op": "checkin", "lease": kept["lease"]})
        assert done is not None and done["ok"], done
