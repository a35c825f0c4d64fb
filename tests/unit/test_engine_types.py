"""License types and line attributes in the pure engine: node-locked, named,
uncounted, dup grouping, linger and borrow (SPEC §4)."""

from __future__ import annotations

import itertools
from datetime import date

from netmap_lm import reasons
from netmap_lm.engine.seats import CheckoutRequest, Denial, Lease, SeatEngine
from netmap_lm.licensing.licensefile import FeatureLine

TODAY = date(2026, 11, 28)
HOUR_MS = 3_600_000
_ids = itertools.count()


def line(
    seats: int | None = 2,
    *,
    kind: str = "floating",
    id: str = "L",
    name: str = "netmap",
    **extra: object,
) -> FeatureLine:
    return FeatureLine(
        name=name,
        version="5.0",
        seats=seats,
        type=kind,
        start=None,
        expires=None,
        id=id,
        text="",
        lineno=1,
        **extra,
    )  # type: ignore[arg-type]


def engine(*lines: FeatureLine, timeout: float = 10.0) -> SeatEngine:
    return SeatEngine(lines, lease_timeout=timeout)


def take(
    e: SeatEngine,
    user: str = "ann",
    host: str = "ws1",
    *,
    now: float = 0.0,
    wall_ms: int = 0,
    clock_tampered: bool = False,
    **fields: object,
) -> Lease | Denial:
    request = CheckoutRequest("netmap", "5.0", user, host, **fields)  # type: ignore[arg-type]
    return e.checkout(
        request,
        lease_id=f"lease{next(_ids)}",
        key=next(_ids).to_bytes(4, "big"),
        now=now,
        wall_ms=wall_ms,
        today=TODAY,
        clock_tampered=clock_tampered,
    )


def granted(result: object) -> Lease:
    assert isinstance(result, Lease), result
    return result


def refused(result: object, reason: str) -> str:
    assert isinstance(result, Denial), result
    assert result.reason == reason, result
    return result.message


# -- node-locked ----------------------------------------------------------------------------


def test_node_locked_serves_only_its_host():
    e = engine(line(kind="nodelocked", hostid="mac:00aabbccddee"))
    granted(take(e, hostid="mac:00AABBCCDDEE"))  # host ids compare in any case
    message = refused(take(e, hostid="mac:001122334455"), reasons.HOSTID_MISMATCH)
    assert message == (
        "netmap is node-locked to another machine; this client's host id is mac:001122334455"
    )
    assert "(none sent)" in refused(take(e), reasons.HOSTID_MISMATCH)


def test_node_locked_to_a_list_of_hosts_and_a_client_with_several_ids():
    e = engine(line(kind="nodelocked", hostid="machine:aaaa, machine:bbbb"))
    granted(take(e, hostid="machine:bbbb"))
    granted(take(e, hostid="machine:zzzz,machine:aaaa"))  # any of the client's ids
    refused(take(e, hostid="machine:cccc"), reasons.HOSTID_MISMATCH)


def test_node_locked_any_is_every_host():
    e = engine(line(kind="nodelocked", hostid="ANY"))
    granted(take(e, hostid="machine:whatever"))


def test_uncounted_node_locked_is_unlimited_on_its_host():
    e = engine(line(None, kind="nodelocked", hostid="machine:aaaa"))
    assert all(isinstance(take(e, hostid="machine:aaaa"), Lease) for _ in range(50))
    refused(take(e, hostid="machine:bbbb"), reasons.HOSTID_MISMATCH)
    assert e.seats("netmap", TODAY) is None


def test_a_node_locked_line_is_used_before_the_floating_seats():
    e = engine(line(1, id="float"), line(None, kind="nodelocked", hostid="machine:aaaa", id="nl"))
    assert granted(take(e, hostid="machine:aaaa")).line_id == "nl"
    assert granted(take(e, hostid="machine:aaaa")).line_id == "nl"
    assert granted(take(e, hostid="machine:bbbb")).line_id == "float"  # the floating seat
    # Full floating line: the refusal is about seats, not this host's id.
    refused(take(e, hostid="machine:cccc"), reasons.SEATS_EXHAUSTED)


# -- named users ---------------------------------------------------------------------------


def test_named_users_only_and_their_seats_still_count():
    e = engine(line(2, kind="named", users=("ann", "bob", "carl")))
    granted(take(e, "ann"))
    message = refused(take(e, "mallory"), reasons.NOT_AUTHORIZED)
    assert message == "netmap is licensed to named users; mallory is not one of them"
    granted(take(e, "bob"))
    refused(take(e, "carl"), reasons.SEATS_EXHAUSTED)


# -- uncounted -------------------------------------------------------------------------------


def test_an_uncounted_line_is_used_before_counted_ones():
    e = engine(line(1, id="counted"), line(None, id="free"))
    assert all(granted(take(e)).line_id == "free" for _ in range(10))
    assert e.in_use("netmap") == 10


# -- dup grouping ----------------------------------------------------------------------------


def test_dup_user_host_counts_one_seat_for_one_user_on_one_host():
    e = engine(line(1, dup="user_host"))
    first = granted(take(e, "ann", "ws1"))
    second = granted(take(e, "ann", "ws1"))  # no seat left, but it shares ann@ws1's
    assert (second.id, second.key) != (first.id, first.key)  # its own lease, heartbeats
    assert e.in_use("netmap") == 1
    assert e.leases_count("netmap") == 2
    refused(take(e, "ann", "ws2"), reasons.SEATS_EXHAUSTED)
    refused(take(e, "bob", "ws1"), reasons.SEATS_EXHAUSTED)
    e.checkin(first.id)
    assert e.in_use("netmap") == 1  # the last lease of the group still holds it
    refused(take(e, "bob", "ws1"), reasons.SEATS_EXHAUSTED)
    e.checkin(second.id)
    assert e.in_use("netmap") == 0
    granted(take(e, "bob", "ws1"))


def test_dup_user_and_dup_host():
    by_user = engine(line(1, dup="user"))
    granted(take(by_user, "ann", "ws1"))
    granted(take(by_user, "ann", "ws2"))
    refused(take(by_user, "bob", "ws1"), reasons.SEATS_EXHAUSTED)
    by_host = engine(line(1, dup="host"))
    granted(take(by_host, "ann", "ws1"))
    granted(take(by_host, "bob", "ws1"))
    refused(take(by_host, "ann", "ws2"), reasons.SEATS_EXHAUSTED)


def test_dup_none_counts_every_checkout():
    e = engine(line(2))
    granted(take(e))
    granted(take(e))
    refused(take(e), reasons.SEATS_EXHAUSTED)


def test_a_dup_group_loses_its_seat_only_when_its_last_lease_times_out():
    e = engine(line(1, dup="user_host"), timeout=10)
    first = granted(take(e, now=0.0))
    second = granted(take(e, now=5.0))
    assert [x.id for x in e.expire(12.0)] == [first.id]
    assert e.in_use("netmap") == 1
    assert [x.id for x in e.expire(16.0)] == [second.id]
    assert e.in_use("netmap") == 0


def test_a_dup_group_is_restored_as_one_seat():
    old = engine(line(1, dup="user_host"))
    leases = [granted(take(old)), granted(take(old))]
    new = engine(line(1, dup="user_host"))
    assert all(new.restore(x, now=100.0) for x in leases)
    assert new.in_use("netmap") == 1
    assert new.leases_count("netmap") == 2


# -- linger -----------------------------------------------------------------------------------


def test_a_lingering_seat_stays_counted_then_ends():
    e = engine(line(1, linger_seconds=30))
    lease = granted(take(e))
    assert e.checkin(lease.id, now=100.0) is lease
    assert lease.end_reason == "checkin"
    assert e.in_use("netmap") == 1
    assert e.leases_count("netmap") == 0
    assert lease.id not in e.leases
    assert e.lingering_seats("netmap") == [(lease, 130.0)]
    refused(take(e, "bob", now=110.0), reasons.SEATS_EXHAUSTED)
    assert e.expire(129.9) == []
    ended = e.expire(130.0)
    assert ended == [lease] and lease.end_reason == "linger"
    assert e.in_use("netmap") == 0
    granted(take(e, "bob", now=131.0))


def test_the_same_user_on_the_same_host_takes_a_lingering_seat_back():
    e = engine(line(1, linger_seconds=30), timeout=1000)
    e.checkin(granted(take(e, "ann", "ws1")).id, now=0.0)
    again = granted(take(e, "ann", "ws1", now=10.0))
    assert e.in_use("netmap") == 1
    assert e.lingering_seats() == []
    assert e.expire(40.0) == []  # the old linger end is void
    e.checkin(again.id, now=50.0)
    assert [x.id for x in e.expire(80.0)] == [again.id]


def test_checkin_without_now_frees_at_once():
    e = engine(line(1, linger_seconds=30))
    e.checkin(granted(take(e)).id)  # an administrator's remove, a rollback
    assert e.in_use("netmap") == 0


def test_a_seat_whose_linger_is_over_is_free_before_the_sweep_and_reported_later():
    e = engine(line(1, linger_seconds=30))
    lease = granted(take(e))
    e.checkin(lease.id, now=0.0)
    granted(take(e, "bob", now=31.0))  # no sweep ran in between
    assert [(x.id, x.end_reason) for x in e.expire(32.0)] == [(lease.id, "linger")]


def test_timeouts_do_not_linger():
    e = engine(line(1, linger_seconds=30), timeout=10)
    granted(take(e))
    assert [x.end_reason for x in e.expire(11.0)] == ["timeout"]
    assert e.in_use("netmap") == 0


def test_a_dup_group_lingers_after_its_last_lease_and_is_taken_back_by_the_group():
    e = engine(line(1, dup="user", linger_seconds=30))
    first = granted(take(e, "ann", "ws1"))
    second = granted(take(e, "ann", "ws2"))
    e.checkin(first.id, now=0.0)
    e.checkin(second.id, now=1.0)
    assert e.lingering_seats() == [(second, 31.0)]
    granted(take(e, "ann", "ws3", now=5.0))  # same dup group (user)
    assert e.in_use("netmap") == 1


def test_an_administrator_frees_a_lingering_seat():
    e = engine(line(1, linger_seconds=300))
    lease = granted(take(e))
    e.checkin(lease.id, now=0.0)
    assert e.release_lingering(lease.id) is lease
    assert e.in_use("netmap") == 0
    refused(e.release_lingering(lease.id), reasons.LEASE_UNKNOWN)


def test_a_lingering_seat_is_carried_over_a_reread():
    old = engine(line(2, linger_seconds=30), timeout=1000)
    lease = granted(take(old))
    old.checkin(lease.id, now=0.0)
    kept = granted(take(old, "bob", "ws2", now=1.0))
    new = engine(line(2, linger_seconds=30), timeout=1000)
    assert new.adopt(old, today=TODAY) == []
    assert new.in_use("netmap") == 2
    assert new.leases == {kept.id: kept}
    assert [x.id for x in new.expire(30.0)] == [lease.id]


def test_adopt_revokes_the_newest_leases_when_seats_shrink():
    old = engine(line(3))
    leases = [granted(take(old, user)) for user in ("ann", "bob", "carl")]
    leases[0].granted_at_ms, leases[1].granted_at_ms, leases[2].granted_at_ms = 3, 1, 2
    new = engine(line(2))
    assert new.adopt(old, today=TODAY) == [leases[0]]


# -- borrow -----------------------------------------------------------------------------------


def test_a_borrow_ends_on_the_wall_clock_not_by_missing_heartbeats():
    e = engine(line(1, borrow_hours=24), timeout=10)
    wall = 1_000_000
    lease = granted(take(e, borrow_hours=8, wall_ms=wall))
    assert lease.borrow_until_ms == wall + 8 * HOUR_MS
    assert e.expire(10_000.0) == []  # no heartbeat for hours: still held
    assert e.expire(10_000.0, wall_ms=wall + 8 * HOUR_MS - 1) == []
    ended = e.expire(10_000.0, wall_ms=wall + 8 * HOUR_MS)
    assert ended == [lease] and lease.end_reason == "borrow_end"
    assert e.in_use("netmap") == 0


def test_a_borrow_needs_borrow_on_the_line_and_within_its_hours():
    assert "no borrow=" in refused(take(engine(line()), borrow_hours=1), reasons.NOT_AUTHORIZED)
    e = engine(line(borrow_hours=24))
    message = refused(take(e, borrow_hours=25), reasons.NOT_AUTHORIZED)
    assert message == (
        "netmap may be borrowed for at most 24 hours (borrow= on its license line); 25 requested"
    )
    granted(take(e, borrow_hours=24))


def test_a_borrow_may_come_from_the_one_line_that_allows_it():
    e = engine(line(1, id="plain"), line(1, id="travel", borrow_hours=72))
    assert granted(take(e, borrow_hours=48)).line_id == "travel"
    refused(take(e, borrow_hours=48), reasons.SEATS_EXHAUSTED)


def test_no_borrow_while_the_clock_is_set_back():
    e = engine(line(borrow_hours=24))
    message = refused(take(e, borrow_hours=1, clock_tampered=True), reasons.CLOCK_TAMPERED)
    assert message == (
        "the server clock was set back; borrowing is refused until the clock is right"
    )
    granted(take(e, clock_tampered=True))


def test_a_borrowed_lease_stays_borrowed_after_a_restart():
    old = engine(line(1, borrow_hours=24))
    lease = granted(take(old, borrow_hours=8, wall_ms=0))
    new = engine(line(1, borrow_hours=24), timeout=10)
    assert new.restore(lease, now=500.0)
    assert new.expire(10_000.0, wall_ms=HOUR_MS) == []
    assert new.expire(10_000.0, wall_ms=8 * HOUR_MS) == [lease]
