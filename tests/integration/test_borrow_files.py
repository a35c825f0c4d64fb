"""A borrow file that is not a borrow record (damaged, edited by hand, another
program's) never breaks a checkout: it is no borrow, and the server is asked.
Returning it early says which file is wrong (CONFIG_ERROR), and ``--list``
leaves it out.  A borrowed seat serves only versions its FEATURE line licenses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netmap_lm import LicenseClient, LicenseDenied
from netmap_lm.client import borrow
from support import Kit, ServerProcess


@pytest.fixture
def borrowable(kit: Kit, monkeypatch: pytest.MonkeyPatch) -> Kit:
    monkeypatch.setenv("XDG_DATA_HOME", str(kit.root / "xdg"))
    kit.write_license([kit.feature_line(seats=2, borrow=24)])
    return kit


@pytest.fixture
def served(borrowable: Kit) -> Iterator[ServerProcess]:
    with ServerProcess(borrowable) as server:
        yield server


def _client(kit: Kit) -> LicenseClient:
    return LicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub), timeout=3)


def _borrow_file(kit: Kit) -> Path:
    return kit.root / "xdg" / "netmap-lm" / "borrow" / "netmap.json"


def _genuine_record(kit: Kit) -> dict[str, Any]:
    """A real borrow's record, its seat then returned (the server frees it)."""
    client = _client(kit)
    try:
        client.borrow("netmap", "5.0", hours=8)
        record: dict[str, Any] = json.loads(_borrow_file(kit).read_text())
        assert client.return_borrow("netmap")
    finally:
        client.close()
    return record


def _damaged(record: dict[str, Any]) -> list[Any]:
    grant = record["grant"]
    without_server = {k: v for k, v in record.items() if k != "server"}
    return [
        [record],  # valid JSON, not an object
        "netmap",
        None,
        {},
        {"grant": None},
        {"grant": "x", "server": "1493@lm1"},
        {"grant": {}},
        without_server,
        {**record, "server": 1493},
        {**record, "server": "1493@lm1,1493@lm2"},
        {**record, "server": "lm1:²"},
        {**record, "feature_line": None},
        {**record, "grant": {**grant, "key": "not base64!"}},
        {**record, "grant": {**grant, "lease": 7}},
        {**record, "grant": {k: v for k, v in grant.items() if k != "borrow_until"}},
        {**record, "grant": {**grant, "borrow_until": "tomorrow"}},
        {**record, "grant": {**grant, "borrow_until": 10**30}},  # no date
    ]


def test_a_damaged_borrow_file_is_no_borrow_and_the_server_is_asked(
    borrowable: Kit, served: ServerProcess
) -> None:
    kit = borrowable
    path = _borrow_file(kit)
    for damaged in _damaged(_genuine_record(kit)):
        path.write_text(json.dumps(damaged))
        client = _client(kit)
        try:
            lease = client.checkout("netmap", "5.0", heartbeat=False)
            assert not lease.borrowed, damaged
            lease.checkin()
        finally:
            client.close()


def test_returning_a_damaged_borrow_is_a_config_error_naming_the_file(
    borrowable: Kit, served: ServerProcess
) -> None:
    kit = borrowable
    path = _borrow_file(kit)
    for damaged in [*_damaged(_genuine_record(kit)), "{not json"]:
        path.write_text(damaged if isinstance(damaged, str) else json.dumps(damaged))
        client = _client(kit)
        try:
            with pytest.raises(LicenseDenied) as info:
                client.return_borrow("netmap")
        finally:
            client.close()
        assert info.value.reason == "CONFIG_ERROR", damaged
        assert info.value.message.startswith(f"{path}: "), info.value.message
        assert path.exists()  # the user's file: theirs to look at and delete


def test_listing_names_every_borrow_file_and_reading_one_tells_the_damaged(
    borrowable: Kit, served: ServerProcess
) -> None:
    kit = borrowable
    record = _genuine_record(kit)
    path = _borrow_file(kit)
    for damaged in _damaged(record):
        path.write_text(json.dumps(damaged))
        assert borrow.saved_features() == ["netmap"], damaged
        with pytest.raises(LicenseDenied) as info:
            borrow.load_any("netmap")
        assert info.value.reason == "CONFIG_ERROR", damaged
    path.write_text(json.dumps(record))
    assert borrow.saved_features() == ["netmap"]
    assert borrow.load_any("netmap") == record


def test_a_borrowed_seat_serves_only_the_versions_of_its_feature_line(
    borrowable: Kit, served: ServerProcess
) -> None:
    kit = borrowable
    client = _client(kit)
    try:
        borrowed = client.borrow("netmap", "4.0", hours=8)
    finally:
        client.close()
    served.kill()  # offline from here on
    for version in ("0", "4.0", "5.0"):
        lease = _client(kit).checkout("netmap", version)
        assert lease.borrowed and lease.id == borrowed.id
    for version in ("5.1", "6.0"):
        with pytest.raises(LicenseDenied) as info:
            _client(kit).checkout("netmap", version)
        assert info.value.reason == "SERVER_UNREACHABLE"  # not the borrow: a server was asked
