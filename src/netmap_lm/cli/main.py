"""Entry point of ``netmap-lm``: the command group, shared options, and the
translation of every failure into one line and a sysexits code (SPEC §9, §11).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any

import click

from netmap_lm import __version__, reasons
from netmap_lm.cli.errors import CliError
from netmap_lm.reasons import LicenseDenied

JSON_HELP = "Print machine-readable JSON on stdout."


class Context:
    """What the global options said; subcommand options override them."""

    def __init__(
        self,
        server: str | None,
        vendor_key: str | None,
        as_json: bool,
        tls_ca: str | None = None,
        tls_pin: str | None = None,
    ) -> None:
        self.server = server
        self.vendor_key = vendor_key
        self.as_json = as_json
        self.tls_ca = tls_ca
        self.tls_pin = tls_pin


def client_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--server``, ``--vendor-key`` and ``--json`` on a command that talks to a server."""

    @click.option(
        "--server",
        "server",
        metavar="SPEC",
        help="port@host list (else NETMAP_LM_SERVERS, else 1493@localhost).",
    )
    @click.option(
        "--vendor-key",
        "vendor_key",
        metavar="PUB",
        help="Pinned vendor public key (else NETMAP_LM_VENDOR_KEY, else the demo key).",
    )
    @click.option("--json", "as_json", is_flag=True, default=None, help=JSON_HELP)
    @click.option(
        "--tls-ca",
        "tls_ca",
        metavar="PEM",
        envvar="NETMAP_LM_TLS_CA",
        help="Use TLS; trust this CA file (else NETMAP_LM_TLS_CA).",
    )
    @click.option(
        "--tls-pin",
        "tls_pin",
        metavar="SHA256",
        envvar="NETMAP_LM_TLS_PIN",
        help="Use TLS; accept only the certificate with this SHA-256.",
    )
    @click.pass_context
    @wraps(func)
    def wrapper(
        ctx: click.Context,
        server: str | None,
        vendor_key: str | None,
        as_json: bool | None,
        tls_ca: str | None,
        tls_pin: str | None,
        **kwargs: Any,
    ) -> Any:
        root: Context = ctx.find_root().obj
        merged = Context(
            server or root.server,
            vendor_key or root.vendor_key,
            bool(as_json) or root.as_json,
            tls_ca,
            tls_pin,
        )
        return func(merged, **kwargs)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="netmap-lm")
@click.option("--server", metavar="SPEC", help="port@host list (else NETMAP_LM_SERVERS).")
@click.option("--vendor-key", metavar="PUB", help="Pinned vendor public key file.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
def cli(ctx: click.Context, server: str | None, vendor_key: str | None, as_json: bool) -> None:
    """netmap_lm — the license manager on port 1493."""
    ctx.obj = Context(server, vendor_key, as_json)


def _register() -> None:
    from netmap_lm.cli import (
        admin_cmds,
        borrow_cmd,
        client_cmds,
        licensing_cmds,
        probe_cmd,
        report_cmd,
        serve_cmd,
    )

    cli.add_command(licensing_cmds.vendor)
    cli.add_command(licensing_cmds.server)
    cli.add_command(licensing_cmds.license_group)
    cli.add_command(licensing_cmds.hostid)
    cli.add_command(serve_cmd.serve)
    cli.add_command(client_cmds.checkout)
    cli.add_command(client_cmds.run)
    cli.add_command(client_cmds.status)
    cli.add_command(admin_cmds.remove)
    cli.add_command(admin_cmds.reread)
    cli.add_command(admin_cmds.shutdown)
    cli.add_command(admin_cmds.audit)
    cli.add_command(probe_cmd.probe)
    cli.add_command(borrow_cmd.borrow)
    cli.add_command(report_cmd.report)


_register()


def _wants_json(argv: Sequence[str]) -> bool:
    return "--json" in argv


# What to check when no server answered (on stderr only: --json keeps the message as is).
UNREACHABLE_HINT = (
    " (is the server running, on that host and port? "
    "'netmap-lm probe HOST:PORT' says what answers there)"
)


def report_error(reason: str, message: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"ok": False, "reason": reason, "message": message}))
    hint = UNREACHABLE_HINT if reason == reasons.SERVER_UNREACHABLE else ""
    click.echo(f"netmap-lm: {reason}: {message}{hint}", err=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (SPEC §9) instead of raising."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = cli.main(args=args, prog_name="netmap-lm", standalone_mode=False)
    except CliError as exc:
        report_error(exc.reason, exc.message, _wants_json(args))
        return exc.exit_code
    except LicenseDenied as exc:
        # A refusal from a server or the client's checks: its reason decides the exit code.
        report_error(exc.reason, exc.message, _wants_json(args))
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("netmap-lm: interrupted", err=True)
        return 130
    except click.UsageError as exc:
        # Bad arguments are a configuration error (exit 78), with click's hint.
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        report_error(reasons.CONFIG_ERROR, f"{exc.format_message()}{hint}", _wants_json(args))
        return reasons.EX_CONFIG
    except click.ClickException as exc:
        report_error(reasons.CONFIG_ERROR, exc.format_message(), _wants_json(args))
        return reasons.EX_CONFIG
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0


def entry() -> None:
    sys.exit(main())
