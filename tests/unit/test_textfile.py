"""The text of license, options and key files: UTF-8, a leading byte order
mark dropped, UTF-16 and other non-UTF-8 bytes named with what to do."""

from __future__ import annotations

import codecs

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netmap_lm.licensing.textfile import NotText, decode

TEXT = "# comment\nFEATURE name=x\n"


def test_utf8_with_or_without_a_byte_order_mark_is_the_same_text():
    assert decode(TEXT.encode(), "a license file") == TEXT
    assert decode(codecs.BOM_UTF8 + TEXT.encode(), "a license file") == TEXT


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_or_without_a_byte_order_mark_is_named_with_what_to_do(codec):
    with pytest.raises(NotText) as info:
        decode(TEXT.encode(codec), "a license file")
    assert info.value.at("site.lic").startswith("site.lic: UTF-16 text")
    assert "save it as UTF-8" in info.value.message


def test_other_bytes_name_the_line_they_go_wrong_on():
    with pytest.raises(NotText) as info:
        decode(b"# ok\n# ok too\nFEATURE \xff\n", "an options file")
    assert info.value.lineno == 3
    assert info.value.at("site.opt") == "site.opt:3: not UTF-8 text; is this an options file?"


def test_a_nul_byte_is_not_text():
    with pytest.raises(NotText) as info:
        decode(b"FEATURE x\n\0\n", "a license file")
    assert info.value.lineno == 2


@given(st.text().filter(lambda t: "\0" not in t and not t.startswith("\ufeff")))
def test_any_utf8_text_without_nul_reads_back_as_written(text):
    assert decode(text.encode(), "a file") == text
    assert decode(codecs.BOM_UTF8 + text.encode(), "a file") == text
