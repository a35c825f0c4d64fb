"""Pure seat accounting: every rule with an injected clock, no sockets."""

from __future__ import annotations

import os
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from netmap_lm import reasons
from netmap_lm.engine.seats import CheckoutRequest, Denial, Lease, SeatEngine
from netmap_lm.licensing.licensefile import FeatureLine

TODAY = date(2026, 11, 28)


def line(
    name: str = "netmap",
    version: str = "5.0",
    seats: int | None = 3,
    *,
    start: date | None = None,
    expires: date | None = None,
    id: str | None = None,
) -> FeatureLine:
    return FeatureLine(
        name=name,
        version=version,
        seats=seats,
        type="floating",
        start=start,
        expires=expires,
        id=id or f"{name}-{version}-{seats}-{expires}",
        text="",
        lineno=1,
    )


def request(feature: str = "netmap", version: str = "5.0", user: str = "ann") -> CheckoutRequest:
    return CheckoutRequest(feature, version, user, "ws1")


class Engine:
    """A SeatEngine with a hand-driven clock."""

    def __init__(self, *lines: FeatureLine, timeout: float = 10.0, invalid: tuple = ()) -> None:
        self.now = 0.0
        self.engine = SeatEngine(lines, lease_timeout=timeout, invalid_names=invalid)

    def checkout(self, req: CheckoutRequest | None = None, today: date = TODAY) -> Lease | Denial:
        return self.engine.checkout(
            req or request(),
            lease_id=os.urandom(16).hex(),
            key=b"k" * 32,
            now=self.now,
            wall_ms=0,
            today=today,
        )


def reason(result: object) -> str:
    assert isinstance(result, Denial), result
    return result.reason


def test_grants_up_to_the_seat_count_then_refuses():
    e = Engine(line(seats=3))
    assert all(isinstance(e.checkout(), Lease) for _ in range(3))
    denial = e.checkout()
    assert reason(denial) == reasons.SEATS_EXHAUSTED
    assert "all 3 seats" in denial.message


def test_checkin_frees_the_seat():
    e = Engine(line(seats=1))
    lease = e.checkout()
    assert isinstance(lease, Lease)
    assert e.engine.checkin(lease.id) is lease
    assert isinstance(e.checkout(), Lease)


def test_unknown_feature_and_invalid_only_lines():
    assert reason(Engine(line()).checkout(request("other"))) == reasons.NO_SUCH_FEATURE
    e = Engine(line(), invalid=("broken",))
    assert reason(e.checkout(request("broken"))) == reasons.LICENSE_INVALID


def test_version_above_the_licensed_one_is_refused():
    e = Engine(line(version="5.0"))
    denial = e.checkout(request(version="5.1"))
    assert reason(denial) == reasons.VERSION_NOT_LICENSED
    assert "licensed up to 5.0" in denial.message
    assert isinstance(e.checkout(request(version="4.9")), Lease)
    assert isinstance(e.checkout(request(version="5")), Lease)


def test_versions_compare_as_numbers_not_text():
    e = Engine(line(version="5.10"))
    assert isinstance(e.checkout(request(version="5.9")), Lease)


def test_dates():
    expired = Engine(line(expires=TODAY - timedelta(days=1)))
    assert reason(expired.checkout()) == reasons.EXPIRED
    future = Engine(line(start=TODAY + timedelta(days=1)))
    assert reason(future.checkout()) == reasons.NOT_YET_VALID
    last_day = Engine(line(start=TODAY, expires=TODAY))
    assert isinstance(last_day.checkout(), Lease)


def test_lines_of_one_name_add_up():
    e = Engine(line(seats=2, id="a"), line(seats=3, id="b"))
    leases = [e.checkout() for _ in range(5)]
    assert all(isinstance(x, Lease) for x in leases)
    assert reason(e.checkout()) == reasons.SEATS_EXHAUSTED
    assert e.engine.in_use("netmap") == 5
    assert e.engine.seats("netmap", TODAY) == 5


def test_a_lease_draws_from_the_lowest_sufficient_version():
    e = Engine(line(version="6.0", seats=1, id="v6"), line(version="5.0", seats=1, id="v5"))
    first = e.checkout(request(version="5.0"))
    assert isinstance(first, Lease) and first.line_id == "v5"
    # The v6 seat is still there for whoever needs 6.0.
    second = e.checkout(request(version="6.0"))
    assert isinstance(second, Lease) and second.line_id == "v6"


def test_expired_line_does_not_count_but_current_one_does():
    e = Engine(line(seats=5, expires=TODAY - timedelta(days=1), id="old"), line(seats=1, id="new"))
    assert isinstance(e.checkout(), Lease)
    assert reason(e.checkout()) == reasons.SEATS_EXHAUSTED


def test_uncounted_never_runs_out():
    e = Engine(line(seats=None))
    assert all(isinstance(e.checkout(), Lease) for _ in range(100))
    assert e.engine.seats("netmap", TODAY) is None


def test_lease_without_heartbeat_is_reclaimed_after_the_timeout():
    e = Engine(line(seats=1), timeout=10)
    lease = e.checkout()
    e.now = 9.9
    assert e.engine.expire(e.now) == []
    e.now = 10.1
    assert [x.id for x in e.engine.expire(e.now)] == [lease.id]
    assert isinstance(e.checkout(), Lease)


def test_heartbeat_extends_the_lease():
    e = Engine(line(seats=1), timeout=10)
    lease = e.checkout()
    e.now = 8
    e.engine.heartbeat(lease.id, now=e.now)
    e.now = 15
    assert e.engine.expire(e.now) == []
    assert e.engine.expire(18.5) != []


def test_udp_sequence_numbers_must_increase():
    e = Engine(line())
    lease = e.checkout()
    assert isinstance(e.engine.heartbeat(lease.id, now=1, seq=5), Lease)
    assert reason(e.engine.heartbeat(lease.id, now=2, seq=5)) == reasons.PROTOCOL_ERROR
    assert reason(e.engine.heartbeat(lease.id, now=2, seq=4)) == reasons.PROTOCOL_ERROR
    assert isinstance(e.engine.heartbeat(lease.id, now=2, seq=6), Lease)


def test_unknown_lease():
    e = Engine(line())
    assert reason(e.engine.checkin("0" * 32)) == reasons.LEASE_UNKNOWN
    assert reason(e.engine.heartbeat("0" * 32, now=0)) == reasons.LEASE_UNKNOWN


def test_restore_after_restart_keeps_the_seat_and_gives_a_fresh_timeout():
    first = Engine(line(seats=1), timeout=10)
    lease = first.checkout()
    restarted = Engine(line(seats=1), timeout=10)
    restarted.now = 1000.0
    assert restarted.engine.restore(lease, now=restarted.now)
    assert reason(restarted.checkout()) == reasons.SEATS_EXHAUSTED
    assert restarted.engine.expire(1005.0) == []
    assert not restarted.engine.restore(lease, now=1000.0)  # never counted twice


def test_restore_refuses_a_lease_whose_line_is_gone():
    lease = Engine(line(id="gone")).checkout()
    assert not Engine(line(id="other")).engine.restore(lease, now=0)


# -- property: exact seat counts under any interleaving -----------------------------

ACTIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("checkout"), st.sampled_from(["a", "b"]), st.sampled_from(["4.0", "5.0", "6.0"])
        ),
        st.tuples(st.just("checkin"), st.integers(0, 50), st.just("")),
        st.tuples(st.just("heartbeat"), st.integers(0, 50), st.just("")),
        st.tuples(st.just("advance"), st.integers(0, 8), st.just("")),
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(ACTIONS, st.integers(1, 4), st.integers(1, 4))
def test_grants_never_exceed_seats_and_freed_seats_are_granted_again(actions, seats_a, seats_b):
    lines = [
        line("a", "5.0", seats_a, id="a5"),
        line("a", "6.0", 1, id="a6"),
        line("b", "5.0", seats_b, id="b5"),
    ]
    limits = {"a5": seats_a, "a6": 1, "b5": seats_b}
    e = Engine(*lines, timeout=10)
    granted: list[str] = []
    for kind, arg, version in actions:
        if kind == "checkout":
            result = e.checkout(request(arg, version))
            if isinstance(result, Lease):
                granted.append(result.id)
            else:
                # A refusal for seats means every line that could serve is full.
                if result.reason == reasons.SEATS_EXHAUSTED:
                    usable = [
                        ln
                        for ln in lines
                        if ln.name == arg
                        and tuple(map(int, ln.version.split(".")))
                        >= tuple(map(int, version.split(".")))
                    ]
                    assert all(
                        sum(1 for x in e.engine.leases.values() if x.line_id == ln.id)
                        == limits[ln.id]
                        for ln in usable
                    )
                    # Free one of them: the very next checkout must succeed.
                    victim = next(
                        x for x in e.engine.leases.values() if x.line_id in {ln.id for ln in usable}
                    )
                    e.engine.checkin(victim.id)
                    assert isinstance(e.checkout(request(arg, version)), Lease)
                else:
                    assert result.reason == reasons.VERSION_NOT_LICENSED
        elif kind in ("checkin", "heartbeat") and granted:
            lease_id = granted[arg % len(granted)]
            if kind == "checkin":
                e.engine.checkin(lease_id)
            else:
                e.engine.heartbeat(lease_id, now=e.now)
        elif kind == "advance":
            e.now += arg
            e.engine.expire(e.now)
        per_line: dict[str, int] = {}
        for lease in e.engine.leases.values():
            per_line[lease.line_id] = per_line.get(lease.line_id, 0) + 1
        for line_id, count in per_line.items():
            assert count <= limits[line_id]
        assert e.engine.in_use("a") <= seats_a + 1
        assert e.engine.in_use("b") <= seats_b


# -- property: options, dup groups and linger never break the counts ------------------------

USERS = ("ann", "bob", "cat", "dan")
HOSTS = ("h1", "h2")
RULES = (
    "RESERVE 1 a USER bob",
    "RESERVE 2 a GROUP eng",
    "RESERVE 1 a HOST h2",
    "RESERVE 1 a:ID=a6 USER cat",
    "MAX 1 a USER ann",
    "MAX 2 a GROUP eng",
    "MAX 1 a USER ALL_USERS",
    "MAX 2 a HOST h1",
    "MAX 1 a:ID=a6 GROUP eng",
)
POLICY_ACTIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("checkout"),
            st.sampled_from(USERS),
            st.sampled_from(HOSTS),
            st.sampled_from(["5.0", "6.0"]),
        ),
        st.tuples(st.just("checkin"), st.integers(0, 60), st.booleans(), st.just("")),
        st.tuples(st.just("heartbeat"), st.integers(0, 60), st.just(""), st.just("")),
        st.tuples(st.just("advance"), st.integers(0, 8), st.just(""), st.just("")),
    ),
    max_size=80,
)


def _seats(engine: SeatEngine) -> list:
    """Every counted seat, read from the engine's internals (held or lingering)."""
    found = {id(s): s for s in engine._seat_of.values()}
    found.update({id(s): s for s in engine._lingering.values()})
    return list(found.values())


def _check_counts(engine: SeatEngine) -> None:
    """Recount everything from the seats and compare with the engine's counters."""
    seats = _seats(engine)
    assert engine.in_use("a") == len(seats)
    limits = {}
    for pool in engine._by_line.values():
        mine = [s for s in seats if s.pool is pool]
        assert pool.used == len(mine) <= pool.cap  # grants never exceed seats
        shared = [s for s in mine if s.reservation is None]
        assert pool.shared_used == len(shared) <= pool.shared_cap
        if pool.dup != "none":  # one seat per dup group
            assert len({s.key for s in mine}) == len(mine)
        for reservation in pool.policy.reservations if pool.policy else ():
            held = [s for s in mine if s.reservation is reservation]
            assert reservation.used == len(held) <= reservation.cap
            # Reserved seats never go to non-members.
            assert all(reservation.identity.matches(s.holder) for s in held)
        for limit in pool.policy.maxes if pool.policy else ():
            limits[id(limit)] = limit
    for limit in limits.values():
        members = [
            s
            for s in seats
            if limit.rule.applies_to(s.pool.line) and limit.identity.matches(s.holder)
        ]
        for key in {limit.key(s.holder) for s in members} | set(limit.counts):
            held = [s for s in members if limit.key(s.holder) == key]
            assert limit.counts.get(key, 0) == len(held)
            # MAX is never exceeded by unreserved seats; only a reservation (a
            # promise, RESERVE over MAX) can take an identity past it.
            assert sum(1 for s in held if s.reservation is None) <= limit.count
            if len(held) > limit.count:
                assert any(s.reservation is not None for s in held)


def _refusal_was_right(engine: SeatEngine, user: str, host: str, version: str) -> None:
    """A SEATS_EXHAUSTED refusal: no line that could serve had a seat for this client."""
    client = CheckoutRequest("a", version, user, host)
    seats = _seats(engine)
    for pool in engine._pools["a"]:
        if pool.version_key < (int(version[0]), 0, 0, 0):
            continue
        mine = [s for s in seats if s.pool is pool]
        assert not any(
            s.key == (user, host)
            or (pool.dup == "user" and s.key == (user,))
            or (pool.dup == "host" and s.key == (host,))
            for s in mine
            if pool.dup != "none" or s.linger_until is not None
        )
        policy = pool.policy
        reservations = policy.reservations if policy else []
        assert not any(
            r.identity.matches(client) and sum(1 for s in mine if s.reservation is r) < r.cap
            for r in reservations
        )
        shared_free = pool.shared_cap - sum(1 for s in mine if s.reservation is None)
        capped = policy is not None and any(
            m.identity.matches(client)
            and sum(
                1
                for s in seats
                if m.rule.applies_to(s.pool.line)
                and m.identity.matches(s.holder)
                and m.key(s.holder) == m.key(client)
            )
            >= m.count
            for m in policy.maxes
        )
        assert capped or shared_free <= 0


@settings(max_examples=300, deadline=None)
@given(
    POLICY_ACTIONS,
    st.lists(st.sampled_from(RULES), max_size=4, unique=True),
    st.integers(1, 4),
    st.sampled_from(["none", "user", "host", "user_host"]),
    st.sampled_from([0, 5]),
)
def test_reservations_max_dup_and_linger_keep_exact_counts(actions, rules, seats_a, dup, linger):
    from netmap_lm.licensing.options import parse_options

    options = parse_options("GROUP eng ann bob\n" + "\n".join(rules), "p.opt")
    lines = [
        FeatureLine(
            name="a",
            version=v,
            seats=n,
            type="floating",
            start=None,
            expires=None,
            id=i,
            text="",
            lineno=1,
            dup=dup,
            linger_seconds=linger,
        )
        for v, n, i in (("5.0", seats_a, "a5"), ("6.0", 1, "a6"))
    ]
    engine = SeatEngine(lines, lease_timeout=10, options=options)
    now = 0.0
    granted: list[str] = []
    for kind, arg, extra, version in actions:
        if kind == "checkout":
            result = engine.checkout(
                CheckoutRequest("a", version, arg, extra),
                lease_id=os.urandom(8).hex(),
                key=b"k",
                now=now,
                wall_ms=0,
                today=TODAY,
            )
            if isinstance(result, Lease):
                granted.append(result.id)
            else:
                assert result.reason == reasons.SEATS_EXHAUSTED, result
                _refusal_was_right(engine, arg, extra, version)
        elif kind in ("checkin", "heartbeat") and granted:
            lease_id = granted[arg % len(granted)]
            if kind == "checkin":
                engine.checkin(lease_id, now=now if extra else None)
            else:
                engine.heartbeat(lease_id, now=now)
        elif kind == "advance":
            now += arg
            engine.expire(now)
        _check_counts(engine)
    # Everything returned: every counter back to zero.
    for lease_id in list(engine.leases):
        engine.checkin(lease_id)
    engine.expire(now + 100)
    assert engine.in_use("a") == 0
    _check_counts(engine)


def test_clock_set_back_refuses_time_limited_lines_but_not_permanent_ones():
    e = Engine(line("dated", expires=TODAY + timedelta(days=30)), line("forever"))
    tampered = {
        "lease_id": "a" * 32,
        "key": b"k",
        "now": 0,
        "wall_ms": 0,
        "today": TODAY,
        "clock_tampered": True,
    }
    assert reason(e.engine.checkout(request("dated"), **tampered)) == reasons.CLOCK_TAMPERED
    assert isinstance(e.engine.checkout(request("forever"), **tampered), Lease)


def test_clock_guard():
    from netmap_lm.engine.clockguard import ClockGuard

    guard = ClockGuard(latest_ms=10_000_000, tolerance_ms=1000)
    assert not guard.observe(10_000_500)
    assert not guard.observe(10_000_000)  # back, but within tolerance
    assert guard.observe(9_000_000)  # two days, say, back
    assert guard.tampered
    assert not guard.observe(10_000_600)  # the clock is right again
    assert guard.latest_ms == 10_000_600


def test_an_unknown_feature_is_named_with_the_near_ones_and_only_looked_for_in_small_licenses():
    from netmap_lm.engine.seats import LIST_AT_MOST, SUGGEST_AMONG, unknown_feature

    assert (
        unknown_feature("x", []) == "no license for feature 'x'; this server licenses no features"
    )
    assert unknown_feature("cad", ["netmap"]) == (
        "no license for feature 'cad'; this server licenses netmap"
    )
    many = ["cadtool", "mesher", "netmap", "netmap-pro", "plotter", "render", "solver", "viewer"]
    many += [f"extra{i}" for i in range(LIST_AT_MOST + 1 - len(many))]
    assert len(many) > LIST_AT_MOST
    assert unknown_feature("xyz", many).endswith(f"lists the {len(many)} features of this server")
    assert unknown_feature("cad", many).endswith("; did you mean 'cadtool'?")
    assert unknown_feature("netmpa", many).endswith("; did you mean 'netmap' or 'netmap-pro'?")
    assert unknown_feature("Solver", many).endswith("; did you mean 'solver'? (feature names are "
                                                    "case-sensitive)")  # fmt: skip
    huge = [f"f{i}" for i in range(SUGGEST_AMONG + 1)]
    assert unknown_feature("f-1", huge) == (  # 'f1' is near, but not looked for among so many
        f"no license for feature 'f-1'; 'netmap-lm status' lists the {SUGGEST_AMONG + 1} features "
        "of this server"
    )
    assert "did you mean 'f1'" in unknown_feature("f-1", huge[:SUGGEST_AMONG])


def test_seats_exhausted_reads_right_for_one_seat():
    e = Engine(line("cad", seats=1))
    assert isinstance(e.checkout(request("cad")), Lease)
    denial = e.checkout(request("cad"))
    assert reason(denial) == reasons.SEATS_EXHAUSTED
    assert denial.message == "the 1 seat of cad is in use"
