"""Administrator commands: remove, reread, shutdown, audit (SPEC §7, §8, §11)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click

from netmap_lm.cli.client_cmds import _client
from netmap_lm.cli.errors import config_error
from netmap_lm.cli.main import Context, client_options
from netmap_lm.cli.output import console as make_console
from netmap_lm.cli.output import counter_lines, plain

ADMIN_TOKEN_ENV = "NETMAP_LM_ADMIN_TOKEN"
_PATH = click.Path(path_type=Path)


def admin_options(func: Any) -> Any:
    func = click.option(
        "--admin-token",
        "admin_token",
        type=_PATH,
        help=f"Admin credential file (else {ADMIN_TOKEN_ENV}, else "
        "STATE/admin.token with --state).",
    )(func)
    return click.option(
        "--state", "state", type=_PATH, help="The server's state directory (for its admin.token)."
    )(func)


def _admin_key(admin_token: Path | None, state: Path | None) -> bytes | None:
    """The credential from the first place that names one; None if none does."""
    from netmap_lm.cli.demo import demo_dir
    from netmap_lm.licensing.keys import KeyFileError
    from netmap_lm.server.admin import ADMIN_TOKEN_FILE, read_admin_token

    path: Path | None = admin_token
    if path is None and os.environ.get(ADMIN_TOKEN_ENV):
        path = Path(os.environ[ADMIN_TOKEN_ENV])
    if path is None and state is not None:
        path = state / ADMIN_TOKEN_FILE
    if path is None:
        demo = demo_dir() / "state" / ADMIN_TOKEN_FILE
        path = demo if demo.exists() else None
    if path is None:
        return None
    try:
        return read_admin_token(path)
    except KeyFileError as exc:
        raise config_error(str(exc)) from None


def _admin(
    ctx: Context, admin_token: Path | None, state: Path | None, op: str, **fields: Any
) -> dict[str, Any]:
    client = _client(ctx)
    try:
        return client.admin(op, _admin_key(admin_token, state), **fields)  # type: ignore[no-any-return]
    finally:
        client.close()


@click.command()
@click.argument("target", nargs=-1)
@click.option("--lease", "lease", help="Lease id to remove (from 'status').")
@admin_options
@client_options
def remove(
    ctx: Context,
    target: tuple[str, ...],
    lease: str | None,
    admin_token: Path | None,
    state: Path | None,
) -> int:
    """Free a seat: remove --lease ID, or remove FEATURE USER HOST."""
    if (lease and target) or (not lease and len(target) != 3):
        raise config_error("give --lease ID, or FEATURE USER HOST")
    if lease:
        lease = lease.strip().lower()  # as copied from 'status', in any case
        if len(lease) != 32 or lease.strip("0123456789abcdef"):
            raise config_error(
                f"--lease {lease!r}: a lease id is 32 hex digits, as 'netmap-lm status' shows it"
            )
    names = ("feature", "user", "host")
    fields = {"lease": lease} if lease else dict(zip(names, target, strict=True))
    reply = _admin(ctx, admin_token, state, "remove", **fields)
    if ctx.as_json:
        click.echo(json.dumps(reply))
    else:
        for lease_id in reply["removed"]:
            click.echo(f"removed lease {lease_id}")
    return 0


@click.command()
@admin_options
@client_options
def reread(ctx: Context, admin_token: Path | None, state: Path | None) -> int:
    """Reload the license file; held leases are kept where they still fit."""
    reply = _admin(ctx, admin_token, state, "reread")
    if ctx.as_json:
        click.echo(json.dumps(reply))
    else:
        click.echo(
            f"reread: features {', '.join(reply['features']) or 'none'}; "
            f"{reply['kept']} lease(s) kept, {len(reply['revoked'])} revoked"
        )
        for problem in reply.get("problems", []):
            click.echo(f"license problem: {problem}", err=True)
        for warning in reply.get("warnings", []):
            click.echo(f"warning: {warning}", err=True)
    return 0


@click.command()
@admin_options
@client_options
def shutdown(ctx: Context, admin_token: Path | None, state: Path | None) -> int:
    """Stop the server cleanly; held leases are kept for its next start."""
    reply = _admin(ctx, admin_token, state, "shutdown")
    if ctx.as_json:
        click.echo(json.dumps(reply))
    else:
        click.echo(f"server shutting down; {reply['leases_kept']} lease(s) kept")
    return 0


@click.command()
@admin_options
@client_options
def audit(ctx: Context, admin_token: Path | None, state: Path | None) -> int:
    """The abuse monitor's findings: who did what unusual, when, how often."""
    reply = _admin(ctx, admin_token, state, "audit")
    if ctx.as_json:
        click.echo(json.dumps(reply, indent=2))
        return 0
    findings = reply["findings"]
    if not findings:
        click.echo("no findings")
    else:
        from rich.table import Table

        table = Table("last seen", "kind", "address", "user", "host", "count", "detail")
        for f in findings:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(f["last"] / 1000))
            row = (f["kind"], f["address"], f["user"], f["host"], str(f["count"]), f["detail"])
            table.add_row(*plain(when, *row))
        make_console().print(table)
    for line in counter_lines(reply.get("counters", {})):
        click.echo(line)
    return 0
