"""Vendor and administrator commands around keys and license files (SPEC §3, §11)."""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click

from netmap_lm import reasons
from netmap_lm.cli.errors import CliError, config_error
from netmap_lm.cli.keypath import vendor_key_path
from netmap_lm.cli.main import JSON_HELP
from netmap_lm.cli.output import console as make_console
from netmap_lm.cli.output import plain, validity
from netmap_lm.licensing import keys, licensefile
from netmap_lm.licensing.hostid import host_ids
from netmap_lm.server.identity import SERVER_PUB_FILE, init_state

_PATH = click.Path(path_type=Path)


def _emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(data, indent=2) if as_json else text)


@click.group()
def vendor() -> None:
    """Vendor key pair: signs every license line."""


@vendor.command("keygen")
@click.option(
    "--out", "out", type=_PATH, required=True, help="Directory for vendor.key and vendor.pub."
)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def vendor_keygen(out: Path, as_json: bool) -> None:
    """Create vendor.key (private, mode 0600) and vendor.pub (pin it in your application)."""
    try:
        private, public = keys.generate_pair(
            out, "vendor", "netmap_lm vendor public key; pin it in your application"
        )
    except (keys.KeyFileError, OSError) as exc:
        raise config_error(str(exc)) from None
    key = keys.read_public(public)
    _emit(
        as_json,
        {
            "private_key": str(private),
            "public_key": str(public),
            "key": keys.public_text(key),
            "fingerprint": keys.fingerprint(key),
        },
        f"vendor private key: {private} (mode 0600; keep it offline)\n"
        f"vendor public key:  {public}\n"
        f"fingerprint:        {keys.fingerprint(key)}",
    )


@click.group()
def server() -> None:
    """The license server's own identity."""


@server.command("init")
@click.option("--state", "state", type=_PATH, required=True, help="State directory of the server.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def server_init(state: Path, as_json: bool) -> None:
    """Create the server identity key; print what to send to the vendor."""
    try:
        identity, created = init_state(state)
    except (keys.KeyFileError, OSError) as exc:
        raise config_error(str(exc)) from None
    pub = state / SERVER_PUB_FILE
    _emit(
        as_json,
        {
            "created": created,
            "state": str(state),
            "server_key": identity.public_text,
            "server_pub": str(pub),
            "fingerprint": identity.fingerprint,
            "hostid": identity.host_id,
            "host": socket.gethostname(),
        },
        f"{'created' if created else 'existing'} server identity in {state}\n"
        f"server key:  {identity.public_text}\n"
        f"fingerprint: {identity.fingerprint}\n"
        f"host id:     {identity.host_id}\n"
        f"host:        {socket.gethostname()}\n"
        f"Send {pub} (or the key above) and the host id to your vendor.",
    )


@click.group("license")
def license_group() -> None:
    """Issue, verify and show license files."""


def _check_date(text: str | None, option: str) -> date | None:
    """The day ``option`` gives (None for none or ``permanent``), or a config error."""
    if text is None:
        return None
    try:
        return licensefile.parse_date(text)
    except ValueError as exc:
        raise config_error(f"{option}: {exc}") from None


def _warn_if_past(expires: str, last: date | None) -> None:
    """An expiry before today is issued (a test of expiry may want one), but said."""
    today = datetime.now(UTC).date()
    if last is not None and last < today:
        click.echo(
            f"netmap-lm: warning: --expires {expires} is before today ({today}, UTC): "
            "this FEATURE line is expired as issued",
            err=True,
        )


@license_group.command("issue")
@click.option("--vendor-key", "vendor_key", type=_PATH, required=True, help="vendor.key (private).")
@click.option("--server-key", "server_key", type=_PATH, help="server.pub of the customer's server.")
@click.option("--server-host", "server_host", help="Server host name (default: this host).")
@click.option(
    "--server-port", "server_port", type=click.IntRange(1, 65535), default=1493, show_default=True
)
@click.option("--server-hostid", "server_hostid", help="Bind the SERVER line to a host id.")
@click.option("--feature", required=True, help="Feature name.")
@click.option("--seats", required=True, help="Number of seats, or 'uncounted'.")
@click.option("--version", "version", default="1.0", show_default=True, help="Highest version.")
@click.option("--start", help="YYYY-MM-DD or permanent.")
@click.option("--expires", required=True, help="YYYY-MM-DD or permanent.")
@click.option(
    "--type",
    "kind",
    type=click.Choice(licensefile.LICENSE_TYPES),
    default="floating",
    show_default=True,
)
@click.option("--grace", type=int, help="Minutes a client may run while the server is away.")
@click.option("--hostid", "feature_hostid", help="Host id for a nodelocked FEATURE line.")
@click.option("--users", help="Comma-separated users for a named FEATURE line.")
@click.option("--id", "line_id", help="Unique id of the FEATURE line (default: generated).")
@click.option("--customer", help="Customer name.")
@click.option("--notice", help="Free text shown to administrators.")
@click.option("--append", is_flag=True, help="Add a FEATURE line to an existing license file.")
@click.option("-o", "--output", "output", type=_PATH, required=True, help="License file.")
def license_issue(
    vendor_key: Path,
    server_key: Path | None,
    server_host: str | None,
    server_port: int,
    server_hostid: str | None,
    feature: str,
    seats: str,
    version: str,
    start: str | None,
    expires: str,
    kind: str,
    grace: int | None,
    feature_hostid: str | None,
    users: str | None,
    line_id: str | None,
    customer: str | None,
    notice: str | None,
    append: bool,
    output: Path,
) -> None:
    """Write a signed SERVER line and a FEATURE line (or append a FEATURE line)."""
    try:
        private = keys.read_private(vendor_key)
    except keys.KeyFileError as exc:
        raise config_error(str(exc)) from None
    _check_date(start, "--start")
    _warn_if_past(expires, _check_date(expires, "--expires"))
    lines_out: list[str] = []
    if append:
        if not output.exists():
            raise config_error(f"{output}: no such license file to --append to")
        try:
            existing = licensefile.read(output, private.public_key())
        except licensefile.LicenseFileError as exc:
            raise config_error(f"{exc} (nothing was appended)") from None
        if existing.problems:
            # Appending would make a file whose lines come from different vendors.
            first = existing.problems[0]
            more = f" (and {len(existing.problems) - 1} more)" if len(existing.problems) > 1 else ""
            raise config_error(
                f"{output}:{first.lineno}: does not verify with the key of {vendor_key}{more}; "
                f"refusing to --append (fix the file first: 'netmap-lm license verify')"
            )
        if line_id is None:
            line_id = f"{feature}-{len(existing.features) + 1}-{os.urandom(3).hex()}"
    else:
        if output.exists():
            raise config_error(f"{output}: exists; use --append to add a FEATURE line")
        if server_key is None:
            raise config_error("--server-key is required for a new license file")
        try:
            server_public = keys.read_public(server_key)
        except keys.KeyFileError as exc:
            raise config_error(str(exc)) from None
        try:
            lines_out.append(
                licensefile.sign_line(
                    private,
                    "SERVER",
                    {
                        "host": server_host or socket.gethostname(),
                        "port": server_port,
                        "key": keys.public_text(server_public),
                        "hostid": server_hostid,
                    },
                )
            )
        except ValueError as exc:
            raise config_error(f"cannot issue this SERVER line: {exc}") from None
        line_id = line_id or f"{feature}-1-{os.urandom(3).hex()}"
    try:
        lines_out.append(
            licensefile.sign_line(
                private,
                "FEATURE",
                {
                    "name": feature,
                    "version": version,
                    "seats": seats,
                    "type": kind,
                    "start": start,
                    "expires": expires,
                    "id": line_id,
                    "hostid": feature_hostid,
                    "users": users,
                    "grace": grace,
                    "customer": customer,
                    "notice": notice,
                },
            )
        )
    except ValueError as exc:
        raise config_error(f"cannot issue this FEATURE line: {exc}") from None
    try:
        if append:
            text = output.read_text(encoding="utf-8")
            with output.open("a", encoding="utf-8") as out:
                if text and not text.endswith("\n"):
                    out.write("\n")
                out.write("\n".join(lines_out) + "\n")
        else:
            output.write_text(
                f"# netmap_lm license issued {date.today().isoformat()}\n"
                + "\n".join(lines_out)
                + "\n",
                encoding="utf-8",
            )
    except OSError as exc:
        raise config_error(f"{output}: cannot write the license file ({exc.strerror})") from None
    click.echo(
        f"{'appended to' if append else 'wrote'} {output}: FEATURE {feature} "
        f"v{version}, {seats} seat(s), id={line_id}"
    )


def _vendor_public(path: str | None) -> tuple[Path, Any]:
    """The vendor key file to use (``--vendor-key``, else ...) and its key."""
    where = vendor_key_path(path)
    try:
        return where, keys.read_public(where)
    except keys.KeyFileError as exc:
        raise config_error(str(exc)) from None


@license_group.command("verify")
@click.argument("file", type=_PATH)
@click.option("--vendor-key", "vendor_key", metavar="PUB", help="vendor.pub to verify against.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def license_verify(file: Path, vendor_key: str | None, as_json: bool) -> int:
    """Check every line; exit 0 only if all verify, naming each bad line."""
    where, public = _vendor_public(vendor_key)
    try:
        parsed = licensefile.read(file, public)
    except licensefile.LicenseFileError as exc:
        raise config_error(str(exc)) from None
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": not parsed.problems,
                    "file": str(file),
                    "servers": [
                        {"line": s.lineno, "host": s.host, "port": s.port} for s in parsed.servers
                    ],
                    "features": [
                        {
                            "line": f.lineno,
                            "name": f.name,
                            "id": f.id,
                            "start": licensefile.format_date(f.start),
                            "expires": licensefile.format_date(f.expires),
                        }
                        for f in parsed.features
                    ],
                    "problems": [{"line": p.lineno, "message": p.message} for p in parsed.problems],
                },
                indent=2,
            )
        )
    else:
        for s in parsed.servers:
            click.echo(f"{file}:{s.lineno}: ok: SERVER {s.host} port {s.port}")
        today = datetime.now(UTC).date().isoformat()
        for f in parsed.features:
            seats = "uncounted" if f.seats is None else f"{f.seats} seat(s)"
            when = validity(
                licensefile.format_date(f.start), licensefile.format_date(f.expires), today
            )
            if when.startswith("expired"):
                when += ": it grants no seat"  # signed, but of no use any more
            click.echo(
                f"{file}:{f.lineno}: ok: FEATURE {f.name} v{f.version} {seats} id={f.id}, {when}"
            )
        for p in parsed.problems:
            click.echo(str(p), err=True)
    if parsed.another_vendors:
        click.echo(
            f"netmap-lm: no line verifies with {where} (fingerprint {keys.fingerprint(public)}): "
            "is it the vendor.pub of the vendor who issued this file?",
            err=True,
        )
    if parsed.problems:
        return reasons.EX_NOPERM
    if not parsed.servers and not parsed.features:
        raise CliError(reasons.LICENSE_INVALID, f"{file}: no license lines in the file")
    return 0


@license_group.command("show")
@click.argument("file", type=_PATH)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def license_show(file: Path, as_json: bool) -> None:
    """The file as a table (signatures are not checked; see 'license verify')."""
    try:
        parsed = licensefile.read(file, None)
    except licensefile.LicenseFileError as exc:
        raise config_error(str(exc)) from None
    rows = [
        {
            "line": f.lineno,
            "feature": f.name,
            "version": f.version,
            "seats": "uncounted" if f.seats is None else f.seats,
            "type": f.type,
            "start": licensefile.format_date(f.start),
            "expires": licensefile.format_date(f.expires),
            "id": f.id,
        }
        for f in parsed.features
    ]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "servers": [
                        {
                            "line": s.lineno,
                            "host": s.host,
                            "port": s.port,
                            "key": s.key,
                            "hostid": s.hostid,
                        }
                        for s in parsed.servers
                    ],
                    "features": rows,
                    "problems": [str(p) for p in parsed.problems],
                },
                indent=2,
            )
        )
        return
    from rich.table import Table

    console = make_console()
    for s in parsed.servers:
        console.print(f"SERVER {s.host} port {s.port} key {s.key[:16]}… (line {s.lineno})")
    table = Table("line", "feature", "version", "seats", "type", "start", "expires", "id")
    for row in rows:
        table.add_row(*plain(*(str(v) for v in row.values())))
    console.print(table)
    for p in parsed.problems:
        console.print(f"[red]{p}[/red]")


@click.command()
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def hostid(as_json: bool) -> None:
    """This machine's host id(s), the preferred one first."""
    ids = host_ids()
    _emit(as_json, {"hostids": ids}, "\n".join(ids))
