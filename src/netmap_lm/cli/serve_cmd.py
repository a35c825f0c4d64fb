"""``netmap-lm serve``: start-up checks, logging and the event loop."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import click

from netmap_lm import DEFAULT_PORT, reasons
from netmap_lm.cli.errors import config_error
from netmap_lm.engine.clockguard import DEFAULT_TOLERANCE_MS
from netmap_lm.server.budgets import (
    BURST_SECONDS,
    MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_ADDRESS,
    REQUESTS_PER_SECOND,
    Limits,
)
from netmap_lm.server.config import (
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_LEASE_TIMEOUT,
    HANDSHAKE_TIMEOUT,
    HOUR_MS,
    IDLE_TIMEOUT,
    ServerConfig,
    clock_tolerance_ms,
)

_PATH = click.Path(path_type=Path)

NEXT_STEPS = """\
netmap_lm demo server on port {port}. In another terminal (same user), try:

  .venv/bin/netmap-lm status                          # seats and holders
  .venv/bin/netmap-lm checkout netmap --hold 5        # take a seat for 5 s
  .venv/bin/netmap-lm run netmap -- sleep 30          # gate a program with a license
  .venv/bin/netmap-lm checkout netmap --version 6.0   # refused: VERSION_NOT_LICENSED (exit 77)

Demo files: license {license}
            vendor key {vendor} (clients use it when no --vendor-key is given)
Stop with Ctrl-C; held leases are kept for the next start.
"""


@click.command()
@click.option("--license", "license_path", type=_PATH, help="License file.")
@click.option("--state", "state", type=_PATH, help="State directory (server key, lease database).")
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True, help="TCP and UDP port.")
@click.option(
    "--bind", default=None, help="Address to listen on [default: 0.0.0.0; 127.0.0.1 with --demo]."
)
@click.option(
    "--heartbeat-interval",
    type=float,
    default=DEFAULT_HEARTBEAT_INTERVAL,
    show_default=True,
    help="Seconds between client heartbeats.",
)
@click.option(
    "--lease-timeout",
    type=float,
    default=DEFAULT_LEASE_TIMEOUT,
    show_default=True,
    help="Seconds without heartbeat before a seat is reclaimed.",
)
@click.option(
    "--vendor-key", "vendor_key", metavar="PUB", help="vendor.pub the license is signed with."
)
@click.option("--no-udp", is_flag=True, help="Do not listen for UDP heartbeats.")
@click.option(
    "--options",
    "options_path",
    type=_PATH,
    help="Options file: who may use what (docs/administration.md).",
)
@click.option(
    "--allow",
    "allow",
    multiple=True,
    metavar="CIDR",
    help="Client network allowed to connect (repeatable; default: all).",
)
@click.option("--tls-cert", type=_PATH, help="TLS certificate (PEM); plain and TLS share the port.")
@click.option("--tls-key", type=_PATH, help="TLS private key (PEM).")
@click.option(
    "--admin-loopback", is_flag=True, help="Admin operations from loopback need no credential."
)
@click.option(
    "--handshake-timeout",
    type=float,
    default=HANDSHAKE_TIMEOUT,
    show_default=True,
    help="Seconds a new connection has to send hello.",
)
@click.option(
    "--idle-timeout",
    type=float,
    default=IDLE_TIMEOUT,
    show_default=True,
    help="Seconds a silent connection is kept.",
)
@click.option(
    "--rate-limit",
    type=float,
    default=REQUESTS_PER_SECOND,
    show_default=True,
    help="Requests per second per client address (0: no limit).",
)
@click.option(
    "--max-connections",
    type=int,
    default=MAX_CONNECTIONS,
    show_default=True,
    help="Open connections in total.",
)
@click.option(
    "--max-connections-per-address",
    type=int,
    default=MAX_CONNECTIONS_PER_ADDRESS,
    show_default=True,
    help="Open connections from one address.",
)
@click.option(
    "--clock-tolerance",
    type=float,
    default=DEFAULT_TOLERANCE_MS / HOUR_MS,
    show_default=True,
    help="Hours the clock may go back before CLOCK_TAMPERED.",
)
@click.option("--demo", is_flag=True, help="Create demo keys and license; print what to try.")
@click.option("-v", "--verbose", is_flag=True, help="Log every request.")
@click.pass_context
def serve(
    ctx: click.Context,
    license_path: Path | None,
    state: Path | None,
    port: int,
    bind: str | None,
    heartbeat_interval: float,
    lease_timeout: float,
    vendor_key: str | None,
    no_udp: bool,
    options_path: Path | None,
    allow: tuple[str, ...],
    tls_cert: Path | None,
    tls_key: Path | None,
    admin_loopback: bool,
    handshake_timeout: float,
    idle_timeout: float,
    rate_limit: float,
    max_connections: int,
    max_connections_per_address: int,
    clock_tolerance: float,
    demo: bool,
    verbose: bool,
) -> int:
    """Run the license server on TCP and UDP port 1493."""
    from netmap_lm.cli.keypath import vendor_key_path

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    vendor_key = vendor_key or ctx.find_root().obj.vendor_key
    next_steps = ""
    if demo:
        from netmap_lm.cli.demo import ensure_demo

        demo_license, demo_state, demo_vendor = ensure_demo(port)
        license_path = license_path or demo_license
        state = state or demo_state
        vendor_key = vendor_key or str(demo_vendor)
        bind = bind or "127.0.0.1"
        next_steps = NEXT_STEPS.format(port=port, license=license_path, vendor=demo_vendor)
    if license_path is None or state is None:
        raise config_error("serve needs --license FILE and --state DIR (or --demo)")
    try:
        config = ServerConfig(
            license_path=license_path,
            state_dir=state,
            vendor_key_path=vendor_key_path(vendor_key),
            port=port,
            bind=bind or "0.0.0.0",
            heartbeat_interval=heartbeat_interval,
            lease_timeout=lease_timeout,
            udp=not no_udp,
            options_path=options_path,
            allow=allow,
            tls_cert=tls_cert,
            tls_key=tls_key,
            admin_loopback=admin_loopback,
            handshake_timeout=handshake_timeout,
            idle_timeout=idle_timeout,
            limits=Limits(
                max_connections=max_connections,
                max_per_address=max_connections_per_address,
                requests_per_second=rate_limit,
                request_burst=rate_limit * BURST_SECONDS,
            ),
            clock_tolerance_ms=clock_tolerance_ms(clock_tolerance),
        )
        config.check()
    except ValueError as exc:
        raise config_error(str(exc)) from None
    return _run(config, next_steps)


def _run(config: ServerConfig, next_steps: str = "") -> int:
    """Serve until stopped; ``next_steps`` is printed once the server listens
    (what to try is no use above an error saying it could not start)."""
    from netmap_lm.server.app import LicenseServer, StartupError
    from netmap_lm.store.sqlite import StoreError

    _raise_file_limit()
    try:
        server = LicenseServer(config)
    except (StartupError, StoreError) as exc:
        raise config_error(str(exc)) from None

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.request_stop)
        try:
            await server.start()
        except StoreError as exc:  # the start-up clean-up could not be written
            raise config_error(str(exc)) from None
        except OSError as exc:
            raise config_error(
                f"cannot listen on {config.bind}:{config.port} ({exc.strerror}); "
                "is another server running? choose another --port or --bind"
            ) from None
        if next_steps:
            click.echo(next_steps)
        await server.serve_until_stopped()
        await server.stop()

    try:
        import uvloop
    except ImportError:  # uvloop is optional off POSIX
        asyncio.run(main())
    else:
        uvloop.run(main())
    return reasons.EX_OK


def _raise_file_limit() -> None:
    """Every connection is a file descriptor: use all the kernel allows us."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass
