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


def validity(start: str, expires: str, today: str) -> str:
    """When a license line grants: ``permanent``, ``until 2027-12-31``, ``from
    2027-01-01 until …`` before its first day, ``expired 2025-12-31`` after its
    last.  Dates are YYYY-MM-DD or ``permanent``; ``today`` is UTC, as the
    server's dates."""
    if expires != "permanent" and expires < today:
        return f"expired {expires}"
    valid = "permanent" if expires == "permanent" else f"until {expires}"
    if start != "permanent" and start > today:
        valid = f"from {start} {'on' if expires == 'permanent' else valid}"
    return valid


def line_text(line: dict[str, Any], today: str) -> str:
    """A license line in the status table: ``netmap-1 (v5.0, until 2027-12-31)``
    (see :func:`validity`)."""
    when = validity(line.get("start", "permanent"), line["expires"], today)
    return f"{line['id']} (v{line['version']}, {when})"


def duration_text(seconds: float) -> str:
    """``42 s``, ``5 min``, ``3 h 20 min``, ``12 d 4 h``: how long, at a glance."""
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def plural(count: int, word: str) -> str:
    """``1 license``, ``2 licenses`` (FlexLM's wording)."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def counter_lines(counters: dict[str, int]) -> list[str]:
    """The server's counters for a reader: the lease store's in a sentence,
    the others as ``name N``, comma-separated."""
    lines = []
    names = ("store_transactions", "store_changes", "store_fsyncs")
    transactions, changes, fsyncs = (counters.get(k) for k in names)  # none from older servers
    if isinstance(transactions, int) and isinstance(changes, int) and isinstance(fsyncs, int):
        shared = f" ({changes / fsyncs:.1f} changes an fsync)" if fsyncs else ""
        lines.append(
            f"lease store: {plural(changes, 'change')} in {plural(transactions, 'transaction')}, "
            f"{plural(fsyncs, 'fsync')}{shared}"
        )
    others = [f"{name} {n}" for name, n in counters.items() if name not in names]
    if others:
        lines.append("counters: " + ", ".join(others))
    return lines
