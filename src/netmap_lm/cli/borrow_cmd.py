"""``netmap-lm borrow``: take a seat offline for some hours, list, return early."""

from __future__ import annotations

import json
import time

import click

from netmap_lm.cli.client_cmds import _client
from netmap_lm.cli.errors import config_error
from netmap_lm.cli.main import Context, client_options


@click.command()
@click.argument("feature", required=False)
@click.option("--hours", type=click.IntRange(1, 8760), help="How long to borrow the seat for.")
@click.option("--version", "version", default="0", help="Version to borrow.")
@click.option("--return", "give_back", is_flag=True, help="Return the borrowed seat early.")
@click.option("--list", "show", is_flag=True, help="List the seats borrowed on this machine.")
@client_options
def borrow(
    ctx: Context, feature: str | None, hours: int | None, version: str, give_back: bool, show: bool
) -> int:
    """Borrow a seat for offline use: borrow FEATURE --hours H; --return FEATURE; --list."""
    from netmap_lm.client import borrow as saved

    if show:
        records = saved.list_all()
        if ctx.as_json:
            click.echo(json.dumps([r["grant"] | {"server": r.get("server")} for r in records]))
        for r in records:
            g = r["grant"]
            until = time.strftime("%Y-%m-%d %H:%M", time.localtime(g["borrow_until"] / 1000))
            if not ctx.as_json:
                click.echo(
                    f"{g['feature']} v{g['version']} until {until} from {r.get('server')}"
                    f" (lease {g['lease']})"
                )
        return 0
    if not feature:
        raise config_error("name the FEATURE to borrow or return (or use --list)")
    client = _client(ctx)
    try:
        if give_back:
            if not client.return_borrow(feature):
                raise config_error(f"no borrowed seat of {feature} on this machine")
            click.echo(
                json.dumps({"ok": True, "returned": feature})
                if ctx.as_json
                else f"returned {feature}"
            )
            return 0
        if not hours:
            raise config_error("--hours is required to borrow")
        lease = client.borrow(feature, version, hours=hours)
    finally:
        client.close()
    until = time.strftime("%Y-%m-%d %H:%M", time.localtime(lease.grant["borrow_until"] / 1000))
    if ctx.as_json:
        click.echo(
            json.dumps(
                {
                    "ok": True,
                    "lease": lease.id,
                    "feature": feature,
                    "borrow_until": lease.grant["borrow_until"],
                }
            )
        )
    else:
        click.echo(f"borrowed {feature} until {until}: usable offline on this machine")
    return 0
