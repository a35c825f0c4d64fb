from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support import Kit, ServerProcess


@pytest.fixture
def kit(tmp_path: Path) -> Kit:
    """Vendor keys, a server identity and (after ``write_license``) a license."""
    return Kit(tmp_path)


@pytest.fixture
def server(kit: Kit) -> Iterator[ServerProcess]:
    """A running server with the default license: netmap 5.0, three seats."""
    if not kit.license.exists():
        kit.write_license()
    proc = ServerProcess(kit).start()
    try:
        yield proc
    finally:
        proc.kill()
