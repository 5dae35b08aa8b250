"""The leasing client's local decisions, against an in-process LeaseBook on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from ray_enterprise.security.errors import RateLimitedError
from ray_enterprise.security.events import RATE_LIMITED, SecurityEvents
from ray_enterprise.security.limiter_client import LeasingLimiter
from ray_enterprise.security.ratelimit import Lease, LeaseBook, RateLimit
from tests.unit.security.fakes import FakeClock


class CountingBook:
    """A LeaseBook that counts how often a client had to ask it."""

    def __init__(self, book: LeaseBook) -> None:
        self.book = book
        self.calls: list[tuple[int, int]] = []

    def __call__(self, key: str, route: str, client: str, want: int, returned: int) -> Lease:
        self.calls.append((want, returned))
        return self.book.lease(key, route, client, want, returned)


def setup(
    rate: float = 1000, burst: float = 200
) -> tuple[LeasingLimiter, CountingBook, FakeClock, SecurityEvents]:
    clock = FakeClock(0.0)
    remote = CountingBook(LeaseBook(RateLimit(rate, burst), lease_ttl_s=0.1, clock=clock))
    events = SecurityEvents(metrics=False)
    client = LeasingLimiter(lease=remote, clock=clock, events=events)
    return client, remote, clock, events


def test_the_hot_path_spends_a_lease_without_asking_again() -> None:
    client, remote, _, _ = setup(rate=1000)
    admitted = [client.try_acquire("k", "/r").admitted for _ in range(100)]
    assert all(admitted)
    assert len(remote.calls) == 1  # one lease of rate * ttl = 100 tokens


def test_refusals_are_local_until_the_reserved_lease_starts() -> None:
    client, remote, clock, events = setup(rate=100, burst=10)
    results = [client.try_acquire("k", "/r") for _ in range(1000)]
    assert sum(r.admitted for r in results) == 10
    assert len(remote.calls) == 2  # the lease, then one reserved for when its tokens accrue
    assert results[-1].retry_after_s == pytest.approx(0.1)
    clock.advance(0.1)
    assert sum(client.try_acquire("k", "/r").admitted for _ in range(20)) == 10
    assert len(remote.calls) == 3
    client.close()
    assert events.total(RATE_LIMITED) == 1000


def test_an_expired_lease_hands_its_unspent_tokens_back() -> None:
    client, remote, clock, _ = setup(rate=1000, burst=200)
    client.try_acquire("k", "/r")
    clock.advance(0.2)  # the lease of 100 expires with 99 unspent
    client.try_acquire("k", "/r")
    assert remote.calls[-1] == (1000, 99)


def test_close_returns_what_is_left() -> None:
    client, remote, _, _ = setup(rate=1000, burst=100)
    client.try_acquire("k", "/r")
    client.close()
    assert remote.calls[-1] == (0, 99)
    assert remote.book.snapshot()["k /r"]["tokens"] == pytest.approx(99)


def test_check_raises_with_retry_after() -> None:
    client, _, _, _ = setup(rate=10, burst=1)
    client.check("k", "/r")
    with pytest.raises(RateLimitedError) as caught:
        client.check("k", "/r")
    assert caught.value.retry_after_s > 0 and caught.value.route == "/r"


def test_an_unreachable_limiter_refuses_unless_told_to_fail_open() -> None:
    def broken(*_: object) -> Lease:
        raise ConnectionError("limiter gone")

    clock = FakeClock(0.0)
    closed = LeasingLimiter(lease=broken, clock=clock, events=SecurityEvents(metrics=False))
    opened = LeasingLimiter(
        lease=broken, clock=clock, fail_open=True, events=SecurityEvents(metrics=False)
    )
    assert not closed.try_acquire("k", "/r").admitted
    assert opened.try_acquire("k", "/r").admitted


def test_the_async_path_decides_like_the_sync_one() -> None:
    client, remote, _, _ = setup(rate=100, burst=10)

    async def run() -> list[bool]:
        return [(await client.try_acquire_async("k", "/r")).admitted for _ in range(20)]

    assert sum(asyncio.run(run())) == 10
    assert len(remote.calls) == 2


def test_concurrent_coroutines_share_one_renewal() -> None:
    clock = FakeClock(0.0)
    book = LeaseBook(RateLimit(1000, 200), lease_ttl_s=0.1, clock=clock)
    calls: list[int] = []

    class SlowHandle:
        """An actor handle whose lease call takes a turn of the event loop, like a real one."""

        class lease:
            @staticmethod
            async def remote(key: str, route: str, client: str, want: int, returned: int) -> Lease:
                calls.append(want)
                await asyncio.sleep(0)
                return book.lease(key, route, client, want, returned)

    client = LeasingLimiter(SlowHandle(), clock=clock, events=SecurityEvents(metrics=False))

    async def run() -> list[bool]:
        results = await asyncio.gather(*(client.try_acquire_async("k", "/r") for _ in range(50)))
        return [r.admitted for r in results]

    assert all(asyncio.run(run()))
    assert len(calls) == 1


def test_a_fail_open_allowance_is_not_handed_back_as_if_it_were_the_limiters() -> None:
    clock = FakeClock(0.0)
    remote = CountingBook(LeaseBook(RateLimit(1000, 200), lease_ttl_s=0.1, clock=clock))
    down = [True]

    def flaky(key: str, route: str, client: str, want: int, returned: int) -> Lease:
        if down[0]:
            raise ConnectionError("limiter restarting")
        return remote(key, route, client, want, returned)

    client = LeasingLimiter(
        lease=flaky, clock=clock, fail_open=True, events=SecurityEvents(metrics=False)
    )
    assert client.try_acquire("k", "/r").admitted
    down[0] = False
    clock.advance(5)  # the allowance has lapsed; the limiter is back
    assert client.try_acquire("k", "/r").admitted
    assert remote.calls == [(1000, 0)]
