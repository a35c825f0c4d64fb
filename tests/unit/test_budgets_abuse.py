"""Per-address budgets and the abuse monitor, with a hand-driven clock."""

from __future__ import annotations

from netmap_lm.server.abuse import CHURN, DENIAL_BURST, USERS_PER_HOST, AbuseMonitor
from netmap_lm.server.budgets import AddressBudgets, Limits, TokenBucket


def test_token_bucket_refills_at_its_rate():
    bucket = TokenBucket(rate=10, burst=5, now=0)
    assert all(bucket.take(0) for _ in range(5))
    assert not bucket.take(0)
    assert bucket.take(0.1)  # one token back after 100 ms
    assert not bucket.take(0.1)


def test_connections_per_address_and_total():
    budgets = AddressBudgets(Limits(max_connections=5, max_per_address=3, connect_burst=100))
    assert all(budgets.admit_connection("10.0.0.1", 0) is None for _ in range(3))
    assert "3 connections open" in budgets.admit_connection("10.0.0.1", 0)
    assert budgets.admit_connection("10.0.0.2", 0) is None  # another address is unaffected
    budgets.release_connection("10.0.0.1")
    assert budgets.admit_connection("10.0.0.1", 0) is None
    assert budgets.admit_connection("10.0.0.3", 0) is None
    assert "5 connections" in budgets.admit_connection("10.0.0.4", 0)


def test_connect_rate_per_address():
    budgets = AddressBudgets(Limits(connects_per_second=1, connect_burst=2))
    for _ in range(2):
        assert budgets.admit_connection("a", 0) is None
        budgets.release_connection("a")
    assert "faster than" in budgets.admit_connection("a", 0)
    assert budgets.admit_connection("b", 0) is None
    assert budgets.admit_connection("a", 1.0) is None


def test_request_rate_and_off_switch():
    budgets = AddressBudgets(Limits(requests_per_second=2, request_burst=2))
    assert budgets.admit_request("a", 0) and budgets.admit_request("a", 0)
    assert not budgets.admit_request("a", 0)
    assert budgets.admit_request("b", 0)
    unlimited = AddressBudgets(Limits(requests_per_second=0))
    assert all(unlimited.admit_request("a", 0) for _ in range(10_000))


def test_forget_idle_addresses():
    budgets = AddressBudgets()
    budgets.admit_request("a", 0)
    budgets.forget_idle(1000)
    assert budgets._addresses == {}


def test_denial_burst_is_one_finding_with_a_count():
    monitor = AbuseMonitor()
    new = [
        monitor.denial(float(i) / 10, "10.1.1.1", "SEATS_EXHAUSTED")
        for i in range(DENIAL_BURST + 5)
    ]
    assert sum(f is not None for f in new) == 1
    (finding,) = monitor.list()
    assert finding.kind == "denial_burst" and finding.count == 6


def test_denials_spread_out_are_not_a_burst():
    monitor = AbuseMonitor()
    for i in range(DENIAL_BURST * 3):
        monitor.denial(i * 10.0, "10.1.1.1", "SEATS_EXHAUSTED")
    assert monitor.list() == []


def test_one_host_cycling_user_names():
    monitor = AbuseMonitor()
    for i in range(USERS_PER_HOST):
        monitor.checkout(float(i), "10.1.1.1", f"user{i}", "ws9", f"l{i}")
    (finding,) = monitor.list()
    assert finding.kind == "user_cycling" and finding.host == "ws9"


def test_rapid_checkout_checkin_churn():
    monitor = AbuseMonitor()
    for i in range(CHURN):
        monitor.checkout(float(i), "10.1.1.1", "ann", "ws1", f"l{i}")
        monitor.checkin(float(i) + 0.1, "10.1.1.1", "ws1", f"l{i}")
    assert [f.kind for f in monitor.list()] == ["churn"]
