"""The client's pinned vendor key (SPEC §9): a vendor.pub file or its
base64url line; every mistake is a CONFIG_ERROR that says what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from netmap_lm.client.sync import VENDOR_KEY_ENV, read_vendor_key
from netmap_lm.encoding import b64u_encode
from netmap_lm.reasons import CONFIG_ERROR, LicenseDenied


def _raw_key() -> bytes:
    public = Ed25519PrivateKey.generate().public_key()
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _denied(source: object) -> LicenseDenied:
    with pytest.raises(LicenseDenied) as info:
        read_vendor_key(source)
    assert info.value.reason == CONFIG_ERROR
    return info.value


def test_a_vendor_pub_path_that_does_not_exist_is_named_as_missing(tmp_path: Path) -> None:
    missing = tmp_path / "keys" / "vendor.pub"
    for source in (str(missing), missing):
        message = _denied(source).message
        assert message.startswith(f"{missing}: no such file;"), message
        assert "vendor_key=" in message and VENDOR_KEY_ENV in message


def test_a_missing_file_named_in_the_environment_is_named_as_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "vendor.pub"
    monkeypatch.setenv(VENDOR_KEY_ENV, str(missing))
    assert _denied(None).message.startswith(f"{missing}: no such file;")


def test_a_relative_file_name_that_does_not_exist_is_named_as_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _denied("vendor.pub").message.startswith("vendor.pub: no such file;")


def test_base64url_key_text_is_still_a_key() -> None:
    raw = _raw_key()
    assert read_vendor_key(b64u_encode(raw)) == raw
    assert read_vendor_key(f"  {b64u_encode(raw)}\n") == raw


def test_key_text_of_the_wrong_length_is_not_called_a_missing_file() -> None:
    message = _denied(b64u_encode(_raw_key()[:31])).message
    assert "not an Ed25519 public key" in message
    assert "no such file" not in message


def test_an_indented_comment_is_not_taken_for_the_key(tmp_path: Path) -> None:
    raw = _raw_key()
    pub = tmp_path / "vendor.pub"
    pub.write_text(f"\n   # vendor key of Example Corp\n\t# issued 2024\n{b64u_encode(raw)}\n")
    assert read_vendor_key(str(pub)) == raw


def test_a_file_of_comments_only_is_not_a_key_and_is_named(tmp_path: Path) -> None:
    pub = tmp_path / "vendor.pub"
    pub.write_text("  # nothing here\n")
    message = _denied(str(pub)).message
    assert message.startswith(f"{pub}: not an Ed25519 public key"), message


def test_a_file_whose_key_line_is_not_base64url_is_not_called_missing(tmp_path: Path) -> None:
    pub = tmp_path / "vendor.pub"
    pub.write_text("not/a.key\n")
    message = _denied(str(pub)).message
    assert message.startswith(f"{pub}: not an Ed25519 public key"), message


def test_standard_base64_key_text_is_not_called_a_missing_file() -> None:
    import base64

    message = _denied(base64.b64encode(b"\xfb" * 32).decode()).message
    assert message.startswith("vendor key: not an Ed25519 public key"), message


def test_a_key_object_is_taken_as_it_is() -> None:
    public = Ed25519PrivateKey.generate().public_key()
    assert read_vendor_key(public) is public
