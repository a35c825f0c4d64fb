"""Commands that talk to a server as a client: checkout, run, status."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import click

from netmap_lm import reasons
from netmap_lm.cli.errors import CliError, config_error
from netmap_lm.cli.keypath import vendor_key_path
from netmap_lm.cli.main import Context, client_options
from netmap_lm.cli.output import console as make_console
from netmap_lm.cli.output import duration_text, line_text, plain

DEFAULT_WAIT = 3600.0  # seconds a bare --wait queues for


def _check_version(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    from netmap_lm.licensing.licensefile import parse_version

    try:
        parse_version(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def version_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--version`` of a request, checked here rather than refused by the server."""
    return click.option(
        "--version", "version", default="0", callback=_check_version, help=f"Version to {what}."
    )


def _client(ctx: Context) -> Any:
    from netmap_lm.client.environment import AddressError
    from netmap_lm.client.session import TlsSettings
    from netmap_lm.client.sync import LicenseClient

    tls = TlsSettings(ctx.tls_ca, ctx.tls_pin) if ctx.tls_ca or ctx.tls_pin else None
    try:
        return LicenseClient(
            servers=ctx.server, vendor_key=str(vendor_key_path(ctx.vendor_key)), tls=tls
        )
    except AddressError as exc:  # from NETMAP_LM_SERVERS, the message says so
        raise config_error(
            f"--server: {exc.message}" if ctx.server is not None else exc.message
        ) from None


def _grant_view(lease: Any) -> dict[str, Any]:
    g = lease.grant
    return {
        "ok": True,
        "lease": lease.id,
        "feature": lease.feature,
        "version": lease.version,
        "server": f"{lease.server[1]}@{lease.server[0]}",
        "user": g["user"],
        "host": g["host"],
        "line": g["line"],
        "heartbeat_interval": g["heartbeat_interval"],
        "lease_timeout": g["lease_timeout"],
        "grace_minutes": g["grace"],
    }


@click.command()
@click.argument("feature")
@version_option("check out")
@click.option("--hold", type=float, default=0.0, help="Seconds to hold the seat before checkin.")
@click.option(
    "--wait",
    "wait",
    type=float,
    default=0.0,
    is_flag=False,
    flag_value=DEFAULT_WAIT,
    metavar="[SECONDS]",
    help=f"Queue when no seat is free (default {DEFAULT_WAIT:g} s when given alone).",
)
@client_options
def checkout(ctx: Context, feature: str, version: str, hold: float, wait: float) -> int:
    """Check a license out, report, check it in (a license test)."""
    client = _client(ctx)

    def queued(position: int) -> None:
        if ctx.as_json:
            click.echo(json.dumps({"queued": True, "feature": feature, "position": position}))
        else:
            click.echo(f"queued for {feature}: position {position}", err=True)

    lease = client.checkout(feature, version, heartbeat=hold > 0, wait=wait, on_queued=queued)
    view = _grant_view(lease)
    if ctx.as_json:
        click.echo(json.dumps(view))
    else:
        asked = "" if version == "0" else f" v{version}"  # "0": no version asked for
        click.echo(
            f"granted {feature}{asked} to {view['user']}@{view['host']} by "
            f"{view['server']}: lease {lease.id}"
        )
    try:
        deadline = time.monotonic() + hold
        while (left := deadline - time.monotonic()) > 0 and not lease.lost:
            time.sleep(min(left, 0.2))
    finally:
        lease.checkin()
        client.close()
    if lease.lost:
        raise CliError(lease.lost[0], f"lease lost: {lease.lost[1]}")
    return 0


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("feature")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@version_option("check out")
@client_options
def run(ctx: Context, feature: str, command: tuple[str, ...], version: str) -> int:
    """Run a command while holding a license: netmap-lm run FEATURE -- CMD ARGS...

    Exits with the command's exit code; 75 if the lease was lost for good.
    """
    client = _client(ctx)
    child: subprocess.Popen[bytes] | None = None

    def lost(_lease: Any, reason: str, message: str) -> None:
        click.echo(
            f"netmap-lm: warning: {reason}: license lost ({message}); stopping the command",
            err=True,
        )
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    lease = client.checkout(feature, version, on_lost=lost)
    if ctx.as_json:
        click.echo(json.dumps(_grant_view(lease)))
    try:
        child = subprocess.Popen(list(command))
    except OSError as exc:
        lease.checkin()
        raise CliError(reasons.CONFIG_ERROR, f"cannot run {command[0]!r}: {exc.strerror}") from None

    def forward(signum: int, _frame: Any) -> None:
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    code = child.wait()
    lease.checkin()
    client.close()
    if lease.lost:
        return reasons.EX_TEMPFAIL
    return code if code >= 0 else 128 - code


@click.command()
@click.option("--feature", help="Only this feature.")
@click.option("--lmstat", "lmstat", is_flag=True, help="Print FlexLM's 'lmutil lmstat -a' layout.")
@client_options
def status(ctx: Context, feature: str | None, lmstat: bool) -> int:
    """Usage per feature and who holds the seats."""
    client = _client(ctx)
    try:
        report = client.status(feature)
    finally:
        client.close()
    if lmstat:
        from netmap_lm.cli.lmstat_format import format_report

        click.echo(format_report(report, time.time()), nl=False)
        return 0
    if ctx.as_json:
        click.echo(json.dumps(report, indent=2))
        return 0
    _print_status(report)
    return 0


def _print_status(report: dict[str, Any]) -> None:
    from rich.table import Table

    console = make_console()
    srv = report["server"]
    console.print(
        f"netmap_lm {srv['version']} on {srv['host']}:{srv['port']} — server key "
        f"{srv['key_fingerprint']}, up {duration_text(srv['uptime'])}"
    )
    today = time.strftime("%Y-%m-%d", time.gmtime())
    table = Table("feature", "in use", "seats", "lines")
    for f in report["features"]:
        seats = "uncounted" if f["seats"] is None else str(f["seats"])
        table.add_row(
            *plain(
                f["name"],
                str(f["in_use"]),
                seats,
                ", ".join(line_text(ln, today) for ln in f["lines"]),
            )
        )
    console.print(table)
    holders = Table("feature", "user", "host", "display", "pid", "version", "since", "lease")
    any_holder = False
    for f in report["features"]:
        for lease in f["leases"]:
            any_holder = True
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(lease["granted_at"] / 1000))
            holders.add_row(
                *plain(
                    f["name"],
                    lease["user"],
                    lease["host"],
                    lease["display"],
                    str(lease["pid"]),
                    "any" if lease["version"] == "0" else lease["version"],  # 0: none asked for
                    since,
                    lease["lease"],
                )
            )
    if any_holder:
        console.print(holders)
    else:
        console.print("no seats in use")
    for problem in report.get("problems", []):
        console.print(f"[yellow]license problem: {problem}[/yellow]")
    sys.stdout.flush()
