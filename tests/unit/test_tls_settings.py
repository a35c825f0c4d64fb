"""A client's TLS settings are checked when made: a CA file that cannot be
used is a CONFIG_ERROR naming it, not a SERVER_UNREACHABLE at connect time."""

from __future__ import annotations

from pathlib import Path

import pytest

from netmap_lm import LicenseDenied, TlsSettings


def _denied(ca_file: Path) -> str:
    with pytest.raises(LicenseDenied) as info:
        TlsSettings(ca_file=str(ca_file))
    assert info.value.reason == "CONFIG_ERROR"
    message = info.value.message
    assert message.startswith(f"{ca_file}: cannot read the CA file ("), message
    return message


def test_a_missing_ca_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    assert "No such file" in _denied(tmp_path / "ca.pem")


def test_a_ca_file_that_holds_no_certificate_is_a_config_error_naming_it(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    _denied(ca)


def test_a_directory_given_as_the_ca_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    _denied(tmp_path)


def test_neither_ca_file_nor_pin_is_still_refused() -> None:
    with pytest.raises(ValueError, match="CA file or a certificate pin"):
        TlsSettings()
