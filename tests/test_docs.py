"""The protocol and license-file documents agree with the code.

A client in another language is written from docs/protocol.md alone, so an
operation, a request field or a reason code the document misses is a bug;
so is a license key docs/license-file.md does not describe, or an example
license that does not parse.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from netmap_lm import reasons
from netmap_lm.licensing import keys, licensefile, trust
from netmap_lm.protocol import framing, messages, udp
from netmap_lm.server import config

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL_DOC = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
LICENSE_DOC = (ROOT / "docs" / "license-file.md").read_text(encoding="utf-8")
VECTORS = ROOT / "tests" / "vectors"
EXAMPLE_MARKER = "<!-- example-license: tests/vectors/license.json example_file -->"


def _sections(text: str, level: int) -> dict[str, str]:
    """Heading text (as written after the hashes) → the text up to the next
    heading of the same or a higher level."""
    sections: dict[str, str] = {}
    pattern = re.compile(rf"^(#{{1,{level}}}) (.+)$", re.MULTILINE)
    matches = list(pattern.finditer(text))
    for i, match in enumerate(matches):
        if len(match.group(1)) != level:
            continue
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        sections[match.group(2).strip()] = text[match.end() : end]
    return sections


def _table_rows(section: str) -> list[list[str]]:
    rows = []
    for line in section.splitlines():
        if line.startswith("|") and not set(line) <= set("|-: "):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


OP_SECTIONS = _sections(PROTOCOL_DOC, 3)


# -- docs/protocol.md ----------------------------------------------------------------------


@pytest.mark.parametrize("op", sorted(messages.REQUEST_TYPES))
def test_protocol_doc_has_every_operation(op: str) -> None:
    assert f"`{op}`" in OP_SECTIONS, f"docs/protocol.md lacks a section '### `{op}`'"


@pytest.mark.parametrize(
    ("op", "field"),
    [
        (op, f.name)
        for op, kind in sorted(messages.REQUEST_TYPES.items())
        for f in dataclasses.fields(kind)
    ],
)
def test_protocol_doc_has_every_request_field(op: str, field: str) -> None:
    section = OP_SECTIONS.get(f"`{op}`", "")
    documented = {row[0] for row in _table_rows(section)}
    assert any(f"`{field}`" in cell for cell in documented), (
        f"docs/protocol.md, section `{op}`: no table row for the request field `{field}`"
    )


def _first_table(section: str) -> list[list[str]]:
    lines = section.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), len(lines))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return _table_rows("\n".join(lines[start:end]))


def test_protocol_doc_documents_no_field_the_code_lacks() -> None:
    for op, kind in messages.REQUEST_TYPES.items():
        known = {f.name for f in dataclasses.fields(kind)}
        for row in _first_table(OP_SECTIONS[f"`{op}`"])[1:]:
            for name in re.findall(r"`([a-z_]+)`", row[0]):
                assert name in known, f"docs/protocol.md `{op}` documents unknown field {name!r}"


@pytest.mark.parametrize("member", sorted(trust.GRANT_FIELDS))
def test_protocol_doc_has_every_grant_member(member: str) -> None:
    rows = _table_rows(OP_SECTIONS["`checkout`"])
    assert any(f"`{member}`" in row[0] for row in rows), f"grant member {member!r} undocumented"


def _reason_rows() -> dict[str, list[str]]:
    section = _sections(PROTOCOL_DOC, 2)["6. Reason codes"]
    return {row[0].strip("`"): row for row in _table_rows(section)[1:]}


@pytest.mark.parametrize(
    "reason",
    sorted(reasons.SERVER_REASONS | {reasons.SERVER_UNREACHABLE, reasons.SERVER_NOT_TRUSTED}),
)
def test_protocol_doc_has_every_reason_code_and_its_exit_code(reason: str) -> None:
    rows = _reason_rows()
    assert reason in rows, f"docs/protocol.md reason table lacks {reason}"
    assert int(rows[reason][-1]) == reasons.exit_code(reason), (
        f"docs/protocol.md gives {reason} exit {rows[reason][-1]}, "
        f"reasons.py says {reasons.exit_code(reason)}"
    )


def test_protocol_doc_lists_no_unknown_reason() -> None:
    known = reasons.SERVER_REASONS | {reasons.SERVER_UNREACHABLE, reasons.SERVER_NOT_TRUSTED}
    assert set(_reason_rows()) <= known


@pytest.mark.parametrize(
    "text",
    [
        f"{framing.MAX_LINE_BYTES} bytes",
        f"**{messages.MAX_TEXT_CHARS}** characters",
        f"**{messages.MAX_ID_CHARS}** characters",
        f"**{udp.DATAGRAM_BYTES} bytes**",
        f"**{config.HANDSHAKE_TIMEOUT:g} s**",
        f"**{config.IDLE_TIMEOUT:g} s**",
        f"default {config.DEFAULT_HEARTBEAT_INTERVAL:g})",
        f"default {config.DEFAULT_LEASE_TIMEOUT:g};",
        f"values above {messages.MAX_WAIT_SECONDS} count as {messages.MAX_WAIT_SECONDS}",
        "`" + trust.HELLO_CONTEXT.decode().replace("\n", "\\n") + "`",
        "`" + trust.GRANT_CONTEXT.decode().replace("\n", "\\n") + "`",
        "`" + trust.BATCH_CONTEXT.decode().replace("\n", "\\n") + "`",
        f"at most {trust.MAX_BATCH_DIGESTS}",
        "`" + trust.TOKEN_CONTEXT.decode().replace("\n", "\\n") + "`",
        "`" + trust.ADMIN_CONTEXT.decode().replace("\n", "\\n") + "`",
        "`" + udp.MAGIC.decode() + "`",
    ],
)
def test_protocol_doc_states_the_limits_and_contexts(text: str) -> None:
    assert text in PROTOCOL_DOC, f"docs/protocol.md should say {text!r}"


def test_protocol_doc_examples_are_the_vectors() -> None:
    vectors = json.loads((VECTORS / "protocol.json").read_text(encoding="utf-8"))

    def line(obj: object) -> str:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)

    for exchange in ("hello", "grant"):
        vec = vectors[exchange]
        assert line(vec["request"]) in PROTOCOL_DOC
        assert line(vec["reply"]) in PROTOCOL_DOC
        assert vec["payload"] in PROTOCOL_DOC
    assert vectors["grant"]["batch_payload"] in PROTOCOL_DOC
    assert vectors["grant"]["digest"] in PROTOCOL_DOC
    assert vectors["lease_token"]["token"] in PROTOCOL_DOC
    assert vectors["admin_proof"]["proof"] in PROTOCOL_DOC
    for name in ("heartbeat_hex", "ack_hex"):
        raw = bytes.fromhex(vectors["udp"][name])
        spaced = " ".join(p.hex() for p in (raw[:4], raw[4:5], raw[5:21], raw[21:29], raw[29:]))
        assert spaced in PROTOCOL_DOC


# -- docs/license-file.md --------------------------------------------------------------------


def _key_rows(keyword: str) -> dict[str, list[str]]:
    section = _sections(LICENSE_DOC, 3)[f"`{keyword}`"]
    rows = _table_rows(section)[1:]
    return {row[0].strip("`").rstrip("="): row for row in rows}


@pytest.mark.parametrize(
    ("keyword", "key", "required"),
    [("SERVER", k, r) for k, r in licensefile.SERVER_KEYS.items()]
    + [("FEATURE", k, r) for k, r in licensefile.FEATURE_KEYS.items()],
)
def test_license_doc_has_every_key(keyword: str, key: str, required: bool) -> None:
    rows = _key_rows(keyword)
    assert key in rows, f"docs/license-file.md: no row for {keyword} `{key}=`"
    written = rows[key][2]
    assert written.startswith("yes") == required, (
        f"docs/license-file.md: {keyword} {key}= required column says {written!r}"
    )


@pytest.mark.parametrize(
    ("keyword", "allowed"),
    [("SERVER", licensefile.SERVER_KEYS), ("FEATURE", licensefile.FEATURE_KEYS)],
)
def test_license_doc_documents_no_unknown_key(keyword: str, allowed: dict[str, bool]) -> None:
    assert set(_key_rows(keyword)) <= set(allowed)


def _example_block() -> str:
    assert EXAMPLE_MARKER in LICENSE_DOC, "docs/license-file.md lost its example marker"
    after = LICENSE_DOC.split(EXAMPLE_MARKER, 1)[1]
    match = re.match(r"\s*```text\n(.*?)```", after, re.DOTALL)
    assert match, "the example marker must be followed by a ```text block"
    return match.group(1)


def test_license_doc_example_parses() -> None:
    parsed = licensefile.parse(_example_block(), "docs/license-file.md", None)
    assert parsed.problems == []
    assert parsed.servers and parsed.features


def test_license_doc_example_is_signed_by_the_documented_vendor_key() -> None:
    vectors = json.loads((VECTORS / "license.json").read_text(encoding="utf-8"))
    assert vectors["vendor_public"] in LICENSE_DOC
    assert _example_block() == vectors["example_file"]
    vendor = keys.public_from_text(vectors["vendor_public"])
    assert licensefile.parse(_example_block(), "docs/license-file.md", vendor).problems == []


def test_license_doc_states_the_signing_context_and_canonical_example() -> None:
    vectors = json.loads((VECTORS / "license.json").read_text(encoding="utf-8"))
    assert "`netmap_lm-license-v1\\n`" in LICENSE_DOC
    feature = vectors["lines"][1]
    assert feature["line"] in LICENSE_DOC
    assert feature["canonical"] in LICENSE_DOC
