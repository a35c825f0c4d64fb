"""FlexLM ``lmstat`` text from netmap_lm status replies (SPEC §7).  Pure: no I/O.

Theory of operation.  Monitoring tools written for FlexLM (Nagios
check_flexlm, the Prometheus flexlm_exporter, the Slurm license-manager agent)
run ``lmutil lmstat`` and read its text with regular expressions.  This module
writes that text from what ``netmap-lm`` servers report, so those tools work
unchanged.  The layout follows published FlexLM output (see
``tests/data/lmstat/``): the same headers, the same blank lines and
indentation, ``license``/``licenses`` singular and plural, dates as
``Ddd M/D H:MM``.  One host token names each server everywhere (the
``License server status: port@host`` header, the ``host: license server UP``
line, ``(host/port handle)`` on holder lines), because the exporter looks the
status line's host up in the header's list.

Anything a client chose (user, host, display) is printed on one line with no
control characters, so a client cannot forge extra lines in the report.

Optional fields of the status reply that this module uses when a server sends
them (older servers do not): ``server.utc_offset`` (seconds east of UTC, for
the server's local time), per feature ``reservations``
(``[{count, kind, name}]``) and ``queue`` (entries waiting for a seat: user,
host, display, version, position; ``line``, ``handle`` and ``count`` if sent),
per lease ``count`` (seats held, default 1).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any

from netmap_lm import __version__
from netmap_lm.cli.output import plural

VENDOR = "netmap_lm"
DEFAULT_DISPLAY = "/dev/tty"  # what FlexLM shows for a client without a terminal

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_NOT_PRINTABLE = re.compile(r"[^\x20-\x7e]|\s")
_CONTROL = re.compile(r"[^\x20-\x7e]")
_VERSION_PREFIX = re.compile(r"\d+(?:\.\d+)*")


@dataclass(frozen=True)
class Probe:
    """What asking one server of the list gave: its status reply, or why not."""

    host: str  # the host token printed everywhere for this server
    port: int
    report: dict[str, Any] | None = None
    error: str | None = None  # FlexLM-style reason text when there is no report

    @property
    def up(self) -> bool:
        return self.report is not None

    @property
    def server(self) -> dict[str, Any]:
        return dict((self.report or {}).get("server") or {})


# -- small pieces -----------------------------------------------------------------------


def _zone(report: dict[str, Any] | None, tz: tzinfo | None) -> tzinfo | None:
    if tz is not None:
        return tz
    offset = (report or {}).get("server", {}).get("utc_offset")
    if isinstance(offset, int) and abs(offset) < 86400:
        return timezone(timedelta(seconds=offset))
    return None  # the local time zone of this machine


def _local(seconds: float, tz: tzinfo | None) -> datetime:
    if tz is None:
        return datetime.fromtimestamp(seconds).astimezone()
    return datetime.fromtimestamp(seconds, tz)


def stamp(seconds: float, tz: tzinfo | None = None) -> str:
    """``Sat 11/28 9:15`` — how lmstat shows when a license was checked out."""
    t = _local(seconds, tz)
    return f"{_DAYS[t.weekday()]} {t.month}/{t.day} {t.hour}:{t.minute:02d}"


def status_time(seconds: float, tz: tzinfo | None = None) -> str:
    """``Sat 11/28/2026 9:15`` — the time in ``Flexible License Manager status on``."""
    t = _local(seconds, tz)
    return f"{_DAYS[t.weekday()]} {t.month}/{t.day}/{t.year} {t.hour}:{t.minute:02d}"


def expiry(text: str | None) -> str:
    """``2026-12-30`` → ``30-dec-2026``; ``permanent`` stays ``permanent``."""
    if not text or text == "permanent":
        return "permanent"
    try:
        d = date.fromisoformat(text)
    except ValueError:
        return token(text)
    return f"{d.day}-{_MONTHS[d.month - 1]}-{d.year}"


def version_token(text: Any) -> str:
    """``0.1.0`` → ``v0.1.0``; only the leading dotted number (tools read ``v[\\d.]+``)."""
    match = _VERSION_PREFIX.match(str(text or ""))
    return f"v{match.group(0) if match else '0'}"


def token(value: Any, fallback: str = "?") -> str:
    """One word for a field a client chose: no spaces, no control characters."""
    text = _NOT_PRINTABLE.sub("_", str(value if value is not None else ""))
    return text or fallback


def user_text(value: Any, fallback: str = "?") -> str:
    """Text as FlexLM prints it (spaces kept), on one line."""
    text = _CONTROL.sub("?", str(value if value is not None else "")).strip()
    return text or fallback


# -- the parts of the report ------------------------------------------------------------


def banner(program: str = "lmutil") -> str:
    """The first line of every lmutil output (tools skip it)."""
    return (
        f"{program} - Copyright (c) netmap_lm contributors. Apache-2.0. "
        f"netmap_lm {__version__} (FlexLM lmstat compatible)"
    )


def version_banner(program: str, build: int, arch: str) -> str:
    """``lmstat -v``: the banner and ``lmstat vX.Y.Z build N ARCH`` (flexlm_exporter reads it)."""
    return f"{banner(program)}\nlmstat {version_token(__version__)} build {build} {arch}\n"


def heading(now: float, program: str = "lmutil", tz: tzinfo | None = None) -> list[str]:
    return [banner(program), f"Flexible License Manager status on {status_time(now, tz)}", ""]


def connect_error(detail: str | None) -> str:
    """FlexLM's text for a server that does not answer."""
    return f"Cannot connect to license server system. ({detail or '-15,570'})"


def master_of(probes: Sequence[Probe]) -> Probe | None:
    """The first server of the list that answered: its report is the one shown."""
    return next((p for p in probes if p.up), None)


def server_section(probes: Sequence[Probe], license_path: str | None = None) -> list[str]:
    """``License server status`` and ``Vendor daemon status``, one line per server."""
    master = master_of(probes)
    listed = ",".join(f"{p.port}@{p.host}" for p in probes)
    lines = [f"License server status: {listed}"]
    shown = master or probes[0]
    path = license_path
    if master is not None:
        path = str(master.server.get("license") or path or "")
    lines.append(f"    License file(s) on {shown.host}: {user_text(path, 'netmap_lm')}:")
    lines.append("")
    for probe in probes:
        if probe.up:
            role = " (MASTER)" if probe is master else ""
            version = version_token(probe.server.get("version"))
            lines.append(f"    {probe.host}: license server UP{role} {version}")
        else:
            lines.append(f"    {probe.host}: {connect_error(probe.error)}")
    lines.append("")
    if master is not None:
        version = version_token(master.server.get("version"))
        lines += [f"Vendor daemon status (on {master.host}):", "", f"    {VENDOR}: UP {version}"]
        lines.append("")
    return lines


def _feature_type(kind: str | None) -> str:
    # FlexLM models named-user licenses as floating ones restricted by user list.
    return "nodelocked license" if kind == "nodelocked" else "floating license"


def _who(entry: dict[str, Any], host: str, port: int, line_version: Any) -> str:
    """``user host display (vVER) (server/port handle)``.

    ``VER`` is the version the client asked for, as in FlexLM; a client that
    asked for any version (``0``) is shown with the version of its license line.
    """
    asked = str(entry.get("version") or "0")
    shown = line_version if asked in ("0", "0.0") and line_version else asked
    number = int(entry.get("handle") or entry.get("position") or 0)  # queue: its position
    return (
        f"{user_text(entry.get('user'))} {token(entry.get('host'))} "
        f"{token(entry.get('display'), DEFAULT_DISPLAY)} ({version_token(shown)}) "
        f"({host}/{port} {number})"
    )


def holder_line(
    lease: dict[str, Any], host: str, port: int, tz: tzinfo | None = None, line_version: Any = None
) -> str:
    """``    user host display (vVER) (server/port handle), start Ddd M/D H:MM[, N licenses]``."""
    count = int(lease.get("count") or 1)
    when = stamp((lease.get("granted_at") or 0) / 1000, tz)
    text = f"    {_who(lease, host, port, line_version)}, start {when}"
    return text + (f", {count} licenses" if count > 1 else "")


def queued_line(entry: dict[str, Any], host: str, port: int, line_version: Any = None) -> str:
    """``    user host display (vVER) (server/port handle) queued for N license(s)``."""
    count = int(entry.get("count") or 1)
    return f"    {_who(entry, host, port, line_version)} queued for {plural(count, 'license')}"


def reservation_line(entry: dict[str, Any], host: str, port: int) -> str:
    """``\\tN RESERVATIONs for GROUP name (server/port)``, as FlexLM lists them."""
    count = int(entry.get("count") or 1)
    word = "RESERVATION" if count == 1 else "RESERVATIONs"
    kind = token(entry.get("kind") or entry.get("type") or "USER").upper()
    return f"\t{count} {word} for {kind} {token(entry.get('name'))} ({host}/{port})"


def feature_block(
    feature: dict[str, Any], host: str, port: int, tz: tzinfo | None = None
) -> list[str]:
    """``Users of NAME: ...`` and, when in use, one block per license line."""
    name = token(feature.get("name"))
    seats = feature.get("seats")
    leases = list(feature.get("leases") or [])
    if seats is None:
        # FlexLM lists no users of uncounted licenses; printing them under this
        # header would make parsers count them for the feature before it.
        return [f"Users of {name}:  (Uncounted, node-locked)", ""]
    in_use = int(feature.get("in_use") or 0)
    lines = [
        f"Users of {name}:  (Total of {plural(int(seats), 'license')} issued;  "
        f"Total of {plural(in_use, 'license')} in use)",
        "",
    ]
    reservations = list(feature.get("reservations") or [])
    queue = list(feature.get("queue") or [])
    if not leases and not reservations and not queue:
        return lines
    pools = list(feature.get("lines") or []) or [{"id": None, "version": "0", "type": "floating"}]
    known = {pool.get("id") for pool in pools}
    for index, pool in enumerate(pools):
        first = index == 0
        held = [
            x
            for x in leases
            if x.get("line") == pool.get("id") or (first and x.get("line") not in known)
        ]
        waiting = [
            x
            for x in queue
            if x.get("line") == pool.get("id") or (first and x.get("line") not in known)
        ]
        if not held and not waiting and not (first and reservations):
            continue
        lines.append(
            f'  "{name}" {version_token(pool.get("version"))}, vendor: {VENDOR}, '
            f"expiry: {expiry(pool.get('expires'))}"
        )
        lines.append(f"  {_feature_type(pool.get('type'))}")
        lines.append("")
        if first:
            lines += [reservation_line(r, host, port) for r in reservations]
        lines += [holder_line(x, host, port, tz, pool.get("version")) for x in held]
        lines += [queued_line(x, host, port, pool.get("version")) for x in waiting]
        lines.append("")
    return lines


def feature_section(
    report: dict[str, Any],
    host: str,
    port: int,
    *,
    only: str | None = None,
    tz: tzinfo | None = None,
    title: bool = True,
) -> list[str]:
    """``Feature usage info:`` and the block of each feature (or of ``only``)."""
    zone = _zone(report, tz)
    features = list(report.get("features") or [])
    if only is not None:
        features = [f for f in features if f.get("name") == only]
        if not features:
            name = token(only)
            return [
                f"Users of {name}:  Cannot get users of {name}: No such feature exists. (-5,222)",
                "",
            ]
    lines = ["Feature usage info:", ""] if title else []
    for feature in features:
        lines += feature_block(feature, host, port, zone)
    return lines


def feature_info(report: dict[str, Any], only: str | None = None) -> list[str]:
    """``lmstat -i``: one row per license line (feature, version, seats, expiry, vendor)."""
    lines = [
        f"{'Feature':<32}{'Version':<12}{'#licenses':<13}{'Expires':<13}Vendor",
        f"{'_______':<32}{'_________':<12}{'_________':<13}{'__________':<13}______",
    ]
    for feature in report.get("features") or []:
        if only is not None and feature.get("name") != only:
            continue
        for pool in feature.get("lines") or []:
            seats = pool.get("seats")
            lines.append(
                f"{token(feature.get('name')):<31} {token(pool.get('version')):<12} "
                f"{seats if seats is not None else 0!s:<11} "
                f"{expiry(pool.get('expires')):<12} {VENDOR}"
            )
    lines.append("")
    return lines


# -- whole outputs ----------------------------------------------------------------------


def render(
    probes: Sequence[Probe],
    now: float,
    *,
    mode: str = "a",
    feature: str | None = None,
    program: str = "lmutil",
    license_path: str | None = None,
    tz: tzinfo | None = None,
) -> str:
    """The whole text of one ``lmstat`` run.

    ``mode``: ``"s"`` server and vendor daemon status only (plain ``lmstat``),
    ``"a"`` everything (``-a``), ``"f"`` feature usage only (``-f [FEATURE]``),
    ``"i"`` license line information (``-i [FEATURE]``).  With no server up the
    text is FlexLM's ``Error getting status`` line.
    """
    master = master_of(probes)
    zone = _zone(master.report if master else None, tz)
    lines = heading(now, program, zone)
    if master is None:
        first = probes[0] if probes else None
        lines.append(f"Error getting status: {connect_error(first.error if first else None)}")
        return "\n".join(lines) + "\n"
    report: dict[str, Any] = master.report or {}
    if mode in ("s", "a"):
        lines += server_section(probes, license_path)
    if mode == "a":
        lines += feature_section(report, master.host, master.port, only=feature, tz=zone)
    elif mode == "f":
        lines += feature_section(
            report, master.host, master.port, only=feature, tz=zone, title=False
        )
    elif mode == "i":
        lines += feature_info(report, feature)
    return "\n".join(lines) + "\n"


def format_report(
    report: dict[str, Any], now: float, *, program: str = "lmutil", tz: tzinfo | None = None
) -> str:
    """``lmstat -a`` text for one status reply (``netmap-lm status --lmstat``)."""
    srv = report.get("server", {})
    probe = Probe(
        host=token(srv.get("host"), "localhost"), port=int(srv.get("port") or 0), report=report
    )
    return render([probe], now, mode="a", program=program, tz=tz)
