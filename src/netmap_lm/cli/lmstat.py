"""``netmap-lmutil lmstat`` and ``netmap-lmstat``: FlexLM ``lmstat`` for netmap_lm (SPEC §7).

Monitoring tools run a configured ``lmutil``/``lmstat`` path with FlexLM
arguments and parse its text.  These two console scripts take the same
arguments (``-c SPEC [-a | -f [FEATURE] | -i [FEATURE]]``, ``-v``), ask each
server of the list for its status over the verified netmap_lm protocol and
print what ``lmstat_format`` makes of the replies.

Exit codes: 0 when a server answered; otherwise the sysexits codes of
``netmap-lm`` (SPEC §9): 69 no server reachable, 76 only untrusted servers,
77 ``-f``/``-i`` of a feature the server does not have, 78 bad arguments,
vendor key or license file.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from collections.abc import Sequence
from typing import NoReturn

from netmap_lm import reasons
from netmap_lm.cli import lmstat_format as fmt
from netmap_lm.client.environment import (
    DEFAULT_PORT,
    SERVERS_ENV,
    AddressError,
    parse_servers,
)

DEFAULT_TIMEOUT = 5.0
MAX_TIMEOUT = 3600.0  # seconds: an hour is ample for -t; a socket cannot take 1e10
ALL = "\0all"  # -f/-i given without a feature: every feature
_ERRNO = re.compile(r"\[Errno (-?\d+)\] ([^)]*)")


class LmstatError(Exception):
    """A failure before any server was asked; the message is printed as is."""

    def __init__(self, message: str, code: int = reasons.EX_CONFIG) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(reasons.EX_CONFIG, f"{self.prog}: {message}\n")


def _seconds(text: str) -> float:
    """``-t``: seconds above 0, at most ``MAX_TIMEOUT`` (``inf`` would break the socket)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= MAX_TIMEOUT:  # also false for nan
        raise argparse.ArgumentTypeError(
            f"{text!r}: give the seconds to wait for a server, above 0 and at most {MAX_TIMEOUT:g}"
        )
    return value


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description="FlexLM lmstat for netmap_lm servers: the text monitoring tools parse.",
        add_help=False,
    )
    parser.add_argument("-a", action="store_true", help="display everything")
    parser.add_argument("-A", action="store_true", help="list all active licenses (as -a)")
    parser.add_argument(
        "-c", metavar="SPEC", help="port@host list (',' or ':' separated) or license file"
    )
    parser.add_argument(
        "-f", nargs="?", const=ALL, metavar="FEATURE", help="usage of FEATURE (or of all features)"
    )
    parser.add_argument(
        "-i",
        nargs="?",
        const=ALL,
        metavar="FEATURE",
        help="license line information of FEATURE (or of all)",
    )
    parser.add_argument(
        "-s", nargs="?", const=ALL, metavar="SERVER", help="license server status (the default)"
    )
    parser.add_argument(
        "-S",
        nargs="?",
        const=ALL,
        metavar="DAEMON",
        help="users of the vendor daemon's licenses (as -a)",
    )
    parser.add_argument(
        "-t", type=_seconds, metavar="SECONDS", default=DEFAULT_TIMEOUT, help="connection timeout"
    )
    parser.add_argument("-v", action="store_true", help="display the version")
    parser.add_argument("-lm", action="store_true", help="status of the license manager")
    parser.add_argument("-vd", action="store_true", help="status of the vendor daemon")
    parser.add_argument(
        "--vendor-key", metavar="PUB", help="pinned vendor public key (else NETMAP_LM_VENDOR_KEY)"
    )
    parser.add_argument("-help", "-h", "--help", action="help", help="print this message")
    return parser


# -- where to ask -----------------------------------------------------------------------


def _looks_like_file(entry: str) -> bool:
    return "@" not in entry and (
        "/" in entry or os.sep in entry or entry.lower().endswith((".lic", ".dat"))
    )


def servers_of_file(path: str) -> list[tuple[str, int]]:
    """The ``SERVER`` lines of a license file (signatures are the server's business)."""
    from netmap_lm.licensing import licensefile

    try:
        parsed = licensefile.read(path, None)
    except licensefile.LicenseFileError as exc:
        raise LmstatError(f"lmstat: {exc}") from None
    if not parsed.servers:
        raise LmstatError(f"lmstat: {path}: No SERVER lines in license file. (-13,66)")
    return [(server.host, server.port) for server in parsed.servers]


def _entry(entry: str) -> list[tuple[str, int]]:
    if os.path.isfile(entry):
        return servers_of_file(entry)
    if _looks_like_file(entry):
        raise LmstatError(
            f'lmstat: Cannot find license file "{entry}". (-1,359:2 "No such file or directory")'
        )
    if entry.startswith("@"):  # FlexLM's "@host": the default port
        entry = f"{DEFAULT_PORT}{entry}"
    try:
        return parse_servers(entry)
    except AddressError as exc:
        raise LmstatError(f"lmstat: -c: {exc.message}") from None


def resolve(spec: str | None) -> tuple[list[tuple[str, int]], str | None]:
    """``-c`` → the servers to ask, and the license file named (if one was).

    ``spec`` is a license file with ``SERVER`` lines, or a list of
    ``port@host`` (also ``@host``, ``host:port``) separated by ``,`` or ``;``
    or, FlexLM style, by ``:`` (``1493@a:1493@b``).  Without ``-c``:
    ``NETMAP_LM_SERVERS``, else ``1493@localhost``.
    """
    if spec is None:
        try:
            return parse_servers(os.environ.get(SERVERS_ENV) or None), None
        except AddressError as exc:
            raise LmstatError(f"lmstat: {SERVERS_ENV}: {exc.message}") from None
    servers: list[tuple[str, int]] = []
    license_path: str | None = None
    for chunk in re.split(r"[,;]", spec):
        chunk = chunk.strip()
        if not chunk:
            continue
        parts = chunk.split(":")
        split = (
            not os.path.isfile(chunk)
            and len(parts) > 1
            and all("@" in p or os.path.isfile(p) for p in parts)
        )
        for entry in parts if split else [chunk]:
            if os.path.isfile(entry) and license_path is None:
                license_path = entry
            for address in _entry(entry):
                if address not in servers:
                    servers.append(address)
    if not servers:
        raise LmstatError(f"lmstat: -c {spec!r}: no license server named")
    return servers, license_path


# -- asking -----------------------------------------------------------------------------


def _vendor_key(given: str | None) -> str:
    """``--vendor-key``, else ``NETMAP_LM_VENDOR_KEY``, else the demo key: as ``netmap-lm``."""
    from netmap_lm.cli.errors import CliError
    from netmap_lm.cli.keypath import vendor_key_path

    try:
        return str(vendor_key_path(given))
    except CliError as exc:
        raise LmstatError(f"lmstat: {exc.reason}: {exc.message}") from None


def _flexlm_reason(message: str) -> str:
    """``... ([Errno 111] Connection refused)`` → ``-15,570:111 "Connection refused"``."""
    match = _ERRNO.search(message)
    if match:
        return f'-15,570:{match.group(1)} "{match.group(2).strip()}"'
    detail = message.rsplit(": ", 1)[-1] if ": " in message else message
    return f'-15,570 "{fmt.user_text(detail)}"'


def probe(address: tuple[str, int], vendor_key: str, timeout: float) -> tuple[fmt.Probe, str, str]:
    """Ask one server for its status: the probe, and the reason code and message if down."""
    from netmap_lm.client.environment import format_address
    from netmap_lm.client.sync import LicenseClient
    from netmap_lm.reasons import LicenseDenied

    host, port = address
    try:
        client = LicenseClient(
            servers=format_address(address), vendor_key=vendor_key, timeout=timeout
        )
    except LicenseDenied as exc:
        raise LmstatError(f"lmstat: {exc.reason}: {exc.message}") from None
    try:
        report = client.status()
    except LicenseDenied as exc:
        if exc.reason == reasons.SERVER_NOT_TRUSTED:
            detail = f'-15,570 "not a genuine netmap_lm server: {fmt.user_text(exc.message)}"'
        else:
            detail = _flexlm_reason(exc.message)
        return fmt.Probe(host=host, port=port, error=detail), exc.reason, exc.message
    finally:
        client.close()
    return fmt.Probe(host=host, port=port, report=report), "", ""


def _arch() -> str:
    """``x86_64_linux``: a FlexLM-like platform word (``lmstat -v`` ends with one)."""
    text = f"{platform.machine() or 'unknown'}_{platform.system() or 'unknown'}".lower()
    return re.sub(r"\W", "_", text, flags=re.ASCII)


def _mode(args: argparse.Namespace) -> tuple[str, str | None]:
    """``s`` servers only (plain lmstat), ``a`` all, ``f`` usage, ``i`` line information."""

    def name(value: str | None) -> str | None:
        return None if value in (None, ALL) else value

    if args.i is not None:
        return "i", name(args.i)
    if args.a or args.A or args.S is not None:
        return "a", name(args.f)
    if args.f is not None:
        return "f", name(args.f)
    return "s", None


def main(argv: Sequence[str], program: str) -> int:
    """One ``lmstat`` run; returns the exit code."""
    parser = _parser(f"{program} lmstat" if program == "lmutil" else program)
    args = parser.parse_args(list(argv))
    if args.v:
        sys.stdout.write(fmt.version_banner(program, 0, _arch()))
        return 0
    mode, feature = _mode(args)
    try:
        servers, license_path = resolve(args.c)
        key = _vendor_key(args.vendor_key)
        results = [probe(address, key, max(0.1, args.t)) for address in servers]
    except LmstatError as exc:
        print(str(exc), file=sys.stderr)
        return exc.code
    probes = [p for p, _, _ in results]
    sys.stdout.write(
        fmt.render(
            probes,
            time.time(),
            mode=mode,
            feature=feature,
            program=program,
            license_path=license_path,
        )
    )
    sys.stdout.flush()
    master = fmt.master_of(probes)
    if master is None:
        codes = [reason for _, reason, _ in results]
        reason = (
            reasons.SERVER_NOT_TRUSTED
            if reasons.SERVER_NOT_TRUSTED in codes
            else codes[0] or reasons.SERVER_UNREACHABLE
        )
        detail = "; ".join(message for _, _, message in results)
        print(f"{program}: {reason}: {detail}", file=sys.stderr)
        return reasons.exit_code(reason)
    if feature is not None and mode in ("a", "f", "i"):
        names = {f.get("name") for f in (master.report or {}).get("features") or []}
        if feature not in names:
            return reasons.exit_code(reasons.NO_SUCH_FEATURE)
    return 0


def _run(argv: Sequence[str], program: str) -> NoReturn:
    try:
        code = main(argv, program)
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = 0
    sys.exit(code)


def lmutil_entry() -> None:
    """``netmap-lmutil lmstat ARGS`` (only the ``lmstat`` utility of lmutil)."""
    argv = sys.argv[1:]
    if not argv or argv[0] in ("-h", "-help", "--help"):
        print(
            "usage: netmap-lmutil lmstat [-c SPEC] [-a | -f [FEATURE] | -i [FEATURE]] [-v]\n"
            "       FlexLM lmutil for netmap_lm servers; only 'lmstat' is provided."
        )
        sys.exit(0 if argv else reasons.EX_CONFIG)
    if argv[0] != "lmstat":
        print(
            f"netmap-lmutil: {argv[0]!r} is not provided; only 'lmstat' is "
            "(use netmap-lm for administration)",
            file=sys.stderr,
        )
        sys.exit(reasons.EX_CONFIG)
    _run(argv[1:], "lmutil")


def lmstat_entry() -> None:
    """``netmap-lmstat ARGS``: the same as ``netmap-lmutil lmstat ARGS``."""
    _run(sys.argv[1:], "lmstat")
