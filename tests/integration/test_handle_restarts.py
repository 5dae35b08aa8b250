"""Callers ride through a restart: ServiceHandle calls wait for a live replica (issue 20).

A real SIGKILL of a real service actor on the session's Ray, with a caller calling in a loop.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import pytest
import ray
from ray.exceptions import RayActorError

import ray_enterprise
from tests.integration.helpers import faulty, service
from tests.support import wait_for

Registry = ray_enterprise.EnterpriseServiceRegistry


class _Caller:
    """Calls ``work`` one call after another until stopped; counts what came back."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.pids: list[int] = []
        self.failures: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            try:
                # A little work per call, so that the kill finds one running.
                self.pids.append(ray.get(self.handle.work.remote(i, 0.01), timeout=120)["pid"])
            except Exception as exc:
                self.failures.append(exc)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=150)


def test_calls_not_yet_started_when_a_single_replica_is_sigkilled_wait_and_succeed(
    registry: Registry,
) -> None:
    # Generous on a loaded machine: the restart takes what it takes; the point is no failure.
    registry.register_app_sync([faulty("solo", call_wait_s=120)])
    registry.start_all_sync(timeout_s=120)
    handle = registry.get_service_sync("solo", wait_s=60)
    old_pid = ray.get(handle.pid.remote())
    caller = _Caller(handle)
    try:
        wait_for(lambda: len(caller.pids) >= 20, timeout=60, what="calls before the kill")
        os.kill(old_pid, signal.SIGKILL)
        wait_for(
            lambda: caller.pids.count(caller.pids[-1]) >= 20 and caller.pids[-1] != old_pid,
            timeout=120,
            what="20 calls answered by the restarted replica",
        )
    finally:
        caller.stop()
    assert service(registry, "solo")["restarts"] == 1
    # At most the one call that was running when the actor died fails (at-most-once).
    assert len(caller.failures) <= 1, caller.failures
    assert all(isinstance(f, RayActorError) for f in caller.failures), caller.failures


def test_a_call_to_a_service_with_no_live_replica_waits_only_as_long_as_it_is_told(
    registry: Registry,
) -> None:
    registry.register_app_sync([faulty("gone", call_wait_s=30)])
    registry.start_all_sync(timeout_s=120)
    handle = registry.get_service_sync("gone", wait_s=60)
    registry.stop_all_sync()
    # Told not to wait, it does not wait out the spec's 30 s.
    with pytest.raises(
        ray_enterprise.ServiceUnavailableError, match=r"'gone'.* after 0 s"
    ) as caught:
        handle.work.options(call_wait_s=0).remote(1)
    assert caught.value.service == "gone"
