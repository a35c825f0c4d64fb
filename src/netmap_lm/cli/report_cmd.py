"""``netmap-lm report``: usage per feature from the report log (SPEC §7)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import click

from netmap_lm.cli.errors import config_error
from netmap_lm.cli.main import JSON_HELP
from netmap_lm.cli.output import console as make_console
from netmap_lm.reports import build_report, log_files
from netmap_lm.reports.plot import PlotError, check_path
from netmap_lm.reports.render import print_text, to_csv, to_json
from netmap_lm.server.reportlog import REPORT_LOG

_PATH = click.Path(path_type=Path)
MAX_WARNINGS_SHOWN = 10  # bad lines listed on stderr; the rest are counted
_FIRST = datetime.min.replace(tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)


def parse_when(text: str, option: str, *, end_of_day: bool = False) -> int:
    """``YYYY-MM-DD`` or an ISO-8601 time (UTC unless it says otherwise) → Unix ms.

    A bare date for ``--until`` means the end of that day, so that
    ``--since 2025-01-01 --until 2025-01-31`` is all of January.  The time
    must be within the years 1 to 9999 in UTC, so that the report can print it.
    """
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            if end_of_day:
                moment += timedelta(days=1)
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
        if not _FIRST <= moment <= _LAST:
            raise OverflowError(text)
        return int(moment.timestamp() * 1000)
    except ValueError:
        raise config_error(
            f"{option} {text!r}: expected YYYY-MM-DD or an ISO time like 2025-03-04T09:00Z"
        ) from None
    except OverflowError:  # also the end of 9999-12-31, one day too far
        raise config_error(
            f"{option} {text!r}: give a time from 0001-01-01 to 9999-12-31 UTC"
        ) from None


@click.command("report")
@click.option(
    "--state", "state", type=_PATH, help=f"State directory of the server (reads {REPORT_LOG}*)."
)
@click.option(
    "--log", "log_path", type=_PATH, help="A report log file (its rotated files are read too)."
)
@click.option("--since", help="Start: YYYY-MM-DD or ISO time, UTC (default: the log's start).")
@click.option("--until", help="End: YYYY-MM-DD (end of that day) or ISO time, UTC.")
@click.option("--feature", "features", multiple=True, help="Only this feature (repeatable).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "csv", "json"]),
    default="text",
    show_default=True,
)
@click.option(
    "--plot", "plot", type=_PATH, help="Also draw seats in use over time: FILE.png or FILE.svg."
)
@click.option(
    "--top",
    type=click.IntRange(0, 1000),
    default=10,
    show_default=True,
    help="Users and hosts listed per feature.",
)
@click.option("--json", "as_json", is_flag=True, help=f"{JSON_HELP} Same as --format json.")
@click.pass_context
def report(
    ctx: click.Context,
    state: Path | None,
    log_path: Path | None,
    since: str | None,
    until: str | None,
    features: tuple[str, ...],
    fmt: str,
    plot: Path | None,
    top: int,
    as_json: bool,
) -> None:
    """Usage per feature: peak and average seats, seat-hours, denials, queue waits, top users."""
    root = ctx.find_root().obj
    if as_json or (root is not None and getattr(root, "as_json", False)):
        fmt = "json"
    if (state is None) == (log_path is None):
        raise config_error("give either --state DIR or --log FILE")
    path = state / REPORT_LOG if state is not None else log_path
    assert path is not None
    since_ms = parse_when(since, "--since") if since else None
    until_ms = parse_when(until, "--until", end_of_day=True) if until else None
    if since_ms is not None and until_ms is not None and until_ms <= since_ms:
        raise config_error(f"--until {until} is not after --since {since}")
    if plot is not None:
        try:
            check_path(plot)
        except PlotError as exc:
            raise config_error(str(exc)) from None
    files = log_files(path)
    if not files:
        raise config_error(f"{path}: no report log there (is this the server's state directory?)")
    try:
        usage = build_report(
            files,
            since_ms=since_ms,
            until_ms=until_ms,
            features=features or None,
            top=top,
            series=plot is not None,
        )
    except OSError as exc:
        raise config_error(f"cannot read the report log: {exc}") from None
    for warning in usage.warnings[:MAX_WARNINGS_SHOWN]:
        click.echo(f"netmap-lm: warning: {warning}", err=True)
    if usage.malformed > MAX_WARNINGS_SHOWN:
        click.echo(
            f"netmap-lm: warning: {usage.malformed - MAX_WARNINGS_SHOWN:,} more bad lines skipped",
            err=True,
        )
    if plot is not None:
        from netmap_lm.reports.plot import write_plot

        try:
            left_out = write_plot(usage, plot)
        except (OSError, PlotError) as exc:
            raise config_error(f"{plot}: cannot write the plot: {exc}") from None
        if left_out:
            click.echo(
                f"netmap-lm: warning: the plot shows the busiest features only; "
                f"left out: {', '.join(left_out)} (use --feature)",
                err=True,
            )
    if fmt == "json":
        data = to_json(usage)
        if plot is not None:
            data["plot"] = str(plot)
        click.echo(json.dumps(data, indent=2))
    elif fmt == "csv":
        click.echo(to_csv(usage), nl=False)
    else:
        print_text(usage, make_console())
        if plot is not None:
            click.echo(f"plot: {plot}")
