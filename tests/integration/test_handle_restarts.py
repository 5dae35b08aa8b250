"""Callers ride through a restart: ServiceHandle calls wait for a live replica (issue 20).

A real SIGKILL of a real service actor on the session's Ray, with a caller calling in a loop.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest
import ray
from ray.exceptions import ActorDiedError, RayActorError

import ray_enterprise
from tests.integration.helpers import faulty, service
from tests.support import wait_for

Registry = ray_enterprise.EnterpriseServiceRegistry


class _Caller:
    """Calls ``work`` one call after another until stopped; keeps every call's times, answer
    and error (perf_counter: sent is taken just before ``.remote()``, back just after the
    result or error came back)."""

    def __init__(self, handle: Any, name: str = "") -> None:
        self.handle = handle
        self.name = name
        self.pids: list[int] = []
        self.failures: list[BaseException] = []
        self.calls: list[tuple[float, float, int | None, BaseException | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            sent = time.perf_counter()
            try:
                # A little work per call, so that the kill finds one running.
                pid = ray.get(self.handle.work.remote(i, 0.01), timeout=120)["pid"]
            except Exception as exc:
                self.failures.append(exc)
                self.calls.append((sent, time.perf_counter(), None, exc))
            else:
                self.pids.append(pid)
                self.calls.append((sent, time.perf_counter(), pid, None))

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


def test_threads_sharing_a_handle_send_nothing_to_a_sigkilled_replica_once_it_could_know(
    registry: Registry,
) -> None:
    """Four threads call through one handle; the single replica is SIGKILLed under them.

    The handle could know of the death from the moment the first ActorDiedError came back to
    any of its callers (every call counted here went through this handle). No call sent from
    then on may fail: it waits for the restarted replica. A call sent earlier may fail (Ray
    fails a call that was running and one pushed to the dead process after the kill with the
    same error), but at most once: none of them is sent again, so no call sent before the kill
    is answered by the new process, and no thread loses more than its one call.
    """
    registry.register_app_sync([faulty("shared", call_wait_s=120)])
    registry.start_all_sync(timeout_s=120)
    handle = registry.get_service_sync("shared", wait_s=60)
    old_pid = ray.get(handle.pid.remote())
    callers = [_Caller(handle, f"t{i}") for i in range(4)]
    try:
        wait_for(lambda: all(len(c.pids) >= 5 for c in callers), timeout=60, what="calls")
        killed = time.perf_counter()
        os.kill(old_pid, signal.SIGKILL)
        wait_for(
            lambda: all(sum(p != old_pid for p in c.pids) >= 5 for c in callers),
            timeout=120,
            what="5 calls per thread answered by the restarted replica",
        )
    finally:
        for caller in callers:
            caller.stop()
    calls = [call for caller in callers for call in caller.calls]
    died = [(sent, back) for sent, back, _, error in calls if isinstance(error, ActorDiedError)]
    assert died, "the kill failed no call: nothing here was in flight, the test proved nothing"
    known = min(back for _, back in died)
    assert known >= killed
    late = [(sent - known, error) for sent, _, _, error in calls if error and sent >= known]
    assert late == [], f"calls sent after the death was known failed: {late}"
    # Threads went on calling while the replica was dead, and those calls waited, not failed.
    waited = [pid for sent, _, pid, _ in calls if known <= sent and pid not in (None, old_pid)]
    assert waited, "no call was sent between the death and the restart"
    # At most once: a call sent before the kill fails or was answered by the old process; the
    # restarted one never answers it (nothing is sent twice).
    assert all(pid in (None, old_pid) for sent, _, pid, _ in calls if sent < killed)
    for caller in callers:
        assert len(caller.failures) <= 1, (caller.name, caller.failures)
        assert all(isinstance(f, RayActorError) for f in caller.failures), caller.failures
    assert service(registry, "shared")["restarts"] == 1


def test_a_handle_idle_through_a_replica_replaced_under_its_id_calls_the_new_actor(
    registry: Registry,
) -> None:
    # One replica of two dies and is replaced alone, under its id: a handle that read no table
    # while it was down sees the same name in the next table, and must look the actor up
    # again rather than send to the dead one it holds.
    registry.register_app_sync([faulty("pair", replicas=2, call_wait_s=30)])
    registry.start_all_sync(timeout_s=120)
    handle = registry.get_service_sync("pair", wait_s=60)
    wait_for(lambda: len(handle.table(fresh=True).replicas) == 2, timeout=60, what="2 replicas")
    pids = ray.get([a.pid.remote() for a in handle.replicas()], timeout=60)
    before = dict(zip(handle.table().replicas, pids, strict=True))
    victim, old_pid = next(iter(before.items()))
    os.kill(old_pid, signal.SIGKILL)

    def replaced() -> bool:
        fresh = registry.get_service_sync("pair", wait_s=60)
        try:  # a table read before the registry dropped the dead one still lists it
            pids = ray.get([a.pid.remote() for a in fresh.replicas()], timeout=30)
        except (RayActorError, ValueError):
            return False
        return set(fresh.table().replicas) == set(before) and old_pid not in pids

    wait_for(replaced, timeout=120, what="the killed replica replaced under its id")
    pids = [ray.get(handle.pid.remote(), timeout=60) for _ in range(4)]  # round-robin: both
    assert old_pid not in pids and len(set(pids)) == 2, (victim, old_pid, pids)
