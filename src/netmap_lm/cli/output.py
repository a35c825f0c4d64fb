"""Human output: rich tables that do not cut values when piped to a file."""

from __future__ import annotations

import sys
from typing import Any

PIPE_WIDTH = 200  # columns when stdout is not a terminal: keep whole ids and dates


def console() -> Any:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else PIPE_WIDTH)


def plain(*values: Any) -> list[str]:
    """Table cells shown as they are: a user named "[red]x" is not rich markup."""
    from rich.markup import escape

    return [escape(str(value)) for value in values]
