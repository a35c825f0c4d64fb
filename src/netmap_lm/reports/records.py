"""Reading the report log: files in order, one :class:`Record` per line.

Theory of operation.  ``report.log`` is the newest file; rotation renamed
older ones to ``report.log.1`` (newer) … ``report.log.N`` (oldest), and an
administrator may have compressed them (``report.log.3.gz``).  We read them
oldest first, so records come out in the order the server wrote them.

A line is ``<UTC time> <KIND> key=value ...`` (docs/report-log.md).  The
time has a fixed width, so it is cut out by position; the rest has the
grammar of a license line and :func:`netmap_lm.licensing.lines.tokenize` is
its arbiter.  A year of a busy server is millions of lines, though, and the
regular-expression tokenizer costs several times more than the rest of the
report, so lines are split with string methods instead: on ``"`` first when
there are quotes and no escapes, then on spaces and ``=``.  Anything that
does not come out as exactly one ``key=value`` per word goes to one regular
expression of the same grammar, then to the tokenizer, which has the last
word.  (For a damaged line the string methods can be more lenient than the
tokenizer; what the writer writes they read exactly as the tokenizer does,
and a test holds them to that.)

The log is read, never trusted: a line that does not parse is counted and
reported as ``file:line: problem``, and reading goes on.  Unknown kinds and
keys are passed through for the caller to ignore (a newer server may write
more than this reader knows).
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import IO, NamedTuple

from netmap_lm.licensing.lines import LineSyntaxError, tokenize

MAX_WARNINGS = 20  # problems kept word for word; the rest are only counted

_ROTATED = re.compile(r"\.(\d+)(\.gz)?")
_KIND = re.compile(r"[A-Z_]+")
_TIME_EXAMPLE = "2025-03-04T09:15:02.123Z"
_TIME_WIDTH = len(_TIME_EXAMPLE)
_SHAPE = f"expected '<UTC time> KIND key=value ...', time like {_TIME_EXAMPLE}"
_GOOD_KINDS: set[str] = set()  # kinds already checked against _KIND
_DAY_MS = 86_400_000
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", re.ASCII)
_SECONDS: dict[str, int] = {}  # "T09:15:02." → milliseconds since midnight
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# The grammar of tokenize() for lines written with single spaces, as one pattern.
_VALUE = r'"[^"\\]*(?:\\.[^"\\]*)*"|[^\s"]*'
_QUOTED_BODY = re.compile(rf"[A-Z_]+(?: [a-z_]+=(?:{_VALUE}))*")
_FIELD = re.compile(rf" ([a-z_]+)=({_VALUE})")
_ESCAPE = re.compile(r"\\(.)")
_HOLE = "\0"  # stands for a quoted value; the writer never writes control characters


class Record(NamedTuple):
    when_ms: int  # Unix time in milliseconds, UTC
    kind: str
    fields: dict[str, str]


class RecordSyntaxError(ValueError):
    """A line is not a report record; the message says why."""


def log_files(path: Path) -> list[Path]:
    """``path`` and its rotated files, oldest first (``path`` itself last)."""
    rotated: list[tuple[int, Path]] = []
    if path.parent.is_dir():
        for candidate in path.parent.iterdir():
            name = candidate.name
            if name.startswith(path.name) and candidate.is_file():
                match = _ROTATED.fullmatch(name[len(path.name) :])
                if match:
                    rotated.append((int(match.group(1)), candidate))
    files = [p for _, p in sorted(rotated, key=lambda item: item[0], reverse=True)]
    if path.is_file():
        files.append(path)
    return files


def parse_time(text: str) -> int:
    """``2025-03-04T09:15:02.123Z`` → Unix milliseconds."""
    return _day_ms(text[:10]) + _time_of_day_ms(text)


def _day_ms(text: str) -> int:
    if not _DATE.fullmatch(text):
        raise RecordSyntaxError(f"expected a UTC time like {_TIME_EXAMPLE}")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise RecordSyntaxError(f"no such date {text!r}") from None
    return (day.toordinal() - _EPOCH_ORDINAL) * _DAY_MS


def _time_of_day_ms(text: str) -> int:
    """The part after the date of a fixed-width time, checked field by field."""
    if not _TIME.fullmatch(text):
        raise RecordSyntaxError(f"expected a UTC time like {_TIME_EXAMPLE}")
    hour, minute, second = int(text[11:13]), int(text[14:16]), int(text[17:19])
    if not (hour < 24 and minute < 60 and second < 60):
        raise RecordSyntaxError(f"time {text!r} out of range")
    return ((hour * 60 + minute) * 60 + second) * 1000 + int(text[20:23])


def parse_body(body: str) -> tuple[str, dict[str, str]]:
    """``KIND key=value ...`` → kind and fields (fast paths, else tokenize)."""
    flat = body
    quoted: list[str] = []
    if '"' in body:
        if "\\" in body or _HOLE in body:
            return _parse_quoted(body)
        # Without escapes, the quotes split the line into words outside quotes
        # (even pieces) and quoted values (odd pieces).  Put a hole where each
        # quoted value was, split the rest, and fill the holes in order.
        pieces = body.split('"')
        if len(pieces) % 2 == 0:
            return _parse_quoted(body)
        quoted = pieces[1::2]
        flat = _HOLE.join(pieces[0::2])
    parts = flat.replace("=", " ").split(" ")
    pairs = flat.count("=")
    if len(parts) == 2 * pairs + 1:
        words = iter(parts)
        kind = next(words)
        fields = dict(zip(words, words, strict=True))
        if len(fields) == pairs and "" not in fields and _good_kind(kind):
            if not quoted:
                return kind, fields
            # Every hole must be a whole value (not part of a word or a key).
            if sum(1 for value in fields.values() if value == _HOLE) == len(quoted):
                values = iter(quoted)
                return kind, {k: next(values) if v == _HOLE else v for k, v in fields.items()}
    return _parse_quoted(body)


def _parse_quoted(body: str) -> tuple[str, dict[str, str]]:
    if _QUOTED_BODY.fullmatch(body):
        # The whole line is KIND and key=value words, some quoted: pick them out.
        found = _FIELD.findall(body)
        fields = {key: _unquote(value) if value[:1] == '"' else value for key, value in found}
        if len(fields) == len(found):
            return body[: body.index(" ")], fields
    try:
        return tokenize(body)
    except LineSyntaxError as exc:
        raise RecordSyntaxError(str(exc)) from None


def _good_kind(kind: str) -> bool:
    if kind in _GOOD_KINDS:
        return True
    if not _KIND.fullmatch(kind):
        return False
    if len(_GOOD_KINDS) < 100:  # a damaged log must not grow it without end
        _GOOD_KINDS.add(kind)
    return True


def _unquote(raw: str) -> str:
    inner = raw[1:-1]
    return _ESCAPE.sub(r"\1", inner) if "\\" in inner else inner


def parse_line(line: str) -> Record:
    """One line of the log (with or without its line break) → :class:`Record`."""
    line = line.rstrip("\r\n")
    if len(line) <= _TIME_WIDTH + 1 or line[_TIME_WIDTH] != " ":
        raise RecordSyntaxError(_SHAPE)
    when = parse_time(line[:_TIME_WIDTH])
    kind, fields = parse_body(line[_TIME_WIDTH + 1 :])
    return Record(when, kind, fields)


class LogReader:
    """Records of some log files, in order; problems counted, never raised.

    Records at or after ``until_ms`` are skipped without parsing more than
    their time.  ``first_ms`` and ``last_ms`` are the earliest and latest
    valid times at the start of any line, skipped or not: together they say
    which stretch of time the log covers (the server was up to write them).
    """

    def __init__(self, paths: Sequence[Path], *, until_ms: int | None = None) -> None:
        self.paths = list(paths)
        self.until_ms = until_ms
        self.lines = 0
        self.malformed = 0
        self.warnings: list[str] = []
        self.first_ms: int | None = None
        self.last_ms: int | None = None
        self._path = ""
        self._number = 0

    def problem(self, message: str) -> None:
        """Count a bad line at the current position (the caller's problems too)."""
        self.malformed += 1
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(f"{self._path}:{self._number}: {message}")

    def __iter__(self) -> Iterator[Record]:
        for path in self.paths:
            with _open(path) as file:
                try:
                    yield from self._read(path, file)
                except (OSError, EOFError, zlib.error) as exc:
                    # A damaged or truncated .gz file: keep what was read.
                    self.problem(f"cannot read further: {exc}")

    def _read(self, path: Path, file: IO[str]) -> Iterator[Record]:
        until = self.until_ms
        first = self.first_ms
        last = self.last_ms
        # The date of a log changes once a day: convert each date once; and
        # the seconds of a day ("T09:15:02.") each once (86,400 at most).
        seconds = _SECONDS
        new_record = tuple.__new__  # Record(...) without the Python-level __new__
        day_text = ""
        day_ms = 0
        number = 0
        self._path = str(path)
        try:
            for number, line in enumerate(file, 1):
                self._number = number
                try:
                    if len(line) <= _TIME_WIDTH + 1 or line[_TIME_WIDTH] != " ":
                        raise RecordSyntaxError(_SHAPE)
                    if line[:10] != day_text:
                        day_ms = _day_ms(line[:10])
                        day_text = line[:10]
                    second = seconds.get(line[10:20])
                    if second is None:
                        second = _time_of_day_ms(line[:20] + "000Z")
                        if len(seconds) < _DAY_MS // 1000:  # only valid ones get here
                            seconds[line[10:20]] = second
                    millis = line[20:23]
                    if line[23] != "Z" or not millis.isdigit():
                        raise RecordSyntaxError(f"expected a UTC time like {_TIME_EXAMPLE}")
                    when = day_ms + second + int(millis)
                    if first is None or when < first:
                        first = self.first_ms = when
                    if last is None or when > last:
                        last = self.last_ms = when
                    if until is not None and when >= until:
                        continue
                    kind, fields = parse_body(line[_TIME_WIDTH + 1 :].rstrip("\r\n"))
                except ValueError as exc:  # RecordSyntaxError, or int() of an odd digit
                    self.problem(
                        str(exc)
                        if isinstance(exc, RecordSyntaxError)
                        else (f"expected a UTC time like {_TIME_EXAMPLE}")
                    )
                    continue
                yield new_record(Record, (when, kind, fields))
        finally:
            self.lines += number


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="\n")
    # Records end with "\n" only; a stray "\r" is not a line break.
    return path.open(encoding="utf-8", errors="replace", newline="\n")
