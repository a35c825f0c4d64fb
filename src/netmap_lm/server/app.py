"""The license server: the operations, around the pure engine.

Theory of operation.  One event loop owns the :class:`SeatEngine`, so every
decision about seats is taken by one thread, in order, and seat counts are
exact.  A checkout is decided at once, then handed to the lease store and
answered only when the store says it is durable (group commit, see
``store/sqlite.py``); if the write fails the decision is rolled back and
the client sees the connection close.  A timer reclaims leases whose
heartbeats stopped.  Restarting on the same state directory restores the
held leases, each with a fresh timeout for its holder to come back.

``tcp.py`` and ``heartbeats.py`` move bytes; this module decides.  Every
operation takes the peer's address for the abuse monitor and the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from netmap_lm import PROTOCOL_VERSION, __version__, reasons
from netmap_lm.encoding import b64u_encode
from netmap_lm.engine.clockguard import ClockGuard
from netmap_lm.engine.seats import CheckoutRequest, Denial, Lease, SeatEngine, unknown_feature
from netmap_lm.licensing import keys, licensefile, trust
from netmap_lm.licensing.options import OptionsError, read_options
from netmap_lm.protocol import messages
from netmap_lm.server import statelock
from netmap_lm.server.abuse import AbuseMonitor, Finding
from netmap_lm.server.access import AllowList, is_loopback
from netmap_lm.server.admin import ensure_admin_token, read_admin_token
from netmap_lm.server.budgets import AddressBudgets
from netmap_lm.server.config import ServerConfig
from netmap_lm.server.identity import load_identity
from netmap_lm.server.queue import Waiter, WaitQueue
from netmap_lm.server.reportlog import (
    REPORT_LOG,
    DequeueOutcome,
    ReportLog,
    checkin_record,
    checkout_record,
)
from netmap_lm.server.signer import GrantSigner
from netmap_lm.server.statelock import StateInUse
from netmap_lm.store.sqlite import Change, LeaseStore, Meta, Release, StoreError

log = logging.getLogger("netmap_lm.server")

LEASE_DB = "leases.db"
REPORT_FLUSH_EVERY = 1.0  # seconds between fsyncs of the report log
LATEST_TIME = "latest_wall_ms"  # meta row for the clock guard
LATEST_TIME_EVERY = 60.0  # seconds between saves of the latest wall time
REVOKED_MEMORY = 4096  # removed/revoked lease ids remembered to tell their holders why


class StartupError(Exception):
    """The server cannot start; the message says which file is wrong and what to do."""


class LicenseServer:
    def __init__(
        self,
        config: ServerConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        config.check()
        self.config = config
        self.clock = clock
        self.wall = wall
        self.counters: Counter[str] = Counter()
        self.started_at = wall()
        try:
            self.vendor_key = keys.read_public(config.vendor_key_path)
            self.identity = load_identity(config.state_dir)
            self.admin_key = read_admin_token(ensure_admin_token(config.state_dir))
            self.allow = AllowList(config.allow)
        except (keys.KeyFileError, ValueError) as exc:
            raise StartupError(str(exc)) from None
        self.license, self.server_line, self.engine = self._load_license()
        self.tls_context = _tls_context(config) if config.tls_cert else None
        with contextlib.ExitStack() as undo:  # what is open when a later step fails
            self.report = _open_report_log(config.state_dir / REPORT_LOG)
            undo.callback(self.report.close)
            self.state_lock = _hold_state(config.state_dir)
            undo.callback(self.state_lock.release)
            self.store = LeaseStore(config.state_dir / LEASE_DB)
            latest = self.store.load_meta(LATEST_TIME)
            undo.pop_all()
        self.clock_guard = ClockGuard(int(latest) if latest else None, config.clock_tolerance_ms)
        self.budgets = AddressBudgets(config.limits)
        self.abuse = AbuseMonitor()
        self.revoked: dict[str, str] = {}
        self.queue = WaitQueue()
        self._day: tuple[int, date] = (-1, date.min)
        self.signer = GrantSigner(self.identity.private_key)
        self.port = config.port
        self._listeners: list[Any] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.sessions: set[Any] = set()
        self._stopped = asyncio.Event()

    def _load_license(self) -> tuple[licensefile.LicenseFile, licensefile.ServerLine, SeatEngine]:
        path = self.config.license_path
        try:
            license = licensefile.read(path, self.vendor_key)
        except licensefile.LicenseFileError as exc:
            raise StartupError(str(exc)) from None
        server_line = license.server_for_key(self.identity.public_text)
        if server_line is None and license.another_vendors:
            raise StartupError(
                f"{path}: no line verifies with the vendor key {self.config.vendor_key_path} "
                f"(fingerprint {keys.fingerprint(self.vendor_key)}); give the vendor.pub of the "
                "vendor who issued this license with --vendor-key (or NETMAP_LM_VENDOR_KEY)"
            )
        if server_line is None:
            raise StartupError(
                f"{path}: no valid SERVER line for this server's key "
                f"{self.identity.public_text} (fingerprint {self.identity.fingerprint}); "
                "send that key to your vendor for a license issued to this server"
            )
        options = None
        if self.config.options_path is not None:
            try:
                options = read_options(self.config.options_path)
            except OptionsError as exc:
                end = "\n" if len(exc.problems) > 1 else " "  # after a list, on a line of its own
                raise StartupError(
                    f"{exc}{end}(fix the options file; nothing was changed)"
                ) from None
        for problem in license.problems:
            log.warning("%s (this line is not served)", problem)
        engine = SeatEngine(
            license.features,
            lease_timeout=self.config.lease_timeout,
            invalid_names={p.feature for p in license.problems if p.feature},
            options=options,
        )
        for warning in engine.warnings:
            log.warning("%s", warning)
        return license, server_line, engine

    # -- life cycle --------------------------------------------------------------

    async def start(self) -> None:
        from netmap_lm.server import heartbeats, tcp

        now = self.clock()
        restored = 0
        dropped: list[Lease] = []
        for lease in self.store.load_leases():
            if self.engine.restore(lease, now=now, today=self.today()):
                restored += 1
            else:
                log.warning(
                    "lease %s of %s no longer fits the license; dropped", lease.id, lease.feature
                )
                dropped.append(lease)
        if dropped:  # one transaction (one fsync) for all of them
            self.store.commit_now([Release(lease.id) for lease in dropped])
            for lease in dropped:
                self.record_checkin(lease, "shutdown")
        if self.clock_guard.observe(int(self.wall() * 1000)):
            self._warn_clock()
        self._listeners.append(await tcp.listen(self))
        self.port = self._listeners[0].port
        if self.config.udp:
            self._listeners.append(await heartbeats.listen(self))
        self._tasks.append(asyncio.create_task(self._sweep()))
        self._tasks.append(asyncio.create_task(self._flush_report()))
        self.record(
            "START",
            server=__version__,
            port=self.port,
            features=",".join(self.engine.feature_names()),
        )
        log.info(
            "netmap_lm %s serving %s on %s:%d (tcp%s%s); server key %s; %d lease(s) restored",
            __version__,
            ", ".join(self.engine.feature_names()) or "no features",
            self.config.bind,
            self.port,
            "+tls" if self.tls_context else "",
            "+udp" if self.config.udp else "",
            self.identity.fingerprint,
            restored,
        )

    async def serve_until_stopped(self) -> None:
        await self._stopped.wait()

    def request_stop(self) -> None:
        self._stopped.set()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for listener in self._listeners:
            listener.close()
        for session in list(self.sessions):
            session.shutdown_notice()
        await asyncio.sleep(0)
        self.record("STOP", reason="shutdown", leases_kept=len(self.engine.leases))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.report.close)
        try:
            await self.store.commit([Meta(LATEST_TIME, str(self.clock_guard.latest_ms))])
        except StoreError:  # logged by the store
            log.error("could not save the latest wall time")
        self.store.close()  # on the loop: what it still commits tells its sessions here
        self.state_lock.release()
        log.info("netmap_lm stopped; %d lease(s) kept for the next start", len(self.engine.leases))

    async def _sweep(self) -> None:
        period = min(1.0, self.config.heartbeat_interval / 2)
        last_saved = 0.0
        while True:
            await asyncio.sleep(period)
            now = self.clock()
            changes: list[Change] = []
            wall_ms = int(self.wall() * 1000)
            freed = False
            for lease in self.engine.expire(now, wall_ms=wall_ms):
                freed = True
                if lease.end_reason == "linger":
                    # Checked in earlier (its row is gone); only its seat ends now.
                    self.record_checkin(lease, "linger")
                    continue
                reason = "borrow_return" if lease.end_reason == "borrow_end" else "timeout"
                self.counters[f"leases_{lease.end_reason or 'timeout'}"] += 1
                log.info(
                    "%s: lease %s of %s for %s@%s reclaimed",
                    lease.end_reason or "timeout",
                    lease.id,
                    lease.feature,
                    lease.user,
                    lease.host,
                )
                self.record_checkin(lease, reason)
                changes.append(Release(lease.id))
            if self.clock_guard.observe(wall_ms):
                self._warn_clock()
            if now - last_saved >= LATEST_TIME_EVERY and not self.clock_guard.tampered:
                changes.append(Meta(LATEST_TIME, str(self.clock_guard.latest_ms)))
                last_saved = now
            self.budgets.forget_idle(now)
            self.abuse.prune(self.wall())
            if freed:
                self.serve_queue()
            if changes:
                try:
                    await self.store.commit(changes)
                except StoreError:  # logged by the store; its releases are owed
                    log.error("could not persist reclaimed leases yet")

    async def _flush_report(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(REPORT_FLUSH_EVERY)
            if self.report.pending:
                try:
                    await loop.run_in_executor(None, self.report.flush)
                except OSError as exc:
                    log.error("report log: %s", exc)

    # -- the report log (docs/report-log.md) ------------------------------------------

    def record(self, record_kind: str, /, **fields: Any) -> None:
        self.report.record(record_kind, int(self.wall() * 1000), **fields)

    def record_checkout(self, lease: Lease) -> None:
        seats = self.engine.seats(lease.feature, self.today())
        in_use = self.engine.in_use(lease.feature)
        self.report.append(checkout_record(int(self.wall() * 1000), lease, in_use, seats))

    def record_checkin(self, lease: Lease, reason: str) -> None:
        wall_ms = int(self.wall() * 1000)
        held_ms = max(0, wall_ms - lease.granted_at_ms)
        in_use = self.engine.in_use(lease.feature)
        self.report.append(checkin_record(wall_ms, lease, reason, in_use, held_ms))

    def _warn_clock(self) -> None:
        self.counters["clock_tampered"] += 1
        latest = datetime.fromtimestamp(self.clock_guard.latest_ms / 1000, UTC)
        log.warning(
            "CLOCK_TAMPERED: the clock reads %s, before %s seen earlier; time-limited "
            "features are refused until it is right",
            datetime.now(UTC),
            latest,
        )

    # -- events for the abuse monitor and the counters ------------------------------

    def note(self, finding: Finding | None) -> None:
        if finding is not None:
            self.counters[f"abuse_{finding.kind}"] += 1
            self.record(
                "AUDIT",
                kind=finding.kind,
                addr=finding.address,
                user=finding.user,
                host=finding.host,
                count=finding.count,
                detail=finding.detail or None,
            )
            log.warning(
                "abuse: %s from %s user=%s host=%s %s",
                finding.kind,
                finding.address,
                finding.user,
                finding.host,
                finding.detail,
            )

    # -- operations ----------------------------------------------------------------

    def today(self) -> date:
        """The UTC date (computed once a day, not once a checkout)."""
        day = int(self.wall() // 86_400)
        if day != self._day[0]:
            self._day = (day, datetime.fromtimestamp(day * 86_400, UTC).date())
        return self._day[1]

    def hello(self, request: messages.Hello) -> dict[str, Any]:
        now_ms = int(self.wall() * 1000)
        payload = trust.hello_payload(
            request.nonce, PROTOCOL_VERSION, self.identity.public_text, now_ms
        )
        return messages.ok(
            request.id,
            server="netmap_lm",
            version=__version__,
            protocol=PROTOCOL_VERSION,
            server_key=self.identity.public_text,
            server_line=self.server_line.text,
            time=now_ms,
            heartbeat_interval=_whole(self.config.heartbeat_interval),
            lease_timeout=_whole(self.config.lease_timeout),
            sig=b64u_encode(self.identity.private_key.sign(payload)),
        )

    def checkout(
        self, request: messages.Checkout, nonce: str, address: str, *, retry: bool = False
    ) -> tuple[dict[str, Any], Lease | None]:
        """Decide a checkout; ``retry`` is a queued one offered a freed seat
        (its refusals are not news: not logged, not counted as denials)."""
        wall_ms = int(self.wall() * 1000)
        tampered = self.clock_guard.observe(wall_ms)
        secret = os.urandom(48)  # lease id and key: one system call, not two
        result = self.engine.checkout(
            CheckoutRequest(
                request.feature,
                request.version,
                request.user,
                request.host,
                request.display,
                request.pid,
                request.project,
                request.hostid,
                address,
                request.borrow,
            ),
            lease_id=secret[:16].hex(),
            key=secret[16:],
            now=self.clock(),
            wall_ms=wall_ms,
            today=self.today(),
            clock_tampered=tampered,
        )
        if isinstance(result, Denial):
            if retry:
                return messages.error(request.id, result.reason, result.message), None
            if result.reason == reasons.HOSTID_MISMATCH:
                if not request.hostid:
                    # Clients send their host ids only when a node-locked line asks
                    # (it saves every other application's start): not a denial yet.
                    return messages.error(
                        request.id, result.reason, result.message, hostid_required=True
                    ), None
                self.note(
                    self.abuse.hostid_mismatch(self.wall(), address, request.user, request.host)
                )
            self.counters[f"denials_{result.reason}"] += 1
            log.info(
                "denied %s%s to %s@%s (%s): %s %s",
                request.feature,
                "" if request.version == "0" else f" v{request.version}",  # 0: none asked for
                request.user,
                request.host,
                address,
                result.reason,
                result.message,
            )
            self.note(self.abuse.denial(self.wall(), address, result.reason))
            self.record(
                "DENIAL",
                feature=request.feature,
                version=request.version,
                user=request.user,
                host=request.host,
                reason=result.reason,
                message=result.message,
                addr=address,
            )
            return messages.error(request.id, result.reason, result.message), None
        self.note(self.abuse.checkout(self.wall(), address, result.user, result.host, result.id))
        line = self.engine.line(result.line_id)
        assert line is not None
        grant = {
            "lease": result.id,
            "feature": result.feature,
            "version": result.version,
            "user": result.user,
            "host": result.host,
            "display": result.display,
            "pid": result.pid,
            "project": result.project,
            "line": result.line_id,
            "time": result.granted_at_ms,
            "nonce": nonce,
            "heartbeat_interval": _whole(self.config.heartbeat_interval),
            "lease_timeout": self.lease_timeout(result),
            "grace": line.grace_minutes,
            "key": b64u_encode(result.key),
            "hostid": request.hostid,
            "borrow_until": result.borrow_until_ms,
        }
        reply = messages.ok(request.id, grant=grant, feature_line=line.text)
        self.signer.add(grant, reply)  # "sig" and "batch" come once it is durable
        return reply, result

    def lease_timeout(self, lease: Lease) -> int:
        """The timeout of a lease's line, as grants and heartbeat answers carry it."""
        return _whole(self.engine.lease_timeout_for(lease.feature, lease.line_id))

    def held_lease(self, lease_id: str, token: str | None, address: str) -> Lease | Denial:
        """The lease, if the token proves its key (None: the connection that
        carried its grant asks, ``server/tcp.py``); else LEASE_UNKNOWN (no oracle)."""
        lease = self.engine.leases.get(lease_id)
        if lease is None or (
            token is not None and not hmac.compare_digest(_lease_token(lease), token.encode())
        ):
            self.counters["unknown_lease_requests"] += 1
            self.note(self.abuse.unknown_lease(self.wall(), address))
            why = self.revoked.get(lease_id, "is not held on this server")
            return Denial(reasons.LEASE_UNKNOWN, f"lease {lease_id} {why}")
        return lease

    def granted(self, lease: Lease, address: str) -> None:
        """A grant is durable: record it (its reply has left)."""
        log.debug(
            "grant: lease %s of %s v%s to %s@%s (%s)",
            lease.id,
            lease.feature,
            lease.version,
            lease.user,
            lease.host,
            address,
        )
        self.record_checkout(lease)

    def checkin(self, lease: Lease) -> None:
        """A holder gives its seat back (its release is then made durable)."""
        self.engine.checkin(lease.id, now=self.clock())  # with now: the seat may linger

    def checked_in(self, lease: Lease, address: str) -> None:
        """A checkin has been committed (or its release is owed): record it."""
        self.record_checkin(lease, "normal")
        self.note(self.abuse.checkin(self.wall(), address, lease.host, lease.id))
        log.debug(
            "checkin: lease %s of %s by %s@%s", lease.id, lease.feature, lease.user, lease.host
        )

    def status(self, request: messages.Status) -> dict[str, Any]:
        today = self.today()
        now = self.clock()
        names = self.engine.feature_names()
        if request.feature is not None:
            if request.feature not in names:
                return messages.error(
                    request.id, reasons.NO_SUCH_FEATURE, unknown_feature(request.feature, names)
                )
            names = [request.feature]
        features = []
        for name in names:
            lines = self.engine.lines_of(name)
            features.append(
                {
                    "name": name,
                    "seats": self.engine.seats(name, today),
                    "in_use": self.engine.in_use(name),
                    "lines": [_line_view(line) for line in lines],
                    "leases": [_lease_view(lease) for lease in self.engine.leases_of(name)],
                    "queue": self.queue_view(name),
                    "reservations": self.engine.reservations(name),
                    "lingering": [
                        {**_lease_view(lease), "until_s": max(0, round(until - now))}
                        for lease, until in self.engine.lingering_seats(name)
                    ],
                    "holders": self.engine.leases_count(name),
                }
            )
        return messages.ok(
            request.id,
            server={
                "name": "netmap_lm",
                "version": __version__,
                "host": self.server_line.host,
                "port": self.port,
                "key_fingerprint": self.identity.fingerprint,
                "time": int(self.wall() * 1000),
                "uptime": int(self.wall() - self.started_at),
                "heartbeat_interval": _whole(self.config.heartbeat_interval),
                "lease_timeout": _whole(self.config.lease_timeout),
                "license": str(self.config.license_path),
                "clock_tampered": self.clock_guard.tampered,
                "utc_offset": _utc_offset(self.wall()),
            },
            features=features,
            problems=[str(p) for p in self.license.problems],
        )

    # -- the queue ----------------------------------------------------------------------

    def enqueue(self, request: messages.Checkout, session: Any) -> None:
        """Queue a checkout that found no free seat and asked to wait."""
        waiter = Waiter(request, session, int(self.wall() * 1000))
        waiter.position = self.queue.add(waiter)
        waiter.timer = asyncio.get_running_loop().call_later(request.wait, self._wait_over, waiter)
        self.counters["queued"] += 1
        self.record(
            "QUEUE",
            feature=request.feature,
            user=request.user,
            host=request.host,
            position=waiter.position,
        )
        session.send(_queued(waiter))

    def _leave(self, waiter: Waiter, outcome: DequeueOutcome) -> None:
        self.queue.remove(waiter)
        if waiter.timer is not None:
            waiter.timer.cancel()
        request = waiter.request
        self.record(
            "DEQUEUE",
            feature=request.feature,
            user=request.user,
            host=request.host,
            outcome=outcome,
            waited_ms=int(self.wall() * 1000) - waiter.since_ms,
        )
        for position, behind in enumerate(self.queue.waiters(request.feature), 1):
            if position != behind.position:
                behind.position = position
                behind.session.send(_queued(behind))

    def _wait_over(self, waiter: Waiter) -> None:
        position = waiter.position
        self._leave(waiter, "timeout")
        waiter.session.send(
            messages.error(
                waiter.request.id,
                reasons.SEATS_EXHAUSTED,
                f"no seat of {waiter.request.feature} freed within {waiter.request.wait} s "
                f"(position {position} in the queue)",
            )
        )

    def leave_queue(self, session: Any) -> None:
        """A session closed: its waiters leave, nobody behind is held up."""
        for waiter in self.queue.of_session(session):
            self._leave(waiter, "left")

    def serve_queue(self) -> None:
        """Seats may have freed: offer them to the waiters, in order."""
        for feature in self.queue.features():
            for waiter in self.queue.waiters(feature):
                transport = waiter.session.transport
                if transport is None or transport.is_closing():
                    self._leave(waiter, "left")
                    continue
                nonce = waiter.session.conn.nonce
                reply, lease = self.checkout(
                    waiter.request, nonce, waiter.session.address, retry=True
                )
                if lease is not None:
                    self._leave(waiter, "granted")
                    waiter.session.commit_grant(lease, reply)
                elif reply.get("reason") != reasons.SEATS_EXHAUSTED:
                    self._leave(waiter, "refused")
                    waiter.session.send(reply)

    def queue_view(self, feature: str) -> list[dict[str, Any]]:
        return [
            {
                "position": i + 1,
                "user": w.request.user,
                "host": w.request.host,
                "display": w.request.display,
                "version": w.request.version,
                "since": w.since_ms,
            }
            for i, w in enumerate(self.queue.waiters(feature))
        ]

    # -- admin operations ------------------------------------------------------------

    def admin_allowed(self, request: messages.AdminRequest, nonce: str, address: str) -> bool:
        if self.config.admin_loopback and is_loopback(address):
            return True
        expected = trust.admin_proof(self.admin_key, nonce)
        return bool(request.admin) and hmac.compare_digest(
            expected.encode(), request.admin.encode()
        )

    def remove(self, request: messages.Remove, address: str) -> tuple[dict[str, Any], list[Lease]]:
        if request.lease:
            lease = self.engine.leases.get(request.lease)
            victims = [lease] if lease else []
            if not victims:
                lingering = self.engine.release_lingering(request.lease)
                if isinstance(lingering, Lease):
                    self.record_checkin(lingering, "linger")
                    return messages.ok(request.id, removed=[lingering.id]), []
        else:
            victims = [
                x
                for x in self.engine.leases.values()
                if (x.feature, x.user, x.host) == (request.feature, request.user, request.host)
            ]
        if not victims:
            what = request.lease or f"{request.feature} {request.user} {request.host}"
            return messages.error(
                request.id, reasons.LEASE_UNKNOWN, f"no lease held for {what}"
            ), []
        for lease in victims:
            self.engine.checkin(lease.id)
            self._remember_revoked(lease.id, f"was removed by an administrator ({address})")
            self.record_checkin(lease, "removed")
            self.record(
                "ADMIN",
                action="remove",
                by=address,
                lease=lease.id,
                feature=lease.feature,
                user=lease.user,
                host=lease.host,
            )
            log.info(
                "admin remove: lease %s of %s for %s@%s by %s",
                lease.id,
                lease.feature,
                lease.user,
                lease.host,
                address,
            )
        return messages.ok(request.id, removed=[x.id for x in victims]), victims

    def reread(self, request: messages.Reread, address: str) -> tuple[dict[str, Any], list[Lease]]:
        """Reload the license; keep held leases where they fit, oldest first, so
        that when seats shrink the newest leases are the ones revoked."""
        old = (self.license, self.server_line, self.engine)
        try:
            self.license, self.server_line, self.engine = self._load_license()
        except StartupError as exc:
            self.license, self.server_line, self.engine = old
            log.warning("reread by %s failed; keeping the current license: %s", address, exc)
            self.record("REREAD", result="failed", message=str(exc))
            self.record("ADMIN", action="reread", by=address)
            return messages.error(
                request.id, reasons.LICENSE_INVALID, f"reread failed, current license kept: {exc}"
            ), []
        revoked = self.engine.adopt(old[2], today=self.today())
        for lease in revoked:
            self._remember_revoked(
                lease.id, "was revoked: the reread license (or options) has no seat for it"
            )
            self.record_checkin(lease, "removed")
        log.info(
            "reread by %s: %d feature line(s), %d lease(s) kept, %d revoked",
            address,
            len(self.license.features),
            len(self.engine.leases),
            len(revoked),
        )
        self.record(
            "REREAD", result="ok", message=f"{len(self.engine.leases)} kept, {len(revoked)} revoked"
        )
        self.record("ADMIN", action="reread", by=address)
        return messages.ok(
            request.id,
            features=self.engine.feature_names(),
            kept=len(self.engine.leases),
            revoked=[x.id for x in revoked],
            problems=[str(p) for p in self.license.problems],
            warnings=list(self.engine.warnings),  # what the server logs: lines without effect
        ), revoked

    def _remember_revoked(self, lease_id: str, why: str) -> None:
        if len(self.revoked) >= REVOKED_MEMORY:
            self.revoked.pop(next(iter(self.revoked)))
        self.revoked[lease_id] = why

    def audit(self, request: messages.Audit) -> dict[str, Any]:
        return messages.ok(
            request.id,
            findings=[f.view() for f in self.abuse.list()],
            counters=dict(sorted({**self.counters, **self._store_counters()}.items())),
        )

    def _store_counters(self) -> dict[str, int]:
        """The lease store's transactions, the changes in them and its fsyncs:
        changes ÷ fsyncs is how many share one (docs/administration.md §4)."""
        store = self.store
        return {
            "store_transactions": store.batches,
            "store_changes": store.changes,
            "store_fsyncs": store.syncs,
        }


def _lease_token(lease: Lease) -> bytes:
    """``trust.lease_token`` with the standard library's HMAC: the same bytes,
    cheaper per call on the server (``tests/unit/test_signer.py``)."""
    mac = hmac.digest(lease.key, trust.TOKEN_CONTEXT + lease.id.encode(), "sha256")
    return b64u_encode(mac[:16]).encode()


def _utc_offset(wall: float) -> int:
    """Seconds east of UTC of the server's local time (lmstat prints local times)."""
    return int(time.localtime(wall).tm_gmtoff)


def _queued(waiter: Waiter) -> dict[str, Any]:
    """The interim answer to a waiting checkout: same id, ``queued`` and the position."""
    return messages.ok(
        waiter.request.id, queued=True, position=waiter.position, feature=waiter.request.feature
    )


def _hold_state(state: Path) -> statelock.StateLock:
    try:
        return statelock.hold(state)
    except StateInUse as exc:
        raise StartupError(str(exc)) from None
    except OSError as exc:
        raise StartupError(
            f"{state / statelock.LOCK_FILE}: cannot open the lock file ({exc.strerror or exc}); "
            "the state directory must be writable by the server's user"
        ) from None


def _open_report_log(path: Path) -> ReportLog:
    try:
        return ReportLog(path)
    except OSError as exc:
        raise StartupError(
            f"{path}: cannot open the report log ({exc.strerror or exc}); it must be a file "
            "the server's user can write in a directory it can write"
        ) from None


def _tls_context(config: ServerConfig) -> Any:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(config.tls_cert), str(config.tls_key))
    except (OSError, ssl.SSLError) as exc:
        raise StartupError(
            f"{config.tls_cert} / {config.tls_key}: cannot load the TLS certificate and key ({exc})"
        ) from None
    return context


def _line_view(line: licensefile.FeatureLine) -> dict[str, Any]:
    return {
        "id": line.id,
        "version": line.version,
        "seats": line.seats,
        "type": line.type,
        "start": licensefile.format_date(line.start),
        "expires": licensefile.format_date(line.expires),
        "lineno": line.lineno,
    }


def _lease_view(lease: Lease) -> dict[str, Any]:
    return {
        "lease": lease.id,
        "handle": lease.handle,
        "user": lease.user,
        "host": lease.host,
        "display": lease.display,
        "pid": lease.pid,
        "project": lease.project,
        "version": lease.version,
        "line": lease.line_id,
        "granted_at": lease.granted_at_ms,
        "borrow_until": lease.borrow_until_ms,
    }


def _whole(seconds: float) -> int:
    """Lease terms travel as whole seconds (signed objects hold no floats)."""
    return max(1, round(seconds))
