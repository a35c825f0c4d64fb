"""docs/security.md names the test that proves each defence: every one exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
DOC = (TESTS.parent / "docs" / "security.md").read_text(encoding="utf-8")
REFERENCES = sorted(set(re.findall(r"`([\w/]+\.py)::(test_\w+)", DOC)))


def test_the_document_names_tests() -> None:
    assert len(REFERENCES) > 40


@pytest.mark.parametrize(("path", "name"), REFERENCES)
def test_every_test_named_in_the_document_exists(path: str, name: str) -> None:
    source = TESTS / path
    assert source.exists(), f"docs/security.md names {path}, which does not exist"
    assert re.search(rf"^def {name}\(", source.read_text(encoding="utf-8"), re.MULTILINE), (
        f"docs/security.md names {path}::{name}, which does not exist"
    )


def test_every_security_and_fuzz_test_is_in_the_document() -> None:
    named = {name for _, name in REFERENCES}
    for folder in ("security", "fuzz"):
        for source in sorted((TESTS / folder).glob("test_*.py")):
            if source.name == Path(__file__).name:
                continue
            for name in re.findall(r"^def (test_\w+)\(", source.read_text(), re.MULTILINE):
                assert name in named, f"{folder}/{source.name}::{name} is not in docs/security.md"
