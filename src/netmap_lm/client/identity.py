"""Who is asking: user, host, display, pid and project (SPEC §9)."""

from __future__ import annotations

import _socket
import os

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
