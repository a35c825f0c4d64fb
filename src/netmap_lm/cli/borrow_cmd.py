"""``netmap-lm borrow``: take a seat offline for some hours, list, return early."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from netmap_lm.cli.client_cmds import _client, version_option
from netmap_lm.cli.errors import config_error
from netmap_lm.cli.main import Context, client_options
from netmap_lm.licensing.licensefile import MAX_BORROW_HOURS
from netmap_lm.reasons import LicenseDenied


@click.command()
@click.argument("feature", required=False)
@click.option(
    "--hours", type=click.IntRange(1, MAX_BORROW_HOURS), help="How long to borrow the seat for."
)
@version_option("borrow")
@click.option("--return", "give_back", is_flag=True, help="Return the borrowed seat early.")
@click.option("--list", "show", is_flag=True, help="List the seats borrowed on this machine.")
@client_options
def borrow(
    ctx: Context, feature: str | None, hours: int | None, version: str, give_back: bool, show: bool
) -> int:
    """Borrow a seat for offline use: borrow FEATURE --hours H; --return FEATURE; --list."""
    if show:
        listed = _listed()
        if ctx.as_json:
            click.echo(json.dumps([view for view, _ in listed]))
        else:
            for _, line in listed:
                click.echo(line)
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


def _listed() -> list[tuple[dict[str, Any], str]]:
    """The borrow records of this machine, as JSON and as a line each.

    A file that is not a borrow record is skipped with a warning naming it,
    so that one damaged file hides no other and none is left unseen.
    """
    from netmap_lm.client import borrow as saved

    listed = []
    for feature in saved.saved_features():
        try:
            record = saved.load_any(feature)
        except LicenseDenied as exc:  # CONFIG_ERROR naming the file and what is wrong
            click.echo(f"netmap-lm: warning: {exc.message}", err=True)
            continue
        if record is None:
            continue  # returned since the listing
        grant = record["grant"]
        until = time.localtime(grant["borrow_until"] / 1000)
        line = (
            f"{grant['feature']} v{grant['version']} until "
            f"{time.strftime('%Y-%m-%d %H:%M', until)} from {record['server']}"
            f" (lease {grant['lease']})"
        )
        listed.append((grant | {"server": record["server"]}, line))
    return listed
