"""The license file (SPEC §4): parsing, validation, signing and verification.

Theory of operation.  A license file is text, one record per line.  Each
line is validated on its own and carries its own vendor signature, so one
bad line (a typo, an edited seat count) is reported with its file and line
number and left out, while every other valid line keeps serving (SPEC §3.5).
:func:`parse` never raises for the content of a file: it returns the good
records and a list of :class:`LineProblem`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from netmap_lm.encoding import b64u_encode
from netmap_lm.licensing import lines, textfile
from netmap_lm.licensing.lines import LineSyntaxError

PERMANENT = "permanent"
LICENSE_TYPES = ("floating", "nodelocked", "named")
DUP_GROUPINGS = ("none", "user", "host", "user_host")

FEATURE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")  # options files name them too
MAX_SEATS = 10_000_000  # seats= of one line (and an options RESERVE or MAX): beyond any site
MAX_BORROW_HOURS = 8760  # borrow= (and the options MAX_BORROW_HOURS): a year
MAX_GRACE_MINUTES = 525_600  # grace=: a year
MAX_LINGER_SECONDS = 86400  # linger= (and the options LINGER): a day
_VERSION = re.compile(r"^\d{1,6}(\.\d{1,6}){0,3}$", re.ASCII)  # "٥.0" is no version
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

SERVER_KEYS = {"host": True, "port": True, "key": True, "hostid": False}
FEATURE_KEYS = {
    "name": True,
    "version": True,
    "seats": True,
    "type": False,
    "start": False,
    "expires": True,
    "id": True,
    "hostid": False,
    "users": False,
    "borrow": False,
    "grace": False,
    "linger": False,
    "dup": False,
    "customer": False,
    "notice": False,
}


def parse_version(text: str) -> tuple[int, ...]:
    """``"5.10"`` → ``(5, 10)``; raises ``ValueError`` for anything else."""
    if not _VERSION.fullmatch(text):
        raise ValueError(f"version {text!r} is not dotted numbers like 5.0")
    parts = tuple(int(p) for p in text.split("."))
    return parts + (0,) * (4 - len(parts))


def format_date(day: date | None) -> str:
    """The inverse of :func:`parse_date`: ``2027-12-31``, or ``permanent`` for None."""
    return day.isoformat() if day else PERMANENT


def near_names(name: str, names: list[str], n: int) -> list[str]:
    """Up to ``n`` feature names near ``name``: a case slip first, else a typo
    (what a message suggests for a name that is not licensed)."""
    same = [other for other in names if other.lower() == name.lower()]
    if same:
        return same[:n]
    import difflib

    return difflib.get_close_matches(name, names, n=n, cutoff=0.6)


def parse_date(text: str) -> date | None:
    """An ISO date, or ``None`` for ``permanent``."""
    if text == PERMANENT:
        return None
    if not _DATE.fullmatch(text):
        raise ValueError(f"date {text!r} is not YYYY-MM-DD or 'permanent'")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:  # 2027-02-30: the shape is right, the day is not
        raise ValueError(f"date {text!r} is not a day of the calendar ({exc})") from None


@dataclass(frozen=True)
class ServerLine:
    host: str
    port: int
    key: str  # base64url Ed25519 public key of the server
    hostid: str | None
    text: str  # the line as written, carried in every hello (SPEC §3.4)
    lineno: int


@dataclass(frozen=True)
class FeatureLine:
    name: str
    version: str
    seats: int | None  # None: uncounted
    type: str
    start: date | None
    expires: date | None
    id: str
    text: str  # the line as written, carried in every grant (SPEC §3.4)
    lineno: int
    hostid: str | None = None
    users: tuple[str, ...] = ()
    borrow_hours: int = 0
    grace_minutes: int = 0
    linger_seconds: int = 0
    dup: str = "none"
    customer: str | None = None
    notice: str | None = None

    @property
    def version_key(self) -> tuple[int, ...]:
        return parse_version(self.version)


@dataclass(frozen=True)
class LineProblem:
    path: str
    lineno: int
    message: str
    feature: str | None = None  # the name= of a refused FEATURE line, if readable
    bad_signature: bool = False  # well formed, but not signed by the vendor key given

    def __str__(self) -> str:
        return f"{self.path}:{self.lineno}: {self.message}"


class SignatureMismatch(ValueError):
    """A line's vendor signature does not verify with the key given."""


@dataclass
class LicenseFile:
    path: str
    servers: list[ServerLine] = field(default_factory=list)
    features: list[FeatureLine] = field(default_factory=list)
    problems: list[LineProblem] = field(default_factory=list)

    def server_for_key(self, key_text: str) -> ServerLine | None:
        return next((s for s in self.servers if s.key == key_text), None)

    @property
    def another_vendors(self) -> bool:
        """Whether no line verifies and each fails only its signature: most
        likely the vendor key given is not the one that signed the file."""
        return (
            not self.servers
            and not self.features
            and bool(self.problems)
            and all(p.bad_signature for p in self.problems)
        )


class LicenseFileError(ValueError):
    """The file as a whole cannot be used (unreadable); the message names it."""


def read(path: Path | str, vendor_key: Ed25519PublicKey | None) -> LicenseFile:
    """Read and verify a license file; per-line problems are collected, not raised."""
    try:
        text = textfile.decode(Path(path).read_bytes(), "a license file")
    except OSError as exc:
        raise LicenseFileError(f"{path}: cannot read license file ({exc.strerror})") from None
    except textfile.NotText as exc:
        raise LicenseFileError(exc.at(path)) from None
    return parse(text, str(path), vendor_key)


def parse(text: str, path: str, vendor_key: Ed25519PublicKey | None) -> LicenseFile:
    """Parse license text.  With ``vendor_key=None`` signatures are not checked."""
    result = LicenseFile(path=path)
    seen_ids: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            record = parse_line(stripped, lineno, vendor_key)
        except ValueError as exc:
            result.problems.append(
                LineProblem(
                    path,
                    lineno,
                    f"LICENSE_INVALID: {exc}",
                    _feature_name(stripped),
                    bad_signature=isinstance(exc, SignatureMismatch),
                )
            )
            continue
        if isinstance(record, ServerLine):
            result.servers.append(record)
        else:
            if record.id in seen_ids:
                result.problems.append(
                    LineProblem(
                        path,
                        lineno,
                        f"LICENSE_INVALID: id={record.id} already used on line "
                        f"{seen_ids[record.id]}; every FEATURE line needs its own id",
                        record.name,
                    )
                )
                continue
            seen_ids[record.id] = lineno
            result.features.append(record)
    return result


def _feature_name(text: str) -> str | None:
    try:
        keyword, fields = lines.tokenize(text)
    except LineSyntaxError:
        return None
    return fields.get("name") if keyword == "FEATURE" else None


def parse_line(
    text: str, lineno: int, vendor_key: Ed25519PublicKey | None
) -> ServerLine | FeatureLine:
    """Parse and check one line; raises ``ValueError`` saying what is wrong."""
    try:
        keyword, fields = lines.tokenize(text)
    except LineSyntaxError as exc:
        raise ValueError(str(exc)) from None
    if keyword == "SERVER":
        allowed = SERVER_KEYS
    elif keyword == "FEATURE":
        allowed = FEATURE_KEYS
    else:
        raise ValueError(f"unknown keyword {keyword!r}; expected SERVER or FEATURE")
    _check_keys(keyword, fields, allowed)
    if vendor_key is not None and not lines.signature_valid(vendor_key, keyword, fields):
        raise SignatureMismatch(
            f"{keyword} line: vendor signature does not match "
            "(the line was edited, or signed by another vendor key); ask the vendor for "
            "a new line"
        )
    if keyword == "SERVER":
        return _server(fields, text, lineno)
    return _feature(fields, text, lineno)


def _check_keys(keyword: str, fields: dict[str, str], allowed: dict[str, bool]) -> None:
    for key in fields:
        if key != "sig" and key not in allowed:
            raise ValueError(
                f"unknown key {key!r} on a {keyword} line; allowed: " + ", ".join(sorted(allowed))
            )
    missing = [key for key, required in allowed.items() if required and key not in fields]
    if "sig" not in fields:
        missing.append("sig")
    if missing:
        raise ValueError(f"{keyword} line lacks " + ", ".join(f"{k}=" for k in missing))


def whole_number(text: str, low: int, high: int) -> int | None:
    """``text`` as a number from ``low`` to ``high``, or ``None``.

    ASCII digits only: ``str.isdigit`` also passes '²', which ``int`` refuses.
    Leading zeros are dropped before ``int``, and a number with more digits
    than ``high`` is out of range unread: ``int`` refuses over 4,300 digits."""
    digits = text.lstrip("0") or "0"
    if not (text.isascii() and text.isdigit()) or len(digits) > len(str(high)):
        return None
    value = int(digits)
    return value if low <= value <= high else None


def _int(fields: dict[str, str], key: str, low: int, high: int) -> int:
    value = whole_number(fields[key], low, high)
    if value is None:
        raise ValueError(f"{key}={fields[key]!r} must be a whole number from {low} to {high}")
    return value


def _server(fields: dict[str, str], text: str, lineno: int) -> ServerLine:
    from netmap_lm.licensing.keys import public_from_text

    try:
        public_from_text(fields["key"])
    except ValueError:
        raise ValueError("SERVER key= is not an Ed25519 public key in base64url") from None
    return ServerLine(
        host=fields["host"],
        port=_int(fields, "port", 1, 65535),
        key=fields["key"],
        hostid=fields.get("hostid"),
        text=text,
        lineno=lineno,
    )


def _feature(fields: dict[str, str], text: str, lineno: int) -> FeatureLine:
    if not FEATURE_NAME.fullmatch(fields["name"]):
        raise ValueError(f"name={fields['name']!r}: letters, digits, '_', '.', '-' only")
    parse_version(fields["version"])
    seats = None if fields["seats"] == "uncounted" else _int(fields, "seats", 1, MAX_SEATS)
    kind = fields.get("type", "floating")
    if kind not in LICENSE_TYPES:
        raise ValueError(f"type={kind!r}; expected one of " + ", ".join(LICENSE_TYPES))
    dup = fields.get("dup", "none")
    if dup not in DUP_GROUPINGS:
        raise ValueError(f"dup={dup!r}; expected one of " + ", ".join(DUP_GROUPINGS))
    start = parse_date(fields.get("start", PERMANENT))
    expires = parse_date(fields["expires"])
    if start and expires and expires < start:
        raise ValueError(f"expires={expires} is before start={start}")
    if kind == "nodelocked" and "hostid" not in fields:
        raise ValueError("type=nodelocked needs hostid=")
    if kind == "named" and "users" not in fields:
        raise ValueError("type=named needs users=")
    return FeatureLine(
        name=fields["name"],
        version=fields["version"],
        seats=seats,
        type=kind,
        start=start,
        expires=expires,
        id=fields["id"],
        text=text,
        lineno=lineno,
        hostid=fields.get("hostid"),
        users=tuple(u for u in fields.get("users", "").split(",") if u),
        borrow_hours=_int(fields, "borrow", 0, MAX_BORROW_HOURS) if "borrow" in fields else 0,
        grace_minutes=_int(fields, "grace", 0, MAX_GRACE_MINUTES) if "grace" in fields else 0,
        linger_seconds=_int(fields, "linger", 0, MAX_LINGER_SECONDS) if "linger" in fields else 0,
        dup=dup,
        customer=fields.get("customer"),
        notice=fields.get("notice"),
    )


def sign_line(vendor_key: Ed25519PrivateKey, keyword: str, fields: dict[str, Any]) -> str:
    """A signed license line, fields in the given order and ``sig`` last."""
    values = {key: str(value) for key, value in fields.items() if value is not None}
    sig = vendor_key.sign(lines.SIGNING_CONTEXT + lines.canonical(keyword, values).encode())
    line = lines.format_line(keyword, values, b64u_encode(sig))
    parse_line(line, 0, vendor_key.public_key())  # never write a line we would refuse
    return line
