"""License lines: tokenizing, canonical form, signatures, validation messages."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from netmap_lm.licensing import keys, licensefile, lines

VENDOR = Ed25519PrivateKey.generate()
SERVER_KEY = keys.public_text(Ed25519PrivateKey.generate().public_key())


def feature(**extra) -> str:
    fields = {"name": "netmap", "version": "5.0", "seats": 3, "expires": "permanent", "id": "f1"}
    fields.update(extra)
    return licensefile.sign_line(VENDOR, "FEATURE", fields)


def server() -> str:
    return licensefile.sign_line(VENDOR, "SERVER", {"host": "lm1", "port": 1493, "key": SERVER_KEY})


def parse(text: str) -> licensefile.LicenseFile:
    return licensefile.parse(text, "site.lic", VENDOR.public_key())


def test_signed_file_parses():
    result = parse(f"# comment\n\n{server()}\n{feature()}\n")
    assert not result.problems
    assert result.servers[0].port == 1493 and result.servers[0].lineno == 3
    assert result.features[0].seats == 3 and result.features[0].lineno == 4


def test_edited_seat_count_is_invalid_and_named_by_line_other_lines_still_serve():
    tampered = feature(id="f1").replace("seats=3", "seats=30")
    result = parse(f"{server()}\n{tampered}\n{feature(id='f2')}\n")
    assert [f.id for f in result.features] == ["f2"]
    (problem,) = result.problems
    assert str(problem).startswith("site.lic:2: LICENSE_INVALID:")
    assert "signature" in problem.message and problem.feature == "netmap"


def test_order_of_keys_and_spacing_do_not_matter_but_values_do():
    text = feature(notice="hello world")
    _, fields = lines.tokenize(text)
    shuffled = "FEATURE   " + "  ".join(
        f"{k}={lines.quote(v)}" for k, v in reversed(list(fields.items()))
    )
    assert not parse(shuffled).problems


def test_quoted_values_round_trip():
    text = feature(notice='He said "hi" \\ bye # not a comment', customer="ACME Corp")
    result = parse(text)
    assert not result.problems
    assert result.features[0].notice == 'He said "hi" \\ bye # not a comment'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("INCREMENT name=x", "unknown keyword 'INCREMENT'"),
        ("feature name=x", "KEYWORD in capitals"),
        ("FEATURE name=x name=y", "given twice"),
        ("FEATURE name=x colour=red sig=x", "unknown key 'colour'"),
        ("FEATURE name=x", "lacks version=, seats=, expires=, id=, sig="),
        ("FEATURE name=x junk", "expected key=value"),
    ],
)
def test_bad_lines_say_what_is_wrong(text, expected):
    (problem,) = parse(text).problems
    assert expected in problem.message


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"seats": "many"}, "seats='many' must be a whole number"),
        ({"seats": "\u00b2"}, "seats='\u00b2' must be a whole number"),
        ({"seats": "1" * 5000}, "must be a whole number from 1 to 10000000"),
        ({"version": "five"}, "dotted numbers"),
        ({"expires": "next year"}, "YYYY-MM-DD"),
        ({"type": "site"}, "type='site'"),
        ({"dup": "always"}, "dup='always'"),
        ({"start": "2027-01-01", "expires": "2026-01-01"}, "before start"),
        ({"type": "nodelocked"}, "needs hostid="),
    ],
)
def test_bad_values_are_refused_even_when_signed(extra, expected):
    fields = {"name": "netmap", "version": "5.0", "seats": 3, "expires": "permanent", "id": "f"}
    fields.update(extra)
    values = {k: str(v) for k, v in fields.items()}
    sig = VENDOR.sign(lines.SIGNING_CONTEXT + lines.canonical("FEATURE", values).encode())
    from netmap_lm.encoding import b64u_encode

    text = lines.format_line("FEATURE", values, b64u_encode(sig))
    (problem,) = parse(text).problems
    assert expected in problem.message


def test_duplicate_ids_are_refused():
    result = parse(f"{feature(id='x')}\n{feature(id='x', seats=5)}\n")
    assert len(result.features) == 1
    assert "id=x already used on line 1" in result.problems[0].message


def test_another_vendor_key_does_not_verify():
    other = Ed25519PrivateKey.generate()
    result = licensefile.parse(feature(), "a.lic", other.public_key())
    assert not result.features and "signature" in result.problems[0].message


def test_sign_line_refuses_to_write_a_bad_line():
    with pytest.raises(ValueError):
        licensefile.sign_line(VENDOR, "FEATURE", {"name": "x"})


LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


@given(st.text(max_size=40))
def test_any_value_survives_quoting(value):
    if any(c in value for c in LINE_BREAKS):
        return  # one record per line: line breaks cannot be values
    text = lines.format_line("FEATURE", {"notice": value}, "s")
    keyword, fields = lines.tokenize(text)
    assert keyword == "FEATURE" and fields["notice"] == value


def test_unreadable_file_is_one_clear_error(tmp_path):
    with pytest.raises(licensefile.LicenseFileError, match="cannot read license file"):
        licensefile.read(tmp_path / "missing.lic", VENDOR.public_key())
    binary = tmp_path / "bin.lic"
    binary.write_bytes(
        b"\x80\x81garbage"
    )  # (\xff\xfe first would read as UTF-16: tests/unit/test_textfile.py)
    with pytest.raises(licensefile.LicenseFileError, match="not UTF-8"):
        licensefile.read(binary, VENDOR.public_key())


def test_a_file_read_with_another_vendors_key_is_told_from_an_edited_one():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    server = {"host": "lm1", "port": 1493, "key": "A" * 43}
    feature = {"name": "x", "version": "1.0", "seats": 1, "type": "floating"}
    feature |= {"expires": "permanent", "id": "x-1"}
    text = (
        licensefile.sign_line(VENDOR, "SERVER", server)
        + "\n"
        + licensefile.sign_line(VENDOR, "FEATURE", feature)
        + "\n"
    )
    assert not licensefile.parse(text, "a.lic", VENDOR.public_key()).another_vendors
    other = Ed25519PrivateKey.generate().public_key()
    assert licensefile.parse(text, "a.lic", other).another_vendors
    # A line that is not even well formed is its own problem, whatever the key.
    assert not licensefile.parse(text + "FEATURE name=\n", "a.lic", other).another_vendors
    assert not licensefile.parse("# only comments\n", "a.lic", other).another_vendors
