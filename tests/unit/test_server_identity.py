"""The server identity read from a real state directory (``server init``'s files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from netmap_lm.server import identity
from netmap_lm.server.identity import init_state, load_identity


def test_a_server_start_does_not_read_the_host_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    created, _ = init_state(tmp_path / "state")
    reads: list[str] = []

    def primary_host_id() -> str:
        reads.append("host id")
        return "machine:0123456789abcdef"

    monkeypatch.setattr(identity, "primary_host_id", primary_host_id)
    loaded = load_identity(tmp_path / "state")  # what LicenseServer does at start
    assert reads == []
    assert (loaded.public_text, loaded.fingerprint) == (created.public_text, created.fingerprint)
    # ``server init`` prints it: read once, when asked.
    assert loaded.host_id == loaded.host_id == "machine:0123456789abcdef"
    assert reads == ["host id"]
