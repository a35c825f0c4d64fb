"""How the command line fails: one line on stderr with a reason code (SPEC §11)."""

from __future__ import annotations

from netmap_lm import reasons


class CliError(Exception):
    """A failure to report as ``netmap-lm: REASON: message`` and exit with its code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    @property
    def exit_code(self) -> int:
        return reasons.exit_code(self.reason)


def config_error(message: str) -> CliError:
    return CliError(reasons.CONFIG_ERROR, message)
