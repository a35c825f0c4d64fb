"""``netmap-lm probe HOST[:PORT]``: what is running on port 1493?

Exit codes: 0 a netmap_lm server (whose chain verifies, when a vendor key is
known); 69 nothing listening; 76 something that is not netmap_lm
(PROTOCOL_ERROR) or a netmap_lm server that does not verify
(SERVER_NOT_TRUSTED).
"""

from __future__ import annotations

import json
from typing import Any

import click

from netmap_lm import reasons
from netmap_lm.cli.errors import config_error
from netmap_lm.cli.keypath import vendor_key_path
from netmap_lm.cli.main import JSON_HELP


@click.command()
@click.argument("target")
@click.option(
    "--vendor-key",
    "vendor_key",
    metavar="PUB",
    help="Check the server's chain against this vendor.pub.",
)
@click.option("--timeout", type=float, default=3.0, show_default=True, help="Seconds.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def probe(target: str, vendor_key: str | None, timeout: float, as_json: bool) -> int:
    """What is listening at HOST[:PORT]: nothing, something else, or netmap_lm.

    \b
    Exit codes:
      0   a netmap_lm server (whose chain verifies, when a vendor key is known)
      69  nothing is listening (SERVER_UNREACHABLE)
      76  something that is not netmap_lm (PROTOCOL_ERROR), or a netmap_lm
          server whose chain does not verify (SERVER_NOT_TRUSTED)
      78  bad arguments or vendor key
    """
    from netmap_lm.client.environment import AddressError, parse_servers
    from netmap_lm.client.probe import probe as run_probe
    from netmap_lm.client.sync import load_vendor_key

    try:
        ((host, port),) = parse_servers(target)
    except (AddressError, ValueError):
        raise config_error(f"{target!r}: expected HOST[:PORT] or PORT@HOST") from None
    key: Any = None
    source = vendor_key_path(vendor_key, required=False)
    if source is not None:
        try:
            key = load_vendor_key(str(source))
        except reasons.LicenseDenied as exc:
            raise config_error(exc.message) from None
    report = run_probe(host, port, key, timeout)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(f"{port}@{host}: {report['message']}")
        if report["verdict"] == "netmap_lm":
            click.echo(
                f"  version {report['version']}, protocol {report['protocol']}, "
                f"server key {report['server_key_fingerprint']}"
            )
            for f in report.get("features", []):
                seats = "uncounted" if f["seats"] is None else f["seats"]
                click.echo(f"  feature {f['name']}: {f['in_use']} of {seats} seats in use")
    reason = report.get("reason")
    return reasons.exit_code(reason) if reason else 0
