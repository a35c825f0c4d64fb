"""Usage reports from the report log (SPEC §7).

``records`` reads log files, ``usage`` turns records into figures (pure),
``render`` writes them as text, CSV or JSON, and ``plot`` draws them.
:func:`build_report` is the one call that reads files and computes.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path

from netmap_lm.reports.records import LogReader, log_files
from netmap_lm.reports.usage import DEFAULT_TOP, RecordError, UsageAccumulator, UsageReport

__all__ = ["UsageReport", "build_report", "log_files"]


def build_report(
    paths: Sequence[Path],
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    features: Collection[str] | None = None,
    top: int = DEFAULT_TOP,
    series: bool = False,
) -> UsageReport:
    """Read ``paths`` (oldest first) and compute the usage report.

    Bad lines are counted and the first few listed in ``warnings``; they never
    stop the report.  Raises :class:`OSError` only if a file cannot be read.
    """
    reader = LogReader(paths, until_ms=until_ms)
    accumulator = UsageAccumulator(since_ms=since_ms, until_ms=until_ms, features=features)
    add = accumulator.add
    for record in reader:
        try:
            add(record)
        except RecordError as exc:
            reader.problem(str(exc))
    report = accumulator.finish(covered=(reader.first_ms, reader.last_ms), top=top, series=series)
    return replace(report, malformed=reader.malformed, warnings=list(reader.warnings))
