from __future__ import annotations

import asyncio
from typing import Any

from ray_enterprise.config.fanout import Fanout, SubscriberGone, Subscription


class Section:
    """A section whose value and version the test moves by hand."""

    def __init__(self) -> None:
        self.value: Any = "v1"
        self.version = 1

    def __call__(self, _section: str) -> tuple[Any, int]:
        return self.value, self.version


async def until(predicate: Any, timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.001)


def test_a_subscriber_gets_what_it_missed_then_each_change_in_order() -> None:
    section = Section()
    got: list[tuple[str, Any, int]] = []

    async def send(sub: Subscription, value: Any, version: int) -> None:
        got.append((sub.actor, value, version))

    async def run() -> None:
        fanout = Fanout(section, send)
        fanout.add(Subscription("cache", "behind", "ns", "m", acked=0))
        fanout.add(Subscription("cache", "current", "ns", "m", acked=1))
        await until(lambda: got == [("behind", "v1", 1)])
        section.value, section.version = "v3", 3
        fanout.changed(["search"])  # not its section: nothing moves
        await asyncio.sleep(0.01)
        assert len(got) == 1
        fanout.changed(["cache"])
        await until(lambda: len(got) == 3)
        assert sorted(got[1:]) == [("behind", "v3", 3), ("current", "v3", 3)]
        await fanout.close()

    asyncio.run(run())


def test_a_failing_send_is_retried_and_a_gone_subscriber_dropped() -> None:
    section = Section()
    attempts: list[str] = []
    dropped: list[str] = []

    async def send(sub: Subscription, value: Any, version: int) -> None:
        attempts.append(sub.actor)
        if sub.actor == "gone":
            raise SubscriberGone(sub.key)
        if attempts.count("flaky") < 3:
            raise ConnectionError("unreachable for now")

    async def run() -> None:
        fanout = Fanout(section, send, retry_s=0.001)
        fanout.on_drop = lambda sub: dropped.append(sub.actor)
        fanout.add(Subscription("cache", "flaky", "ns", "m"))
        fanout.add(Subscription("cache", "gone", "ns", "m"))
        await until(lambda: dropped == ["gone"])
        await until(lambda: [s.acked for s in fanout.subscriptions()] == [1])
        assert attempts.count("flaky") == 3
        await fanout.close()

    asyncio.run(run())


def test_renewing_a_subscription_keeps_it_and_takes_the_stated_version() -> None:
    section = Section()
    sent: list[int] = []

    async def send(sub: Subscription, value: Any, version: int) -> None:
        sent.append(version)

    async def run() -> None:
        fanout = Fanout(section, send)
        fanout.add(Subscription("cache", "a", "ns", "m", acked=0))
        await until(lambda: sent == [1])
        fanout.add(Subscription("cache", "a", "ns", "m", acked=1))  # a renewal
        await asyncio.sleep(0.01)
        assert sent == [1] and len(fanout.subscriptions()) == 1
        fanout.add(Subscription("cache", "a", "ns", "m", acked=0))  # it lost its state
        await until(lambda: sent == [1, 1])
        await fanout.close()

    asyncio.run(run())
