"""The registry's prober on a real local Ray, driving real service actors: the probes of
several replicas go out in one tick and come back through one ``ray.wait``, and a SIGKILLed
replica is seen dead through its watch call within a tick or two of Ray telling this
process, while its next probe is a minute away. No mocks; no time is asserted."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections import Counter
from typing import Any

import ray

from ray_enterprise.registry.prober import Prober
from ray_enterprise.registry.replica_wrapper import Check, Probe, ReplicaActor
from tests.integration.helpers import faulty

N = 4


class Recorder:
    """The prober's owner: notes at which tick it heard what, and schedules the next probe."""

    def __init__(self) -> None:
        self.prober: Prober
        self.period_s = 0.2
        self.checks: list[tuple[int, str, Probe]] = []
        self.watches: list[tuple[int, str, str]] = []

    def probe_timeout(self, rid: str) -> float | None:
        return 5.0

    def checked(self, rid: str, check: Check) -> None:
        self.checks.append((self.prober.stats.ticks, rid, check.outcome))
        self.prober.again(rid, self.period_s)

    def watched(self, rid: str, outcome: str) -> None:
        self.watches.append((self.prober.stats.ticks, rid, outcome))
        if outcome.startswith("died: "):
            self.prober.remove(rid)
        else:
            self.prober.watch_again(rid, 0.0)


async def _wait(cond: Any, what: str, timeout_s: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not cond():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def _scenario(actors: list[ReplicaActor]) -> None:
    spec = faulty("probed")
    await asyncio.gather(*(a.start(spec, 1) for a in actors))
    owner = Recorder()
    prober = owner.prober = Prober(owner, watch_poll_s=120.0)
    for actor in actors:
        prober.add(actor.id, actor)
        prober.again(actor.id, 0.0)

    # Every replica passes a few checks; those sent in one tick come back in one ray.wait.
    await _wait(lambda: len(owner.checks) >= 5 * N, "five rounds of checks")
    assert {outcome for _, _, outcome in owner.checks} == {Probe.PASSED}
    judged_per_tick = Counter(tick for tick, _, _ in owner.checks)
    assert max(judged_per_tick.values()) == N, judged_per_tick
    # Answers are read a tick's worth at a time: far fewer reads than answers.
    assert len(judged_per_tick) <= len(owner.checks) // 2, judged_per_tick
    stats = prober.stats
    assert stats.waits <= stats.ticks  # one ray.wait per tick, however many calls are out
    assert stats.most_in_one_wait >= N

    # A SIGKILL, while the next probe of every replica is a minute away: only the watch call
    # can see it. ``told`` is a call of this test pending on the same actor, read
    # between the prober's ticks: the tick at which Ray had told this process.
    owner.period_s = 60.0
    slots = prober.schedule.slots.values()
    await _wait(lambda: all(s.sent_at is None and s.due for s in slots), "no probe out")
    victim = actors[0]
    told = victim.handle._re_watch.remote(120.0)
    pid = await victim.handle.pid.remote()
    told_at: list[int] = []

    async def watch_told() -> None:
        while not ray.wait([told], timeout=0)[0]:
            await asyncio.sleep(0.005)
        told_at.append(prober.stats.ticks)

    watcher = asyncio.get_running_loop().create_task(watch_told())
    sent_before = prober.stats.sent
    os.kill(pid, signal.SIGKILL)
    await _wait(lambda: told_at and any(rid == victim.id for _, rid, _ in owner.watches), "death")
    await watcher
    tick, _, outcome = next(w for w in owner.watches if w[1] == victim.id)
    assert outcome.startswith("died: ")
    assert prober.stats.sent == sent_before  # no probe went out: the watch saw it
    assert tick <= told_at[0] + 2, (tick, told_at)
    assert victim.id not in prober.schedule and len(prober.schedule) == N - 1
    prober.clear()


def test_probes_go_out_and_come_back_in_one_batch_and_a_sigkill_is_seen_within_a_tick(
    ray_session: None,
) -> None:
    prefix = f"probe-test-{uuid.uuid4().hex[:6]}"
    spec = faulty("probed")
    actors = [ReplicaActor.create(spec, f"{prefix}:1.{i}") for i in range(N)]
    try:
        asyncio.run(_scenario(actors))
    finally:
        for actor in actors:
            actor.kill()
