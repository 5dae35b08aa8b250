"""Token buckets and the lease policy, on a fake clock."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_enterprise.security.ratelimit import WILDCARD, LeaseBook, RateLimit, TokenBucket
from tests.unit.security.fakes import FakeClock


def test_bucket_starts_full_and_refuses_when_empty() -> None:
    clock = FakeClock(0.0)
    bucket = TokenBucket(RateLimit(rate=10, burst=3), clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    clock = FakeClock(0.0)
    bucket = TokenBucket(RateLimit(rate=10, burst=5), clock)
    assert bucket.take_up_to(100) == 5
    clock.advance(0.25)
    assert bucket.available() == pytest.approx(2.5)
    clock.advance(100)
    assert bucket.available() == 5


def test_bucket_says_how_long_until_tokens_are_there() -> None:
    clock = FakeClock(0.0)
    bucket = TokenBucket(RateLimit(rate=4, burst=2), clock)
    bucket.take_up_to(2)
    assert bucket.time_until(1) == pytest.approx(0.25)
    assert bucket.time_until(0) == 0.0


def test_given_back_tokens_never_overfill_the_bucket() -> None:
    clock = FakeClock(0.0)
    bucket = TokenBucket(RateLimit(rate=1, burst=4), clock)
    bucket.take_up_to(3)
    bucket.give_back(10)
    assert bucket.available() == 4


def test_a_lowered_limit_caps_what_the_bucket_holds() -> None:
    bucket = TokenBucket(RateLimit(rate=1, burst=10), FakeClock(0.0))
    bucket.set_limit(RateLimit(rate=1, burst=2))
    assert bucket.take_up_to(10) == 2


@pytest.mark.parametrize(
    ("rate", "burst"), [(0, 1), (-1, 1), (math.inf, 1), (1, 0.5), (1, math.nan)]
)
def test_nonsense_limits_are_refused(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        RateLimit(rate, burst)


@settings(max_examples=15, deadline=None)
@given(
    rate=st.floats(0.5, 1000),
    burst=st.floats(1, 500),
    steps=st.lists(st.tuples(st.floats(0, 2), st.integers(0, 50)), max_size=40),
)
def test_bucket_never_lets_out_more_than_burst_plus_rate_times_elapsed(
    rate: float, burst: float, steps: list[tuple[float, int]]
) -> None:
    clock = FakeClock(0.0)
    bucket = TokenBucket(RateLimit(rate, burst), clock)
    taken = 0
    for wait, want in steps:
        clock.advance(wait)
        taken += bucket.take_up_to(want)
        assert taken <= burst + rate * clock.now + 1e-6


# -- leases -----------------------------------------------------------------------------------


def book(rate: float = 1000, burst: float = 200, ttl: float = 0.1) -> tuple[LeaseBook, FakeClock]:
    clock = FakeClock(0.0)
    return LeaseBook(RateLimit(rate, burst), lease_ttl_s=ttl, clock=clock), clock


def test_a_lone_client_gets_rate_times_ttl_per_lease() -> None:
    limiter, _ = book(rate=1000, ttl=0.1)
    lease = limiter.lease("k", "/r", "a", want=10_000)
    assert (lease.tokens, lease.ttl_s) == (100, 0.1)


def test_a_lease_never_exceeds_what_the_client_wants() -> None:
    limiter, _ = book()
    assert limiter.lease("k", "/r", "a", want=7).tokens == 7


def test_clients_of_one_key_share_the_rate() -> None:
    limiter, _ = book(rate=1000, burst=1000, ttl=0.1)
    grants = [limiter.lease("k", "/r", c, want=10_000).tokens for c in "abcd"]
    assert grants == [100, 50, 33, 25]  # each newcomer lowers the share
    assert limiter.lease("k", "/r", "a", want=10_000).tokens == 25


def test_an_empty_bucket_reserves_the_next_lease_instead_of_refusing() -> None:
    limiter, _ = book(rate=100, burst=10, ttl=0.1)
    assert limiter.lease("k", "/r", "a", want=1000).tokens == 10
    queued = [limiter.lease("k", "/r", c, want=1000) for c in "ab"]
    # b joined, so shares halve to 5; each waits for its own tokens to accrue, one after another
    assert [(q.tokens, q.starts_in_s) for q in queued] == [
        (10, pytest.approx(0.1)),
        (5, pytest.approx(0.15)),
    ]


def test_past_the_longest_wait_a_client_is_refused_and_told_when_to_ask() -> None:
    limiter = LeaseBook(RateLimit(100, 10), lease_ttl_s=0.1, max_wait_s=0.0, clock=FakeClock(0.0))
    limiter.lease("k", "/r", "a", want=1000)
    denied = limiter.lease("k", "/r", "a", want=1000)
    assert denied.tokens == 0
    assert denied.retry_after_s == pytest.approx(0.1)


def test_returned_tokens_are_granted_again() -> None:
    limiter = LeaseBook(RateLimit(100, 10), lease_ttl_s=0.1, max_wait_s=0.0, clock=FakeClock(0.0))
    limiter.lease("k", "/r", "a", want=1000)
    assert limiter.lease("k", "/r", "b", want=1000).tokens == 0
    assert limiter.lease("k", "/r", "a", want=0, returned=6).tokens == 0  # a leaves
    assert limiter.lease("k", "/r", "b", want=1000).tokens == 6


def test_idle_clients_stop_counting_toward_the_share() -> None:
    limiter, clock = book(rate=1000, burst=1000, ttl=0.1)
    limiter.lease("k", "/r", "a", want=1)
    limiter.lease("k", "/r", "b", want=1)
    assert limiter.lease("k", "/r", "b", want=10_000).tokens == 50
    clock.advance(limiter.idle_s + 0.01)
    assert limiter.lease("k", "/r", "b", want=10_000).tokens == 100


def test_keys_and_routes_have_separate_buckets() -> None:
    limiter, _ = book(rate=10, burst=2)
    assert limiter.acquire("k1", "/a") == (True, 0.0)
    assert limiter.acquire("k1", "/a")[0]
    assert not limiter.acquire("k1", "/a")[0]
    assert limiter.acquire("k1", "/b")[0]
    assert limiter.acquire("k2", "/a")[0]


def test_the_most_specific_limit_wins() -> None:
    limiter, _ = book(rate=1, burst=1)
    limiter.set_limit(WILDCARD, "/login", RateLimit(2, 2))
    limiter.set_limit("k", WILDCARD, RateLimit(3, 3))
    limiter.set_limit("k", "/login", RateLimit(4, 4))
    assert limiter.limit_for("k", "/login").rate == 4
    assert limiter.limit_for("k", "/other").rate == 3
    assert limiter.limit_for("j", "/login").rate == 2
    assert limiter.limit_for("j", "/other").rate == 1


def test_a_new_limit_applies_to_existing_buckets() -> None:
    limiter, _ = book(rate=1, burst=100)
    limiter.acquire("k", "/r")
    limiter.set_limit("k", "/r", RateLimit(1, 2))
    assert [limiter.acquire("k", "/r")[0] for _ in range(3)] == [True, True, False]


def test_idle_full_buckets_are_pruned() -> None:
    limiter, clock = book(rate=10, burst=10)
    limiter.acquire("k", "/r")
    clock.advance(0.5)
    assert limiter.prune() == 0
    clock.advance(1.0)
    assert limiter.prune() == 1
    assert limiter.snapshot() == {}


@settings(max_examples=15, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from("abcd"), st.floats(0, 0.2), st.integers(0, 200), st.booleans()),
        max_size=40,
    )
)
def test_leases_never_let_out_more_than_the_bucket(
    steps: list[tuple[str, float, int, bool]],
) -> None:
    """Whatever clients do, tokens usable by time t minus tokens returned <= burst + rate * t."""
    rate, burst = 500.0, 50.0
    limiter, clock = book(rate=rate, burst=burst, ttl=0.1)
    held: dict[str, int] = {}
    usable: list[tuple[float, int]] = []  # (from when, how many)
    returned_total = 0
    for client, wait, want, give_back in steps:
        clock.advance(wait)
        returned = held.pop(client, 0) if give_back else 0
        returned_total += returned
        lease = limiter.lease("k", "/r", client, want, returned)
        held[client] = held.get(client, 0) + lease.tokens
        usable.append((clock.now + lease.starts_in_s, lease.tokens))
        for t in {clock.now, *(start for start, _ in usable)}:
            out = sum(n for start, n in usable if start <= t) - returned_total
            assert out <= burst + rate * t + 1e-6
