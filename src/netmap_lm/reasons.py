"""Reason codes (SPEC §5) and the exit codes they map to (SPEC §9).

Reason codes are a stable, machine-readable contract: clients in other
languages switch on them, so they are plain strings and never renamed.
"""

from __future__ import annotations

# Server-side refusals.
SEATS_EXHAUSTED = "SEATS_EXHAUSTED"
NO_SUCH_FEATURE = "NO_SUCH_FEATURE"
EXPIRED = "EXPIRED"
NOT_YET_VALID = "NOT_YET_VALID"
VERSION_NOT_LICENSED = "VERSION_NOT_LICENSED"
NOT_AUTHORIZED = "NOT_AUTHORIZED"
HOSTID_MISMATCH = "HOSTID_MISMATCH"
LICENSE_INVALID = "LICENSE_INVALID"
CLOCK_TAMPERED = "CLOCK_TAMPERED"
RATE_LIMITED = "RATE_LIMITED"
LEASE_UNKNOWN = "LEASE_UNKNOWN"
ADMIN_REQUIRED = "ADMIN_REQUIRED"
PROTOCOL_ERROR = "PROTOCOL_ERROR"
# Client-side only.
SERVER_UNREACHABLE = "SERVER_UNREACHABLE"
SERVER_NOT_TRUSTED = "SERVER_NOT_TRUSTED"
# Not a protocol reason: the local configuration (keys, files, arguments) is bad.
CONFIG_ERROR = "CONFIG_ERROR"

SERVER_REASONS = frozenset(
    {
        SEATS_EXHAUSTED,
        NO_SUCH_FEATURE,
        EXPIRED,
        NOT_YET_VALID,
        VERSION_NOT_LICENSED,
        NOT_AUTHORIZED,
        HOSTID_MISMATCH,
        LICENSE_INVALID,
        CLOCK_TAMPERED,
        RATE_LIMITED,
        LEASE_UNKNOWN,
        ADMIN_REQUIRED,
        PROTOCOL_ERROR,
    }
)

# sysexits(3) codes, SPEC §9.
EX_OK = 0
EX_UNAVAILABLE = 69
EX_TEMPFAIL = 75
EX_PROTOCOL = 76
EX_NOPERM = 77
EX_CONFIG = 78

_EXIT_CODES = {
    SEATS_EXHAUSTED: EX_TEMPFAIL,
    RATE_LIMITED: EX_TEMPFAIL,
    EXPIRED: EX_NOPERM,
    NOT_YET_VALID: EX_NOPERM,
    NO_SUCH_FEATURE: EX_NOPERM,
    VERSION_NOT_LICENSED: EX_NOPERM,
    NOT_AUTHORIZED: EX_NOPERM,
    HOSTID_MISMATCH: EX_NOPERM,
    LICENSE_INVALID: EX_NOPERM,
    CLOCK_TAMPERED: EX_NOPERM,
    ADMIN_REQUIRED: EX_NOPERM,
    SERVER_UNREACHABLE: EX_UNAVAILABLE,
    SERVER_NOT_TRUSTED: EX_PROTOCOL,
    PROTOCOL_ERROR: EX_PROTOCOL,
    # A lease the server no longer knows is lost: the application may retry.
    LEASE_UNKNOWN: EX_TEMPFAIL,
    CONFIG_ERROR: EX_CONFIG,
}


def exit_code(reason: str) -> int:
    """The sysexits code a command exits with for a refusal with ``reason``."""
    return _EXIT_CODES.get(reason, EX_PROTOCOL)


class LicenseDenied(Exception):
    """A license was refused; ``reason`` is one of the stable reason codes."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message

    @property
    def exit_code(self) -> int:
        return exit_code(self.reason)
