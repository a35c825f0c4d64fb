"""Files that went through Windows: a byte order mark before the first line
is no part of it; UTF-16 is refused, naming the file and what to do, and
loses nothing.  Real server processes and the real client library."""

from __future__ import annotations

import codecs
import json

import pytest

from netmap_lm import LicenseClient, LicenseDenied, reasons
from support import Kit, ServerProcess

UTF16 = "save it as UTF-8"


def with_bom(path) -> None:
    path.write_bytes(codecs.BOM_UTF8 + path.read_bytes())


def as_utf16(path) -> bytes:
    original = path.read_bytes()
    path.write_bytes(original.decode().encode("utf-16"))
    return path.read_bytes()


def test_a_license_and_vendor_key_with_a_byte_order_mark_serve_and_verify(kit: Kit) -> None:
    kit.write_license()  # its first line is the SERVER line: the mark sits right before it
    with_bom(kit.license)
    with_bom(kit.vendor_pub)
    verified = kit.cli("license", "verify", str(kit.license), "--vendor-key", str(kit.vendor_pub))
    assert verified.returncode == 0, verified.stderr
    assert ":1: ok: SERVER" in verified.stdout
    options = kit.root / "site.opt"
    options.write_text("EXCLUDE netmap USER mallory\n")
    with_bom(options)
    with ServerProcess(kit, "--options", str(options)):
        client = LicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub))
        lease = client.checkout("netmap", "5.0", heartbeat=False)
        lease.checkin()
        refused = kit.cli("checkout", "netmap", "--json", env=kit.env(NETMAP_LM_USER="mallory"))
        assert json.loads(refused.stdout.splitlines()[-1])["reason"] == "NOT_AUTHORIZED"


def test_a_utf16_license_file_is_refused_naming_it(kit: Kit) -> None:
    kit.write_license()
    as_utf16(kit.license)
    verified = kit.cli("license", "verify", str(kit.license), "--vendor-key", str(kit.vendor_pub))
    assert verified.returncode == 78
    assert f"{kit.license}: UTF-16 text" in verified.stderr and UTF16 in verified.stderr
    serve = kit.cli(*ServerProcess(kit).args, timeout=20)
    assert serve.returncode == 78 and f"{kit.license}: UTF-16 text" in serve.stderr
    assert "Traceback" not in verified.stderr + serve.stderr


def test_a_utf16_options_file_is_refused_naming_it(kit: Kit) -> None:
    kit.write_license()
    options = kit.root / "site.opt"
    options.write_text("EXCLUDE netmap USER mallory\n")
    as_utf16(options)
    serve = kit.cli(*ServerProcess(kit, "--options", str(options)).args, timeout=20)
    assert serve.returncode == 78, serve.stderr
    assert f"{options}: UTF-16 text" in serve.stderr and "Traceback" not in serve.stderr


def test_a_utf16_vendor_key_is_a_config_error_naming_it(kit: Kit) -> None:
    as_utf16(kit.vendor_pub)
    with pytest.raises(LicenseDenied) as info:
        LicenseClient(servers=kit.servers, vendor_key=str(kit.vendor_pub))
    assert info.value.reason == reasons.CONFIG_ERROR
    assert info.value.message.startswith(f"{kit.vendor_pub}: UTF-16 text")
    result = kit.cli("checkout", "netmap")
    assert result.returncode == 78 and f"{kit.vendor_pub}: UTF-16 text" in result.stderr


def test_license_issue_does_not_append_to_a_utf16_file(kit: Kit) -> None:
    kit.write_license()
    before = as_utf16(kit.license)
    result = kit.cli(
        "license", "issue", "--vendor-key", str(kit.vendor_dir / "vendor.key"),
        "--server-key", kit.identity.public_text, "--feature", "extra", "--seats", "1",
        "--expires", "permanent", "--append", "-o", str(kit.license),
    )  # fmt: skip
    assert result.returncode == 78, result.stderr
    assert "UTF-16 text" in result.stderr and "nothing was appended" in result.stderr
    assert kit.license.read_bytes() == before
