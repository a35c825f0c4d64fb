"""A usage report as a text table, CSV or JSON (docs/report-log.md lists the columns)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from netmap_lm.reports.usage import FeatureUsage, Share, UsageReport
from netmap_lm.server.reportlog import format_time

CSV_COLUMNS = (
    "since",
    "until",
    "feature",
    "licensed_seats",
    "peak_seats",
    "peak_at",
    "average_seats",
    "seat_hours",
    "checkouts",
    "checkins_by_reason",
    "denials",
    "denials_by_reason",
    "queued",
    "queue_wait_avg_s",
    "queue_wait_max_s",
    "top_users",
    "top_hosts",
)


def _iso(when_ms: int | None) -> str | None:
    return None if when_ms is None else format_time(when_ms)


def _short(when_ms: int | None) -> str:
    if when_ms is None:
        return "-"
    return datetime.fromtimestamp(when_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _licensed(usage: FeatureUsage) -> int | str | None:
    return "uncounted" if usage.uncounted else usage.licensed_seats


def _shares(shares: list[Share], key: str) -> list[dict[str, Any]]:
    return [
        {key: s.name, "seat_hours": round(s.seat_hours, 6), "checkouts": s.checkouts}
        for s in shares
    ]


def to_json(report: UsageReport) -> dict[str, Any]:
    """The report as JSON-ready data (times ISO-8601 UTC, durations in seconds)."""
    return {
        "since": _iso(report.start_ms),
        "until": _iso(report.end_ms),
        "records": report.records,
        "malformed": report.malformed,
        "events": report.events,
        "features": [
            {
                "feature": f.feature,
                "licensed_seats": _licensed(f),
                "peak_seats": f.peak_seats,
                "peak_at": _iso(f.peak_at_ms),
                "average_seats": round(f.average_seats, 6),
                "seat_hours": round(f.seat_hours, 6),
                "checkouts": f.checkouts,
                "checkins": f.checkins,
                "denials": f.denials_total,
                "denials_by_reason": f.denials,
                "queued": f.queued,
                "dequeued": f.dequeued,
                "queue_wait_avg_s": f.queue_wait_avg_s,
                "queue_wait_max_s": f.queue_wait_max_s,
                "top_users": _shares(f.top_users, "user"),
                "top_hosts": _shares(f.top_hosts, "host"),
            }
            for f in report.features
        ],
    }


def _pairs(counts: dict[str, int]) -> str:
    return ";".join(f"{key}={value}" for key, value in sorted(counts.items()))


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def to_csv(report: UsageReport) -> str:
    """One row per feature, columns :data:`CSV_COLUMNS`; counts by reason as
    ``REASON=n;REASON=n``, top users and hosts as ``name=seat_hours;...``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for f in report.features:
        licensed = _licensed(f)
        writer.writerow(
            [
                _iso(report.start_ms) or "",
                _iso(report.end_ms) or "",
                f.feature,
                "" if licensed is None else licensed,
                f.peak_seats,
                _iso(f.peak_at_ms) or "",
                _number(f.average_seats),
                _number(f.seat_hours),
                f.checkouts,
                _pairs(f.checkins),
                f.denials_total,
                _pairs(f.denials),
                f.queued,
                _number(f.queue_wait_avg_s),
                _number(f.queue_wait_max_s),
                ";".join(f"{s.name}={s.seat_hours:.3f}" for s in f.top_users),
                ";".join(f"{s.name}={s.seat_hours:.3f}" for s in f.top_hosts),
            ]
        )
    return out.getvalue()


def print_text(report: UsageReport, console: Any) -> None:
    """The report as rich tables on ``console``."""
    from rich.columns import Columns
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    # Names come from clients: print them as text, never as rich markup.

    if report.start_ms is None or report.end_ms is None:
        console.print("The report log has no records in that time.")
        return
    days = (report.end_ms - report.start_ms) / 86_400_000
    console.print(
        f"Usage from {_short(report.start_ms)} to {_short(report.end_ms)} UTC "
        f"({days:,.1f} days, {report.records:,} records)"
    )
    summary = Table(show_edge=False, pad_edge=False)
    for title in (
        "Feature",
        "Licensed",
        "Peak",
        "Peak at",
        "Average",
        "Seat-hours",
        "Checkouts",
        "Denials",
        "Queued",
        "Wait avg/max s",
    ):
        summary.add_column(title, justify="left" if title in ("Feature", "Peak at") else "right")
    for f in report.features:
        licensed = _licensed(f)
        waits = (
            "-"
            if f.queue_wait_avg_s is None or f.queue_wait_max_s is None
            else f"{f.queue_wait_avg_s:,.0f}/{f.queue_wait_max_s:,.0f}"
        )
        summary.add_row(
            Text(f.feature),
            "?" if licensed is None else str(licensed),
            str(f.peak_seats),
            _short(f.peak_at_ms),
            f"{f.average_seats:,.2f}",
            f"{f.seat_hours:,.1f}",
            f"{f.checkouts:,}",
            f"{f.denials_total:,}",
            f"{f.queued:,}",
            waits,
        )
    console.print(summary)
    for f in report.features:
        if not (f.top_users or f.denials):
            continue
        console.print()
        console.print(Text(f.feature, style="bold"))
        if f.denials:
            reasons = ", ".join(f"{key} {value:,}" for key, value in sorted(f.denials.items()))
            console.print(f"  denials: {escape(reasons)}", highlight=False)
        if not f.top_users:
            continue
        tables = []
        for title, shares in (("User", f.top_users), ("Host", f.top_hosts)):
            table = Table(show_edge=False, pad_edge=False)
            table.add_column(title)
            table.add_column("Seat-hours", justify="right")
            table.add_column("Checkouts", justify="right")
            for share in shares:
                table.add_row(Text(share.name), f"{share.seat_hours:,.1f}", f"{share.checkouts:,}")
            tables.append(table)
        console.print(Columns(tables, padding=(0, 4)))
    if report.events:
        events = ", ".join(f"{kind} {count:,}" for kind, count in sorted(report.events.items()))
        console.print()
        console.print(f"Server events: {escape(events)}", highlight=False)
