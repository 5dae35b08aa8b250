"""A collector off the head keeps what it saw while no alert actor answered (the head, and the
alert actor with it, lost) and hands it over once one runs again: in order, once, and dated
when the outage began."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import ray

from ray_enterprise.alerts.faults import ControlPlaneInput
from ray_enterprise.observability.control_plane import HeldAlerts


def _deliver_until_taken(held: HeldAlerts, timeout_s: float = 60.0) -> None:
    async def run() -> None:
        deadline = time.monotonic() + timeout_s
        while held.held and time.monotonic() < deadline:
            await held.deliver()
            await asyncio.sleep(0.05)

    asyncio.run(run())


def test_held_alerts_wait_for_an_alert_actor_then_arrive_once_dated_when_seen(
    start_alerts: Callable[..., Any],
) -> None:
    began = time.time() - 60.0
    held = HeldAlerts()
    held.add([
        ControlPlaneInput(reachable=False, down_s=3.0, detail="no answer", since=began),
        ControlPlaneInput(reachable=True, down_s=45.0),
    ])  # fmt: skip
    asyncio.run(held.deliver())  # no alert actor runs: nothing is lost
    assert held.held == 2
    handle = start_alerts()
    _deliver_until_taken(held)
    assert held.held == 0
    told = [
        a for a in ray.get(handle.alerts.remote("resolved"), timeout=30)
        if a["labels"]["alertname"] == "ControlPlaneUnreachable"
    ]  # fmt: skip
    assert [a["starts_at"] for a in told] == [int(began * 1000)]
    assert ray.get(handle.alerts.remote(), timeout=30) == []  # resolved after it fired
