"""Seats in use over time, against the licensed count, with denials marked.

One panel per feature, sharing the time axis.  A year of a busy server has
hundreds of thousands of steps: drawn one by one they would make a slow PNG
and an SVG of many megabytes, so above :data:`MAX_STEPS` the time axis is
cut into :data:`BINS` columns and each column shows the range of seats in
use within it (the top of the band is the peak, so no peak is lost).

matplotlib is imported only here and only when a plot is asked for; the
``Figure`` API is used without pyplot, so no global backend is chosen (PNG
is drawn by Agg, SVG by matplotlib's SVG backend).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from netmap_lm.reports.usage import FeatureUsage, UsageReport

SUFFIXES = (".png", ".svg")
MAX_STEPS = 4000  # steps drawn as they are; above this, binned
BINS = 800  # columns of a binned plot: about one per pixel of the plot area at 100 dpi
MAX_DENIAL_MARKS = 800  # markers; above this one per column, or SVGs get huge
MAX_PANELS = 12  # features drawn; the busiest by seat-hours
PANEL_INCHES = 2.2


class PlotError(ValueError):
    """The plot cannot be drawn as asked (for example an unknown file type)."""


def check_path(path: Path) -> None:
    """Raise :class:`PlotError` unless ``path`` names a PNG or SVG file."""
    if path.suffix.lower() not in SUFFIXES:
        given = path.suffix or "no suffix"
        raise PlotError(f"{path}: a plot is written as .png or .svg, not {given}")


def write_plot(report: UsageReport, path: Path) -> list[str]:
    """Draw ``report`` (computed with ``series=True``) into ``path``.

    Returns the names of features left out (beyond :data:`MAX_PANELS`).
    """
    check_path(path)
    import matplotlib.dates as mdates
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    features = sorted(report.features, key=lambda f: (-f.seat_hours, f.feature))
    left_out = [f.feature for f in features[MAX_PANELS:]]
    features = sorted(features[:MAX_PANELS], key=lambda f: f.feature)
    start = report.start_ms if report.start_ms is not None else 0
    end = report.end_ms if report.end_ms is not None else start
    end = max(end, start + 1)

    panels = max(1, len(features))
    fig = Figure(figsize=(11, 1.2 + PANEL_INCHES * panels), layout="constrained")
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    fig.suptitle(f"Seats in use, {_day(start)} to {_day(end)} (UTC)")
    if not features:
        axes[0].text(0.5, 0.5, "no features in the report", ha="center", va="center")
    for ax, usage in zip(axes, features, strict=False):
        _panel(ax, usage, start, end, np)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    locator = mdates.AutoDateLocator()
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    axes[-1].set_xlim(_dates(np, [start])[0], _dates(np, [end])[0])
    metadata: dict[str, Any] = {"Date": None} if path.suffix.lower() == ".svg" else {}
    fig.savefig(path, format=path.suffix.lower()[1:], metadata=metadata)
    return left_out


def _panel(ax: Any, usage: FeatureUsage, start: int, end: int, np: Any) -> None:
    times = np.asarray(usage.step_times, dtype=np.int64)
    levels = np.asarray(usage.step_levels, dtype=np.int64)
    top = usage.peak_seats
    if len(times) <= MAX_STEPS:
        x = np.concatenate(([start], times, [end]))
        y = np.concatenate(([0], levels, [levels[-1] if len(levels) else 0]))
        ax.step(_dates(np, x), y, where="post", label="seats in use", color="tab:blue")
    else:
        edges = np.linspace(start, end, BINS + 1).astype(np.int64)
        low, high = _bands(np, times, levels, edges)
        x = _dates(np, edges)
        low = np.append(low, low[-1])
        high = np.append(high, high[-1])
        ax.fill_between(x, low, high, step="post", alpha=0.35, color="tab:blue", linewidth=0)
        ax.step(
            x,
            high,
            where="post",
            label="seats in use (peak per column)",
            color="tab:blue",
            linewidth=0.7,
        )
    licensed = [(max(when, start), seats) for when, seats in usage.licensed_changes if when < end]
    if any(seats is not None for _, seats in licensed):
        lx = [when for when, _ in licensed] + [end]
        ly = [np.nan if seats is None else seats for _, seats in licensed]
        ly.append(ly[-1])
        ax.step(
            _dates(np, lx),
            ly,
            where="post",
            color="tab:green",
            linestyle="--",
            label=f"licensed ({usage.licensed_seats})" if usage.licensed_seats else "licensed",
        )
        top = max(top, max((s for _, s in licensed if s is not None), default=0))
    denials = np.asarray([d for d in usage.denial_times if start <= d <= end], dtype=np.int64)
    if len(denials):
        if len(denials) > MAX_DENIAL_MARKS:
            width = max(1, (end - start) // BINS)
            _, first = np.unique((denials - start) // width, return_index=True)
            denials = denials[first]
        index = np.searchsorted(times, denials, side="right") - 1
        y_at = np.where(index >= 0, levels[np.maximum(index, 0)] if len(levels) else 0, 0)
        ax.plot(
            _dates(np, denials),
            y_at,
            "x",
            color="tab:red",
            markersize=5,
            label=f"denials ({usage.denials_total:,})",
        )
    title = usage.feature + (" (uncounted)" if usage.uncounted else "")
    ax.set_title(title, loc="left", fontsize="medium")
    ax.set_ylabel("seats")
    ax.set_ylim(0, max(1, top) * 1.15 + 0.5)


def _bands(np: Any, times: Any, levels: Any, edges: Any) -> tuple[Any, Any]:
    """Lowest and highest level of the step function in each [edge, next edge)."""
    columns = len(edges) - 1
    before = np.searchsorted(times, edges[:-1], side="right") - 1
    carried = np.where(before >= 0, levels[np.maximum(before, 0)], 0)
    low = carried.copy()
    high = carried.copy()
    column = np.clip(np.searchsorted(edges, times, side="right") - 1, 0, columns - 1)
    np.maximum.at(high, column, levels)
    np.minimum.at(low, column, levels)
    return low, high


def _dates(np: Any, millis: Any) -> Any:
    return np.asarray(millis, dtype=np.int64).astype("datetime64[ms]")


def _day(when_ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(when_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")
