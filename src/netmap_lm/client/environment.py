"""What a client takes from its environment: where the servers are, who is
asking, and where this user's files live.

- Server address lists, FlexLM style (SPEC §2): ``1493@lm1,lm2:1493,[::1]:1493``,
  else ``NETMAP_LM_SERVERS``, else ``1493@localhost``.
- Who is asking (SPEC §9): user, host, display and project, the host ids of
  node-locked lines and borrows; ``NETMAP_LM_*`` variables override each.
- This user's data, ``$XDG_DATA_HOME/netmap-lm``: demo keys, borrowed seats.

One module, because a checkout needs all of it at every application start
and every module imported costs that start a little (docs/performance.md).
"""

from __future__ import annotations

import _socket
import os

from netmap_lm import DEFAULT_PORT, reasons
from netmap_lm.reasons import LicenseDenied

# -- server address lists -------------------------------------------------------------

DEFAULT_SERVERS = f"{DEFAULT_PORT}@localhost"
SERVERS_ENV = "NETMAP_LM_SERVERS"


class AddressError(LicenseDenied, ValueError):
    """A server list cannot be read; the message shows the bad entry.

    A refusal with ``CONFIG_ERROR`` (exit 78), so that an application's
    ``except LicenseDenied`` covers a bad ``NETMAP_LM_SERVERS`` too."""

    def __init__(self, message: str) -> None:
        super().__init__(reasons.CONFIG_ERROR, message)


def parse_servers(spec: str | None) -> list[tuple[str, int]]:
    """``"1493@lm1,lm2:1600"`` → ``[("lm1", 1493), ("lm2", 1600)]``.

    ``None`` reads ``NETMAP_LM_SERVERS`` (named in the error when it cannot be
    read) and falls back to ``1493@localhost``.
    """
    if spec is None:
        from_env = os.environ.get(SERVERS_ENV)
        if from_env:
            try:
                return parse_servers(from_env)
            except AddressError as exc:
                raise AddressError(f"{SERVERS_ENV}: {exc.message}") from None
        spec = DEFAULT_SERVERS
    result = []
    for entry in spec.split(","):
        entry = entry.strip()
        if not entry:
            continue
        result.append(_parse_one(entry))
    if not result:
        raise AddressError(f"no server in {spec!r}; expected e.g. 1493@lmhost")
    return result


def _parse_one(entry: str) -> tuple[str, int]:
    host, port_text = entry, str(DEFAULT_PORT)
    if "@" in entry:
        port_text, host = entry.split("@", 1)
    elif entry.startswith("["):
        close = entry.find("]")
        if close < 0:
            raise AddressError(f"{entry!r}: missing ']' after an IPv6 address")
        host, rest = entry[1:close], entry[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise AddressError(f"{entry!r}: expected ':PORT' after ']'")
            port_text = rest[1:]
    elif entry.count(":") == 1:
        host, port_text = entry.split(":")
    host = host.strip("[]")
    if not host:
        raise AddressError(f"{entry!r}: no host name")
    # isdigit() alone takes "²" and "١٢" (which int() reads, or raises on)
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        raise AddressError(f"{entry!r}: port {port_text!r} is not a number from 1 to 65535")
    return host, int(port_text)


def format_address(address: tuple[str, int]) -> str:
    return f"{address[1]}@{address[0]}"


# -- who is asking ----------------------------------------------------------------------

MAX_HOST_IDS = 8  # sent with a checkout; a host with many virtual interfaces has dozens


def current_user() -> str:
    name = os.environ.get("NETMAP_LM_USER")
    if name:
        return name
    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def current_host() -> str:
    return os.environ.get("NETMAP_LM_HOST") or _socket.gethostname()


def current_display() -> str:
    """The X display, else the terminal, else nothing (as FlexLM shows it)."""
    if os.environ.get("DISPLAY"):
        return os.environ["DISPLAY"]
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd):
                return os.ttyname(fd)
        except OSError:
            continue
    return ""


def current_project() -> str:
    return os.environ.get("NETMAP_LM_PROJECT") or os.environ.get("LM_PROJECT", "")


def current_host_ids() -> str:
    """This machine's host ids, comma-separated (node-locked lines, borrows);
    ``NETMAP_LM_HOSTID`` overrides, like FlexLM's hostid override for tests."""
    override = os.environ.get("NETMAP_LM_HOSTID")
    if override is not None:
        return override
    from netmap_lm.licensing.hostid import host_ids

    return ",".join(host_ids()[:MAX_HOST_IDS])


# -- this user's files ------------------------------------------------------------------


def data_dir() -> str:
    """This user's netmap-lm data: ``$XDG_DATA_HOME/netmap-lm`` (demo keys, borrows)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return os.path.join(base, "netmap-lm")


def borrow_dir() -> str:
    return os.path.join(data_dir(), "borrow")


def borrow_path(feature: str) -> str:
    """Where the borrow of ``feature`` is kept (``client/borrow.py``)."""
    return os.path.join(borrow_dir(), f"{feature}.json")
