"""The report log writer: lines, fsync, rotation, threads, failures, and the
document that describes the format."""

from __future__ import annotations

import errno
import os
import re
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netmap_lm.licensing.lines import MAX_LINE_CHARS, tokenize
from netmap_lm.reports import build_report, log_files
from netmap_lm.reports.records import LogReader, RecordSyntaxError, parse_line
from netmap_lm.reports.render import CSV_COLUMNS
from netmap_lm.server import reportlog
from netmap_lm.server.reportlog import (
    CHECKIN_REASONS,
    DEQUEUE_OUTCOMES,
    KINDS,
    ReportLog,
    format_record,
)

T = 1_741_079_702_123  # 2025-03-04T09:15:02.123Z
DOC = Path(__file__).resolve().parents[1] / "docs" / "report-log.md"
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_a_record_is_one_line_in_the_documented_form():
    line = format_record(
        "CHECKIN",
        T,
        {
            "lease": "ab" * 16,
            "feature": "netmap",
            "user": "Jane Doe",
            "host": None,
            "reason": "normal",
            "in_use": 2,
            "held_ms": 8714882,
        },
    )
    assert line == (
        "2025-03-04T09:15:02.123Z CHECKIN lease=" + "ab" * 16 + " feature=netmap "
        'user="Jane Doe" reason=normal in_use=2 held_ms=8714882'
    )
    assert format_record("STOP", 0, {}) == "1970-01-01T00:00:00.000Z STOP"
    with pytest.raises(ValueError):
        format_record("checkout", T, {})
    with pytest.raises(ValueError):
        format_record("CHECKOUT", T, {"Feature": "x"})


def test_remembered_values_format_as_the_first_time(monkeypatch):
    """Text values are cleaned and quoted once and then remembered: the second
    record must read the same, and the memory stays bounded."""
    from netmap_lm.server import reportlog

    fields = {"user": 'Jane "J" Doe', "host": "ws\x1b[2J-01", "seats": "uncounted", "pid": 7}
    first = format_record("CHECKOUT", T, dict(fields))
    assert first.endswith('user="Jane \\"J\\" Doe" host="ws [2J-01" seats=uncounted pid=7')
    assert format_record("CHECKOUT", T, dict(fields)) == first
    monkeypatch.setattr(reportlog, "MAX_PIECES", 3)
    for n in range(10):
        format_record("CHECKIN", T, {"user": f"user {n}"})
        assert len(reportlog._pieces) <= 3
    assert format_record("CHECKOUT", T, dict(fields)) == first
    long = "x" * (reportlog.MAX_VALUE_CHARS + 10)
    assert format_record("DENIAL", T, {"message": long}).endswith(
        "message=" + "x" * reportlog.MAX_VALUE_CHARS
    )


@given(st.lists(st.integers(0, 2**41), min_size=1, max_size=20))
def test_remembered_time_stamps_are_those_of_their_millisecond(times):
    """The stamp of the last second and of the last millisecond are
    remembered: any sequence of times, repeats included, reads as formatted
    afresh."""
    from datetime import UTC, datetime

    for when_ms in [*times, *times[::-1]]:
        expected = datetime.fromtimestamp(when_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        assert reportlog.format_time(when_ms) == f"{expected}.{when_ms % 1000:03d}Z"


WORDS = st.one_of(
    st.sampled_from(["", "netmap", "5.0", "alice", "ws-01", "Jane Doe", "127.0.0.1", "::1"]),
    st.text(max_size=12),
    st.text(min_size=reportlog.MAX_VALUE_CHARS - 2, max_size=reportlog.MAX_VALUE_CHARS + 2),
)
COUNTS = st.integers(0, 2**40)


@given(
    st.tuples(*[WORDS] * 9),
    st.tuples(COUNTS, COUNTS, COUNTS, COUNTS, st.one_of(COUNTS, st.none())),
    st.sampled_from(CHECKIN_REASONS),
)
def test_checkout_and_checkin_records_read_as_the_general_form(texts, numbers, reason):
    """The two records of every grant are built by their own fast functions:
    they must write exactly what format_record writes for the same fields."""
    from netmap_lm.engine.seats import Lease

    lease_id, feature, version, user, host, display, project, line, address = texts
    pid, handle, borrow, in_use, seats = numbers
    lease = Lease(
        lease_id, feature, version, user, host, display, pid, project, line, T, b"k" * 32,
        address=address, borrow_until_ms=borrow, handle=handle,
    )  # fmt: skip
    assert reportlog.checkout_record(T, lease, in_use, seats) == format_record(
        "CHECKOUT", T, reportlog.checkout_fields(lease, in_use, seats)
    )
    assert reportlog.checkin_record(T, lease, reason, in_use, pid) == format_record(
        "CHECKIN", T, reportlog.checkin_fields(lease, reason, in_use, pid)
    )
    assert list(reportlog.checkout_fields(lease, in_use, seats)) == list(KINDS["CHECKOUT"])
    assert list(reportlog.checkin_fields(lease, reason, in_use, pid)) == list(KINDS["CHECKIN"])


def test_records_are_on_disk_and_fsynced_after_flush(tmp_path, monkeypatch):
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(reportlog.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    log = ReportLog(tmp_path / "state" / "report.log")
    log.record("START", T, server="0.1.0", port=1493, features="netmap")
    log.record("DENIAL", T + 1, feature="netmap", reason="SEATS_EXHAUSTED", message=None)
    assert lines_of(log.path) == [] and log.pending == 2  # buffered, not written
    synced.clear()
    log.flush()
    assert synced, "flush must fsync"
    assert lines_of(log.path) == [
        "2025-03-04T09:15:02.123Z START server=0.1.0 port=1493 features=netmap",
        "2025-03-04T09:15:02.124Z DENIAL feature=netmap reason=SEATS_EXHAUSTED",
    ]
    log.flush()  # nothing to write: no empty writes
    log.record("STOP", T + 2, reason="shutdown")
    log.close()
    assert lines_of(log.path)[-1].endswith("STOP reason=shutdown")
    assert stat.S_IMODE(log.path.stat().st_mode) == reportlog.FILE_MODE
    log.record("CHECKIN", T + 3, lease="x")  # after close: dropped, not raised
    assert log.dropped == 1


def test_values_round_trip_through_the_reader(tmp_path):
    values = {
        "user": 'Jane "JD" Doe',
        "host": "back\\slash",
        "project": "",
        "display": "a=b #c",
        "message": "line one\nline two\ttabbed\r\u2028x\x85y",
        "line": "ünïcødé ✓",
        "addr": "::1",
    }
    log = ReportLog(tmp_path / "report.log")
    log.record("DENIAL", T, feature="netmap", **values)
    log.record("FUTURE", T, whatever="x y")
    log.close()
    records = list(LogReader([log.path]))
    assert [r.kind for r in records] == ["DENIAL", "FUTURE"]
    fields = records[0].fields
    assert fields == {"feature": "netmap", **values, "message": "line one line two tabbed  x y"}
    assert records[0].when_ms == T


@given(
    kind=st.from_regex(r"[A-Z_]{1,10}", fullmatch=True),
    fields=st.dictionaries(
        st.from_regex(r"[a-z_]{1,10}", fullmatch=True), st.text(max_size=40), max_size=8
    ),
)
def test_what_the_writer_writes_the_reader_reads_as_the_tokenizer_does(kind, fields):
    line = format_record(kind, T, dict(fields))
    record = parse_line(line)
    assert (record.kind, record.fields) == tokenize(line[25:])
    assert record.fields == {
        key: value.translate(reportlog._CONTROL) for key, value in fields.items()
    }


@given(st.text(max_size=80), st.booleans())
def test_any_line_is_a_record_or_a_syntax_error(text, stamped):
    line = ("2025-03-04T09:15:02.123Z " + text) if stamped else text
    try:
        parse_line(line)
    except RecordSyntaxError:
        pass


def test_long_values_are_cut_so_every_record_parses(tmp_path):
    log = ReportLog(tmp_path / "report.log")
    log.record("DENIAL", T, feature="netmap", message="x" * 100_000)
    log.record("CHECKOUT", T, **{key: '"' * 600 for key in KINDS["CHECKOUT"]})
    log.close()
    lines = lines_of(log.path)
    assert all(len(line) <= MAX_LINE_CHARS + 25 for line in lines)
    records = [parse_line(line) for line in lines]
    assert records[0].fields["message"] == "x" * reportlog.MAX_VALUE_CHARS
    assert records[1].fields["lease"] == '"' * reportlog.SHORT_VALUE_CHARS


def test_rotation_keeps_n_files_in_order(tmp_path):
    log = ReportLog(tmp_path / "report.log", max_bytes=2_000, keep=3)
    for n in range(400):
        log.record("QUEUE", T + n, feature="netmap", user=f"u{n}", position=n)
        if n % 10 == 9:
            log.flush()
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["report.log", "report.log.1", "report.log.2", "report.log.3"]
    for name in names[1:]:
        assert (tmp_path / name).stat().st_size >= 2_000
    positions = [int(r.fields["position"]) for r in LogReader(log_files(log.path))]
    # The newest records, oldest first, with nothing missing in between.
    assert positions == list(range(positions[0], 400))
    assert len(positions) > 3 * 20


def test_rotation_with_keep_zero_starts_afresh(tmp_path):
    log = ReportLog(tmp_path / "report.log", max_bytes=100, keep=0)
    log.record("STOP", T, reason="x" * 200)
    log.flush()
    log.record("STOP", T, reason="after")
    log.close()
    assert [p.name for p in tmp_path.iterdir()] == ["report.log"]
    assert lines_of(log.path) == ["2025-03-04T09:15:02.123Z STOP reason=after"]


def test_records_from_one_thread_and_flushes_from_another_lose_nothing(tmp_path):
    log = ReportLog(tmp_path / "report.log", max_bytes=256 * 1024, keep=100)
    count = 30_000
    done = threading.Event()

    def flusher() -> None:
        while not done.is_set():
            log.flush()
        log.flush()

    thread = threading.Thread(target=flusher)
    thread.start()
    for n in range(count):
        log.record("CHECKIN", T + n, lease=f"{n:032x}", feature="netmap", reason="normal")
    done.set()
    thread.join()
    log.close()
    files = log_files(log.path)
    assert len(files) > 2  # rotated while records were coming in
    leases = [int(r.fields["lease"], 16) for r in LogReader(files)]
    assert leases == list(range(count))


def test_a_torn_last_line_is_ended_and_reported(tmp_path):
    path = tmp_path / "report.log"
    path.write_text(
        "2025-03-04T09:15:02.123Z START features=netmap\n"
        "2025-03-04T09:15:03.000Z CHECKOUT lease=ab feat"
    )  # the crash
    log = ReportLog(path)
    log.record("STOP", T + 5000, reason="shutdown")
    log.close()
    report = build_report(log_files(path))
    assert report.malformed == 1 and report.warnings[0].startswith(f"{path}:2: ")
    assert report.events == {"START": 1, "STOP": 1}


def test_a_refused_write_keeps_the_records_for_the_next_flush(tmp_path, monkeypatch):
    log = ReportLog(tmp_path / "report.log")
    log.record("START", T, features="netmap")
    log.flush()
    real_write = os.write
    calls = {"n": 0}

    def failing_write(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            real_write(fd, bytes(data[:10]))  # a partial write, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(reportlog.os, "write", failing_write)
    log.record("STOP", T + 1, reason="one")
    with pytest.raises(OSError):
        log.flush()
    assert log.pending == 1
    log.record("STOP", T + 2, reason="two")
    log.flush()
    log.close()
    assert [line.split(" ", 2)[2] for line in lines_of(log.path)] == [
        "features=netmap",
        "reason=one",
        "reason=two",
    ]


def test_records_beyond_the_buffer_limit_are_counted_as_lost(tmp_path, monkeypatch):
    monkeypatch.setattr(reportlog, "MAX_PENDING_LINES", 5)
    log = ReportLog(tmp_path / "report.log")

    def full_disk(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(reportlog.os, "write", full_disk)
        for n in range(8):
            log.record("QUEUE", T + n, feature="netmap", position=n)
            with pytest.raises(OSError):
                log.flush()
    log.flush()
    log.close()
    records = list(LogReader([log.path]))
    assert records[0].kind == "LOST" and records[0].fields == {"count": "3"}
    assert [int(r.fields["position"]) for r in records[1:]] == [3, 4, 5, 6, 7]
    assert build_report([log.path]).events == {"LOST": 3}


# -- the document ---------------------------------------------------------


def doc_examples() -> list[str]:
    return [line for line in DOC.read_text(encoding="utf-8").splitlines() if TIME.match(line)]


def test_the_document_shows_every_kind_with_its_keys():
    examples = {}
    for line in doc_examples():
        record = parse_line(line)
        assert set(record.fields) <= set(KINDS[record.kind]), line
        examples.setdefault(record.kind, record)
    assert set(examples) == set(KINDS)
    text = DOC.read_text(encoding="utf-8")
    for kind, keys in KINDS.items():
        for key in keys:
            assert f"`{key}`" in text or f"{key}=" in text, f"{kind} {key} is not documented"
    for reason in CHECKIN_REASONS:
        assert f"| `{reason}` |" in text
    for outcome in DEQUEUE_OUTCOMES:  # what the server writes (app.py's _leave takes no other)
        assert f"| `{outcome}` |" in text, f"DEQUEUE outcome={outcome} is not documented"
    for column in CSV_COLUMNS:
        assert f"`{column}`" in text, f"CSV column {column} is not documented"


def test_the_document_examples_are_what_the_writer_writes():
    for line in doc_examples():
        record = parse_line(line)
        assert format_record(record.kind, record.when_ms, dict(record.fields)) == line
