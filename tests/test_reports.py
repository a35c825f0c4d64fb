"""Usage reports: pure figures from hand-made records, the log reader, a
simulated year of a thousand users checked against the simulation's own
bookkeeping, and the ``netmap-lm report`` command with its plots."""

from __future__ import annotations

import gzip
import heapq
import json
import random
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netmap_lm.cli.main import main
from netmap_lm.reports import build_report, log_files
from netmap_lm.reports.records import LogReader, Record, parse_line
from netmap_lm.reports.usage import HOUR_MS, UsageAccumulator, UsageReport

T0 = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1000)
DAY = 86_400_000
MIN = 60_000


def summarise(
    records: list[Record],
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    features: list[str] | None = None,
    series: bool = False,
) -> UsageReport:
    """The report of well-formed records: build_report's fold, without the files."""
    accumulator = UsageAccumulator(since_ms=since_ms, until_ms=until_ms, features=features)
    for record in records:
        accumulator.add(record)
    return accumulator.finish(series=series)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def rec(minute: float, kind: str, **fields: object) -> Record:
    return Record(T0 + int(minute * MIN), kind, {k: str(v) for k, v in fields.items()})


def out(
    minute: float,
    lease: str,
    user: str = "ann",
    host: str = "ws1",
    feature: str = "netmap",
    seats: object = 3,
) -> Record:
    return rec(
        minute,
        "CHECKOUT",
        lease=lease,
        feature=feature,
        user=user,
        host=host,
        seats=seats,
        in_use=1,
    )


def back(
    minute: float,
    lease: str,
    held: float | None = None,
    reason: str = "normal",
    feature: str = "netmap",
    user: str = "ann",
) -> Record:
    fields: dict[str, object] = {
        "lease": lease,
        "feature": feature,
        "user": user,
        "host": "ws1",
        "reason": reason,
    }
    if held is not None:
        fields["held_ms"] = int(held * MIN)
    return rec(minute, "CHECKIN", **fields)


# -- pure figures ------------------------------------------------------------


def test_peak_average_seat_hours_and_tops():
    records = [
        rec(0, "START", server="0.1", port=1493, features="netmap,idle"),
        out(0, "a", user="ann"),
        out(30, "b", user="bob", host="ws2"),
        back(60, "a"),
        out(60, "c", user="cy"),  # a returned at the very instant c is taken: no peak of 3
        back(90, "b"),
        back(120, "c", reason="timeout"),
        rec(100, "DENIAL", feature="netmap", reason="SEATS_EXHAUSTED", user="dee"),
        rec(101, "DENIAL", feature="netmap", reason="SEATS_EXHAUSTED", user="dee"),
        rec(102, "DENIAL", feature="ghost", reason="NO_SUCH_FEATURE", user="dee"),
        rec(103, "QUEUE", feature="netmap", user="dee", position=1),
        rec(105, "DEQUEUE", feature="netmap", user="dee", outcome="timeout", waited_ms=120_000),
        rec(106, "QUEUE", feature="netmap", user="eve", position=1),
        rec(107, "DEQUEUE", feature="netmap", user="eve", outcome="left", waited_ms=60_000),
        rec(110, "ADMIN", action="remove", by="127.0.0.1"),
        rec(111, "FUTURE_KIND", anything="goes"),
        rec(240, "STOP", reason="shutdown"),
    ]
    report = summarise(records, series=True)
    assert (report.start_ms, report.end_ms) == (T0, T0 + 240 * MIN)
    by = {f.feature: f for f in report.features}
    assert set(by) == {"netmap", "idle", "ghost"}
    netmap = by["netmap"]
    assert netmap.peak_seats == 2 and netmap.peak_at_ms == T0 + 30 * MIN
    assert netmap.seat_hours == pytest.approx(3.0)  # 60 + 60 + 60 minutes
    assert netmap.average_seats == pytest.approx(180 / 240)
    assert netmap.checkouts == 3 and netmap.checkins == {"normal": 2, "timeout": 1}
    assert netmap.denials == {"SEATS_EXHAUSTED": 2} and netmap.licensed_seats == 3
    assert netmap.queued == 2 and netmap.dequeued == {"timeout": 1, "left": 1}
    assert netmap.queue_wait_avg_s == 90 and netmap.queue_wait_max_s == 120
    assert [(s.name, s.seat_hours) for s in netmap.top_users] == [
        ("ann", 1.0),
        ("bob", 1.0),
        ("cy", 1.0),
    ]
    assert [(s.name, s.seat_hours, s.checkouts) for s in netmap.top_hosts] == [
        ("ws1", 2.0, 2),
        ("ws2", 1.0, 1),
    ]
    assert list(zip(netmap.step_times, netmap.step_levels, strict=True)) == [
        (T0, 1),
        (T0 + 30 * MIN, 2),
        (T0 + 60 * MIN, 2),
        (T0 + 90 * MIN, 1),
        (T0 + 120 * MIN, 0),
    ]
    assert by["ghost"].denials == {"NO_SUCH_FEATURE": 1} and by["ghost"].peak_seats == 0
    assert by["idle"].checkouts == 0 and by["idle"].peak_at_ms is None
    assert report.events == {"START": 1, "ADMIN": 1, "STOP": 1}


def test_window_clips_leases_held_across_since_and_until():
    records = [
        rec(0, "START", features="netmap"),
        out(10, "a"),  # held across since
        out(20, "b"),
        back(30, "b"),  # wholly before since: not in the report
        rec(40, "DENIAL", feature="netmap", reason="SEATS_EXHAUSTED"),  # before since
        out(70, "c"),  # held across until
        back(80, "a"),
        back(200, "c"),
        out(300, "d"),
    ]
    report = summarise(records, since_ms=T0 + 60 * MIN, until_ms=T0 + 100 * MIN)
    (netmap,) = report.features
    assert (report.start_ms, report.end_ms) == (T0 + 60 * MIN, T0 + 100 * MIN)
    assert netmap.seat_hours == pytest.approx((20 + 30) / 60)
    assert netmap.peak_seats == 2 and netmap.peak_at_ms == T0 + 70 * MIN
    assert netmap.checkouts == 1 and netmap.checkins == {"normal": 1} and netmap.denials == {}
    assert [(s.name, round(s.seat_hours * 60)) for s in netmap.top_users] == [("ann", 50)]


def test_open_leases_end_with_the_log_and_orphans_use_held_ms():
    records = [
        rec(0, "START", features="netmap"),
        back(30, "gone", held=90),  # its CHECKOUT was in a rotated file now deleted
        back(40, "gone2"),  # no held_ms: from the start of the log
        out(50, "x"),
        out(55, "x"),  # a restored lease announced again keeps its start
        rec(110, "REREAD", result="ok"),
    ]
    (netmap,) = summarise(records).features
    assert netmap.seat_hours == pytest.approx((30 + 40 + 60) / 60)
    assert netmap.peak_seats == 2 and netmap.peak_at_ms == T0
    assert netmap.checkouts == 1


def test_feature_filter_and_licensed_changes():
    records = [
        out(0, "a", seats=3),
        out(1, "b", feature="viz", seats="uncounted"),
        back(5, "a"),
        out(6, "c", seats=5),
        back(7, "c"),
        back(8, "b", feature="viz"),
    ]
    report = summarise(records, features=["viz"], series=True)
    (viz,) = report.features
    assert viz.feature == "viz" and viz.uncounted and viz.licensed_seats is None
    full = {f.feature: f for f in summarise(records, series=True).features}
    assert full["netmap"].licensed_seats == 5
    assert full["netmap"].licensed_changes == [(T0, 3), (T0 + 6 * MIN, 5)]


def test_finish_twice_and_features_of_a_start_before_since():
    accumulator = UsageAccumulator(since_ms=T0 + 10 * MIN)
    for record in (rec(0, "START", features="netmap,idle"), out(1, "a"), rec(20, "STOP")):
        accumulator.add(record)
    first, again = accumulator.finish(), accumulator.finish()
    assert first == again and first.events == {"STOP": 1} and first.records == 1
    assert [f.feature for f in first.features] == ["idle", "netmap"]
    assert first.features[1].seat_hours == pytest.approx(10 / 60)


def test_empty_log():
    report = summarise([])
    assert report.features == [] and report.start_ms is None


# -- reading files ------------------------------------------------------------


def test_reader_skips_bad_lines_with_file_and_line(tmp_path):
    log = tmp_path / "report.log"
    log.write_text(
        "2025-01-01T00:00:00.000Z START server=0.1 port=1493 features=netmap\n"
        "garbage\n"
        '2025-01-01T00:01:00.000Z CHECKOUT lease=a feature=netmap user="J. Doe" seats=3\n'
        "2025-01-01T00:02:00.000Z CHECKOUT lease=b\n"  # no feature=
        "2025-13-01T00:02:00.000Z CHECKIN lease=a\n"  # no such month
        "2025-01-01T00:03:00.000Z CHECKIN lease=zz feature=netmap held_ms=soon\n"
        "2025-01-01T00:04:00.000Z lower case=kind\n"
        '2025-01-01T00:05:00.000Z CHECKIN lease=a feature=netmap reason=normal user="J. Do',
        encoding="utf-8",
    )
    report = build_report(log_files(log))
    assert report.malformed == 6
    assert [w.split(": ", 1)[0] for w in report.warnings] == [
        f"{log}:{n}" for n in (2, 4, 5, 6, 7, 8)
    ]
    assert "without feature=" in report.warnings[1]
    (netmap,) = report.features
    # lease a is still open: it counts until the last time in the log, 00:05.
    assert netmap.checkouts == 1 and netmap.top_users[0].name == "J. Doe"
    assert netmap.seat_hours == pytest.approx(4 / 60)


def test_rotated_files_are_read_oldest_first_including_gzip(tmp_path):
    log = tmp_path / "report.log"
    lines = [
        f"2025-01-01T00:0{m}:00.000Z {text}\n"
        for m, text in enumerate(
            [
                "START features=netmap",
                "CHECKOUT lease=a feature=netmap user=ann",
                "CHECKIN lease=a feature=netmap reason=normal",
                "CHECKOUT lease=b feature=netmap user=bo",
                "CHECKIN lease=b feature=netmap reason=exit",
            ]
        )
    ]
    with gzip.open(tmp_path / "report.log.3.gz", "wt") as f:
        f.write(lines[0])
    (tmp_path / "report.log.2").write_text(lines[1])
    (tmp_path / "report.log.1").write_text(lines[2] + lines[3])
    log.write_text(lines[4])
    (tmp_path / "report.log.old").write_text("not a rotated file\n")
    assert [p.name for p in log_files(log)] == [
        "report.log.3.gz",
        "report.log.2",
        "report.log.1",
        "report.log",
    ]
    reader = LogReader(log_files(log))
    assert [r.kind for r in reader] == ["START", "CHECKOUT", "CHECKIN", "CHECKOUT", "CHECKIN"]
    assert reader.malformed == 0 and reader.lines == 5
    (netmap,) = build_report(log_files(log)).features
    assert netmap.seat_hours == pytest.approx(2 / 60) and netmap.checkins == {
        "normal": 1,
        "exit": 1,
    }


def test_a_damaged_gzip_file_is_a_warning(tmp_path):
    log = tmp_path / "report.log"
    packed = gzip.compress(b"2025-01-01T00:00:00.000Z START features=netmap\n" * 50)
    (tmp_path / "report.log.1.gz").write_bytes(packed[: len(packed) // 2])
    (tmp_path / "report.log.2.gz").write_bytes(b"not gzip at all")
    log.write_text("2025-01-02T00:00:00.000Z STOP reason=shutdown\n")
    report = build_report(log_files(log))
    assert report.malformed == 2 and all("cannot read further" in w for w in report.warnings)
    assert report.events["STOP"] == 1


def test_quoted_values_use_the_license_line_tokenizer():
    record = parse_line('2025-01-01T00:00:00.250Z DENIAL feature=netmap message="a \\"b\\" c"\n')
    assert record == Record(T0 + 250, "DENIAL", {"feature": "netmap", "message": 'a "b" c'})


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.sampled_from(["CHECKOUT", "CHECKIN", "DENIAL", "X"]),
            st.text(max_size=40),
        ),
        max_size=15,
    )
)
def test_any_file_is_read_to_the_end(lines):
    """Invariant: every line is either a record or a counted problem; nothing raises."""
    text = "".join(
        (f"2025-01-01T00:00:{n % 60:02d}.000Z {kind} {body}" if stamped else body) + "\n"
        for n, (stamped, kind, body) in enumerate(lines)
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.log"
        path.write_text(text, encoding="utf-8")
        reader = LogReader([path])
        report = build_report([path])
        records = list(reader)
    assert report.records + report.malformed == reader.lines
    assert len(records) + reader.malformed == reader.lines


# -- a simulated server ------------------------------------------------------------


@dataclass
class Sim:
    """A log written by a simulated server, and the figures it kept while writing."""

    path: Path
    lines: int = 0
    end_ms: int = 0
    seats: dict[str, int | None] = field(default_factory=dict)
    intervals: dict[str, list[tuple[int, int, str, str]]] = field(default_factory=dict)
    peak: dict[str, tuple[int, int]] = field(default_factory=dict)
    checkouts: Counter[str] = field(default_factory=Counter)
    denials: dict[str, Counter[str]] = field(default_factory=dict)
    queued: Counter[str] = field(default_factory=Counter)
    waits: dict[str, list[int]] = field(default_factory=dict)


class Stamp:
    """Fast UTC timestamps for the generator (days formatted once)."""

    def __init__(self) -> None:
        self.days: dict[int, str] = {}

    def __call__(self, ms: int) -> str:
        day, rest = divmod(ms, DAY)
        prefix = self.days.get(day)
        if prefix is None:
            prefix = self.days[day] = datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%dT")
        sec, milli = divmod(rest, 1000)
        minutes, s = divmod(sec, 60)
        h, m = divmod(minutes, 60)
        return f"{prefix}{h:02d}:{m:02d}:{s:02d}.{milli:03d}Z"


def simulate(path: Path, *, users: int, days: int, seed: int = 7) -> Sim:
    """Users check features out in working hours; seats run out at busy times.

    The simulation is its own seat engine: it keeps the number of seats in
    use as it grants and returns them, so peak, seat-hours and the rest are
    known without the report code.
    """
    rnd = random.Random(seed)
    pools: dict[str, int | None] = {
        "netmap": users * 11 // 100,
        "solver": users * 45 // 1000,
        "viz": None,
    }
    weights = [("netmap", 0.5), ("solver", 0.3), ("viz", 0.17), ("ghost", 0.03)]
    names = [f"user{n:04d}" if n % 97 else f'User {n} "Q"' for n in range(users)]
    homes = [f"ws{n % (users // 2 + 1):04d}" for n in range(users)]
    attempts: list[tuple[int, int, str, int]] = []
    for day in range(days):
        weekday = (day + 2) % 7 < 5  # 2025-01-01 was a Wednesday
        for u in range(users):
            if rnd.random() > (0.8 if weekday else 0.08):
                continue
            for _ in range(rnd.choice((1, 2, 2, 3))):
                start = T0 + day * DAY + rnd.randrange(7 * 3600_000, 19 * 3600_000)
                held = rnd.randrange(10 * MIN, 5 * 60 * MIN)
                r = rnd.random()
                feature = next(f for f, w in weights if (r := r - w) < 0) if r < 1 else "ghost"
                attempts.append((start, held, feature, u))
    attempts.sort()
    sim = Sim(path, seats=dict(pools))
    for name in (*pools, "ghost"):
        sim.intervals[name], sim.denials[name], sim.waits[name] = [], Counter(), []
    in_use = dict.fromkeys(pools, 0)
    later: list[tuple[int, int, str]] = []  # (time, order, line) of CHECKINs and DEQUEUEs
    releases: dict[int, str] = {}  # order of a CHECKIN → feature
    stamp = Stamp()
    end = T0 + days * DAY - 3 * 3600_000  # some leases are still held when the log ends
    sim.end_ms = end
    out_lines: list[str] = [f"{stamp(T0)} START server=0.1.0 port=1493 features=netmap,solver,viz"]
    order = 0

    def release_until(t: int) -> None:
        while later and later[0][0] <= t:
            _, number, line = heapq.heappop(later)
            feature = releases.pop(number, None)
            if feature is not None:
                in_use[feature] -= 1
            out_lines.append(line)

    for start, held, feature, u in attempts:
        if start >= end:
            break
        release_until(start)
        user, host = names[u], homes[u]
        quser = '"' + user.replace('"', '\\"') + '"' if " " in user else user
        order += 1
        if feature == "ghost":
            out_lines.append(
                f"{stamp(start)} DENIAL feature=ghost version=1.0 user={quser} "
                f'host={host} reason=NO_SUCH_FEATURE message="no such feature" '
                f"addr=10.0.0.1"
            )
            sim.denials["ghost"]["NO_SUCH_FEATURE"] += 1
            continue
        seats = pools[feature]
        if seats is not None and in_use[feature] >= seats:
            sim.denials[feature]["SEATS_EXHAUSTED"] += 1
            out_lines.append(
                f"{stamp(start)} DENIAL feature={feature} version=1.0 user={quser} "
                f'host={host} reason=SEATS_EXHAUSTED message="all {seats} seats in '
                f'use" addr=10.0.0.1'
            )
            if order % 3 == 0:  # some wait in the queue, then give up
                wait = rnd.randrange(1000, 30 * MIN)
                sim.queued[feature] += 1
                out_lines.append(
                    f"{stamp(start)} QUEUE feature={feature} user={quser} host={host} position=1"
                )
                if start + wait <= end:
                    sim.waits[feature].append(wait)
                heapq.heappush(
                    later,
                    (
                        start + wait,
                        order,
                        (
                            f"{stamp(start + wait)} DEQUEUE feature={feature} user={quser} "
                            f"host={host} outcome=timeout waited_ms={wait}"
                        ),
                    ),
                )
            continue
        in_use[feature] += 1
        sim.checkouts[feature] += 1
        if in_use[feature] > sim.peak.get(feature, (0, 0))[0]:
            sim.peak[feature] = (in_use[feature], start)
        lease = f"{order:032x}"
        sim.intervals[feature].append((start, min(start + held, end), user, host))
        out_lines.append(
            f"{stamp(start)} CHECKOUT lease={lease} handle={order % 9999} feature={feature} "
            f"version=1.0 user={quser} host={host} display=:0 pid={1000 + u} project=p{u % 7} "
            f"line={feature}-1 in_use={in_use[feature]} "
            f"seats={'uncounted' if seats is None else seats} addr=10.0.{u // 250}.{u % 250}"
        )
        reason = "timeout" if order % 50 == 0 else "normal"
        releases[order] = feature
        heapq.heappush(
            later,
            (
                start + held,
                order,
                (
                    f"{stamp(start + held)} CHECKIN lease={lease} feature={feature} user={quser} "
                    f"host={host} reason={reason} in_use=0 held_ms={held}"
                ),
            ),
        )
    release_until(end)
    out_lines.append(f'{stamp(end)} REREAD result=ok message="license reread"')
    sim.lines = len(out_lines)
    path.write_text("\n".join(out_lines) + "\n", encoding="utf-8")
    return sim


def expected_tops(
    intervals: list[tuple[int, int, str, str]], which: int
) -> list[tuple[str, float]]:
    total: Counter[str] = Counter()
    for s, e, *who in intervals:
        total[who[which]] += e - s
    ranked = sorted(total.items(), key=lambda item: (-item[1], item[0]))[:10]
    return [(name, ms / HOUR_MS) for name, ms in ranked]


def check_against_simulation(sim: Sim) -> None:
    started = time.perf_counter()
    report = build_report(log_files(sim.path))
    elapsed = time.perf_counter() - started
    print(f"\n{sim.lines:,} lines reported in {elapsed:.2f} s")
    assert report.malformed == 0 and report.records == sim.lines
    assert (report.start_ms, report.end_ms) == (T0, sim.end_ms)
    window = sim.end_ms - T0
    by = {f.feature: f for f in report.features}
    assert set(by) == {"netmap", "solver", "viz", "ghost"}
    for name, usage in by.items():
        intervals = sim.intervals[name]
        seat_ms = sum(e - s for s, e, _, _ in intervals)
        assert usage.seat_hours == pytest.approx(seat_ms / HOUR_MS, rel=1e-12)
        assert usage.average_seats == pytest.approx(seat_ms / window, rel=1e-12)
        assert (usage.peak_seats, usage.peak_at_ms) == sim.peak.get(name, (0, None))
        assert usage.checkouts == sim.checkouts[name]
        assert usage.denials == dict(sim.denials[name])
        assert usage.queued == sim.queued[name]
        waits = sim.waits[name]
        assert usage.queue_wait_max_s == (max(waits) / 1000 if waits else None)
        assert usage.queue_wait_avg_s == (
            pytest.approx(sum(waits) / len(waits) / 1000) if waits else None
        )
        assert usage.licensed_seats == sim.seats.get(name)
        assert usage.uncounted == (name == "viz")
        for got, want in (
            (usage.top_users, expected_tops(intervals, 0)),
            (usage.top_hosts, expected_tops(intervals, 1)),
        ):
            assert [s.name for s in got] == [n for n, _ in want]
            assert [s.seat_hours for s in got] == pytest.approx([h for _, h in want])
    # The simulation made the seats run out, so the report has something to say.
    assert by["netmap"].peak_seats == sim.seats["netmap"]
    assert by["netmap"].denials["SEATS_EXHAUSTED"] > 0 and by["solver"].queued > 0


def brute_force_window(sim: Sim, since: int, until: int, name: str) -> tuple[float, int]:
    """Seat-hours and peak in [since, until) by looking at every interval at every start."""
    clipped = [(max(s, since), min(e, until)) for s, e, _, _ in sim.intervals[name]]
    clipped = [(s, e) for s, e in clipped if e > s]
    starts = np.array([s for s, _ in clipped], dtype=np.int64)
    ends = np.array([e for _, e in clipped], dtype=np.int64)
    peak = max((int(np.sum((starts <= s) & (s < ends))) for s in starts), default=0)
    return sum(e - s for s, e in clipped) / HOUR_MS, peak


@pytest.fixture(scope="module")
def month(tmp_path_factory) -> Sim:
    return simulate(tmp_path_factory.mktemp("month") / "report.log", users=300, days=30)


def test_a_month_matches_the_simulation(month):
    check_against_simulation(month)


def test_windows_match_brute_force(month):
    for since_day, until_day in ((3, 4), (10.5, 17.25), (0, 30)):
        since, until = T0 + int(since_day * DAY), T0 + int(until_day * DAY)
        report = build_report(
            log_files(month.path), since_ms=since, until_ms=until, features=["solver", "viz"]
        )
        assert {f.feature for f in report.features} == {"solver", "viz"}
        for usage in report.features:
            seat_hours, peak = brute_force_window(month, since, until, usage.feature)
            assert usage.seat_hours == pytest.approx(seat_hours)
            assert usage.peak_seats == peak
            assert usage.checkouts == sum(
                1 for s, *_ in month.intervals[usage.feature] if since <= s < until
            )


def test_a_year_of_a_thousand_users(tmp_path):
    """~810,000 records: generated and reported in seconds (about 7 s + 10 s here)."""
    started = time.perf_counter()
    sim = simulate(tmp_path / "report.log", users=1000, days=365)
    print(f"\ngenerated {sim.lines:,} lines in {time.perf_counter() - started:.1f} s")
    check_against_simulation(sim)


# -- the command ------------------------------------------------------------


def test_report_command_formats(month, capsys):
    code, text, err = run(capsys, "report", "--log", str(month.path), "--feature", "netmap")
    assert code == 0, err
    assert "netmap" in text and "Seat-hours" in text and "SEATS_EXHAUSTED" in text
    assert "solver" not in text
    code, data, err = run(capsys, "report", "--log", str(month.path), "--json")
    assert code == 0, err
    report = json.loads(data)
    netmap = next(f for f in report["features"] if f["feature"] == "netmap")
    assert netmap["peak_seats"] == netmap["licensed_seats"] == month.seats["netmap"]
    assert netmap["checkouts"] == month.checkouts["netmap"]
    assert report["since"] == "2025-01-01T00:00:00.000Z"
    code, csv_text, err = run(
        capsys,
        "report",
        "--log",
        str(month.path),
        "--format",
        "csv",
        "--since",
        "2025-01-02",
        "--until",
        "2025-01-02",
    )
    assert code == 0, err
    rows = csv_text.splitlines()
    assert rows[0].startswith("since,until,feature,licensed_seats,peak_seats")
    assert rows[1].startswith("2025-01-02T00:00:00.000Z,2025-01-03T00:00:00.000Z,ghost,")
    assert len(rows) == 5 and any(",viz,uncounted," in row for row in rows)


def test_report_reads_the_state_directory(tmp_path, capsys):
    (tmp_path / "report.log").write_text(
        "2025-01-01T00:00:00.000Z CHECKOUT lease=a feature=netmap user=ann seats=2\n"
        "2025-01-01T02:00:00.000Z CHECKIN lease=a feature=netmap reason=normal\n"
    )
    code, data, err = run(capsys, "--json", "report", "--state", str(tmp_path))
    assert code == 0, err
    (netmap,) = json.loads(data)["features"]
    assert netmap["seat_hours"] == 2.0 and netmap["average_seats"] == 1.0


def test_plot_png_of_every_feature(month, tmp_path, capsys):
    plot = tmp_path / "usage.png"
    code, _, err = run(capsys, "report", "--log", str(month.path), "--plot", str(plot))
    assert code == 0, err
    data = plot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 500 and height > 500
    assert data[-8:-4] == b"IEND"


def test_plot_svg_of_one_feature_for_one_day(month, tmp_path, capsys):
    plot = tmp_path / "usage.svg"
    code, _, err = run(
        capsys,
        "report",
        "--log",
        str(month.path),
        "--plot",
        str(plot),
        "--feature",
        "netmap",
        "--since",
        "2025-01-02",
        "--until",
        "2025-01-02",
        "--format",
        "csv",
    )
    assert code == 0, err
    data = plot.read_bytes()
    root = ET.fromstring(data)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert b"netmap" in data and b"solver" not in data and len(data) < 1_000_000


@pytest.mark.parametrize(
    "argv, message",
    [
        ((), "either --state DIR or --log FILE"),
        (("--log", "x", "--state", "y"), "either --state DIR or --log FILE"),
        (("--log", "{log}", "--plot", "usage.pdf"), ".png or .svg"),
        (("--log", "{log}", "--since", "yesterday"), "--since 'yesterday'"),
        (("--log", "{log}", "--since", "2025-02-01", "--until", "2025-01-01"), "is not after"),
        (("--log", "{log}", "--until", "9999-12-31"), "--until '9999-12-31': give a time from"),
        (
            ("--log", "{log}", "--since", "9999-12-31T23:59:59-01:00"),
            "--since '9999-12-31T23:59:59-01:00': give a time from",
        ),
        (
            ("--log", "{log}", "--since", "0001-01-01T00:00+01:00"),
            "--since '0001-01-01T00:00+01:00': give a time from",
        ),
        (
            (
                "--log",
                "{dir}/nothing.log",
            ),
            "no report log",
        ),
    ],
)
def test_report_errors_are_one_line_and_exit_78(tmp_path, capsys, argv, message):
    log = tmp_path / "report.log"
    log.write_text("2025-01-01T00:00:00.000Z START features=netmap\n")
    argv = tuple(a.format(log=log, dir=tmp_path) for a in argv)
    code, out_text, err = run(capsys, "report", *argv)
    assert code == 78 and out_text == ""
    assert err.count("\n") == 1 and message in err and err.startswith("netmap-lm: CONFIG_ERROR")


@pytest.mark.parametrize("fmt", ["text", "csv", "json"])
def test_the_first_and_last_times_the_report_can_show(tmp_path, capsys, fmt):
    log = tmp_path / "report.log"
    log.write_text("2025-01-01T00:00:00.000Z START features=netmap\n")
    for window in (
        ("--since", "0001-01-01", "--until", "9999-12-30"),
        ("--since", "9999-12-31T23:59:59.999Z"),
        ("--until", "0001-01-01T00:00Z"),
    ):
        code, _, err = run(capsys, "report", "--log", str(log), "--format", fmt, *window)
        assert code == 0, err


def test_bad_lines_are_warnings_not_failures(tmp_path, capsys):
    log = tmp_path / "report.log"
    log.write_text("2025-01-01T00:00:00.000Z START features=netmap\nnonsense\n")
    code, _, err = run(capsys, "report", "--log", str(log), "--format", "csv")
    assert code == 0 and f"warning: {log}:2: expected" in err
