"""counted(): the per-replica call counters an upgrade's gate and a drain read. No Ray actor."""

from __future__ import annotations

import asyncio

import pytest
import ray

from ray_enterprise.service import Service, counted


class Calc(Service):
    async def start(self) -> None:
        self.started = True

    async def div(self, a: int, b: int) -> float:
        await asyncio.sleep(0)
        return a / b

    def add(self, a: int, b: int) -> int:
        return a + b

    @ray.method(num_returns=2)
    def pair(self) -> tuple[int, int]:
        return 1, 2


def stats(obj: Service) -> dict[str, int]:
    return dict(obj._re_counts)  # what _re_stats returns to the registry


def test_public_methods_count_calls_and_errors_sync_or_async() -> None:
    calc = counted(Calc)()
    assert asyncio.run(calc.div(6, 3)) == 2
    assert calc.add(1, 2) == 3
    with pytest.raises(ZeroDivisionError):
        asyncio.run(calc.div(1, 0))
    assert stats(calc) == {"calls": 3, "errors": 1, "inflight": 0}


def test_calls_in_flight_are_seen_while_they_run() -> None:
    calc = counted(Calc)()
    seen: list[int] = []

    async def main() -> None:
        task = asyncio.ensure_future(calc.div(1, 1))
        await asyncio.sleep(0)  # div is now suspended inside
        seen.append(calc._re_counts["inflight"])
        await task

    asyncio.run(main())
    assert seen == [1] and stats(calc)["inflight"] == 0


def test_hooks_are_not_counted_and_ray_method_options_survive() -> None:
    cls = counted(Calc)
    calc = cls()
    asyncio.run(calc.start())
    assert stats(calc)["calls"] == 0
    assert cls.__name__ == "Calc" and issubclass(cls, Calc)
    assert getattr(cls.pair, "__ray_num_returns__", None) == 2
