"""Alert inputs from the rest of the system to the alert actor, without ever hurting the sender.

The registry's reconcile loop (or a system actor's constructor) must not wait on, or fail
because of, alerting. So :func:`report_health_transition`, :func:`report_input` and
:class:`RestartAlert` only put the input on a bounded in-process queue and return; one daemon
thread per process sends the queue in order (a quick FAILED -> HEALTHY must not arrive
reversed) to the alert actor when it runs, and drops what it cannot deliver. A transition
missed while the alert actor was down is caught up by the actor itself: at start it reads the
registry's current states.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import ray

from ray_enterprise import _kv, system_actors
from ray_enterprise.alerts.faults import SystemActorInput
from ray_enterprise.alerts.model import Severity
from ray_enterprise.alerts.sources import AlertInput, HealthInput, RollbackInput

logger = logging.getLogger("ray_enterprise.alerts")

_QUEUE_SIZE = 10_000
_SEND_TIMEOUT_S = 10.0


def _describe(item: Any) -> str:
    """An input for a log line: its type and service, never its reason (a service's last
    exception text, which may hold a connection string)."""
    return f"{type(item).__name__}({getattr(item, 'service', '')})"


class _Lookup:
    """Queued to make the sender thread find the alert actor; sends nothing."""

    service = ""


_LOOKUP: Any = _Lookup()


class _HealthReporter:
    """One sender thread and a cached handle; the handle is looked up again when it fails."""

    def __init__(self) -> None:
        self._queue: queue.Queue[AlertInput] = queue.Queue(maxsize=_QUEUE_SIZE)
        self._handle: Any = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, item: AlertInput) -> bool:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            logger.warning("alert input %s dropped: alert queue full", _describe(item))
            return False
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="ray-enterprise-health-alerts", daemon=True
                )
                self._thread.start()
        return True

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                self._send(item)
            except Exception as exc:  # alerting must never take the caller down with it
                logger.debug("alert input %s not delivered: %s", _describe(item), exc)
            finally:
                self._queue.task_done()

    def warm_up(self) -> None:
        """Find the alert actor now, on the sender thread, if no handle is held yet."""
        if self._handle is None:
            self.submit(_LOOKUP)

    def _send(self, item: AlertInput) -> None:
        if item is _LOOKUP:
            if self._handle is None:
                with contextlib.suppress(ValueError):
                    self._handle = ray.get_actor(system_actors.ALERTS, namespace=_kv.NAMESPACE)
            return
        for _attempt in range(2):  # a stale handle (actor replaced) gets one fresh lookup
            if self._handle is None:
                try:
                    self._handle = ray.get_actor(system_actors.ALERTS, namespace=_kv.NAMESPACE)
                except ValueError:
                    return  # no alert actor: nothing to tell; it syncs from the registry at boot
            try:
                # Waited on through its future, not ray.get: this thread is not the actor's
                # event loop, and Ray warns of a blocking get inside any async actor.
                self._handle.ingest.remote([item]).future().result(timeout=_SEND_TIMEOUT_S)
                return
            except Exception:
                self._handle = None

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything queued was sent or dropped (tests and orderly shutdown)."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout_s)


_reporter = _HealthReporter()


def warm_up() -> None:
    """Look the alert actor up ahead of need. A report made while Ray's GCS is away (the
    ControlPlaneUnreachable of that very outage) reaches it only through a handle found before:
    a lookup needs the GCS, a call on a found handle does not."""
    _reporter.warm_up()


def report_health_transition(
    service: str, state: str, criticality: str = "high", reason: str = ""
) -> bool:
    """Tell the alert actor that ``service`` entered ``state``; never raises, never blocks.

    ``state`` is the registry's state name: ``"failed"`` fires ServiceFailed (severity = the
    service's ``criticality``), ``"degraded"`` fires ServiceDegraded (one level lower); any other
    state, e.g. ``"healthy"`` on recovery, resolves both. Returns ``False`` when the input was
    refused locally (Ray not initialised, bad criticality, queue full); delivery is best effort.
    """
    if not ray.is_initialized():  # outside Ray there is no alert actor to tell
        return False
    try:
        item = HealthInput(service, str(state), Severity(str(criticality).lower()), reason or "")
    except Exception:
        logger.warning("health transition of %r ignored: bad criticality %r", service, criticality)
        return False
    return _reporter.submit(item)


def report_rollback(
    service: str, reason: str, deployment_id: str, criticality: str = "high"
) -> bool:
    """Raise DeploymentRolledBack for an automatic rollback; never raises, never blocks.

    Goes through the same ordered queue as health transitions, so it cannot overtake the
    service's own state changes.
    """
    if not ray.is_initialized():
        return False
    try:
        item = RollbackInput(service, reason, deployment_id, Severity(str(criticality).lower()))
    except Exception:
        logger.warning("rollback of %r not reported: bad criticality %r", service, criticality)
        return False
    return _reporter.submit(item)


def report_input(item: AlertInput) -> bool:
    """Send any alert input (e.g. :mod:`alert_faults`) through the same ordered queue; never
    raises, never blocks. ``False`` outside Ray or when the queue is full."""
    if not ray.is_initialized():
        return False
    return _reporter.submit(item)


def was_restarted() -> bool:
    """True inside an actor that Ray restarted after its process died."""
    if not ray.is_initialized():
        # Not an actor; and reading the runtime context here would start a Ray of its own in
        # this process (auto-init), which a later ray.init(namespace=...) then silently joins.
        return False
    try:
        with warnings.catch_warnings():  # Ray 2.60 reads its own deprecated actor_id in there
            warnings.simplefilter("ignore", DeprecationWarning)
            return bool(ray.get_runtime_context().was_current_actor_reconstructed)
    except Exception:  # not an actor (a driver, a test): nothing was restarted
        return False


class RestartAlert:
    """SystemActorRestarted for one system actor, from its own constructor.

    Create it first thing in the constructor: when Ray restarted the actor (or its owner
    re-created it after a loss, ``recreated=True``) it fires. Call :meth:`recovered` once the
    actor has restored its state and serves calls: that resolves it, with the recovery time in
    the summary. Nothing happens for an actor's first start. ``report`` defaults to the ordered
    queue to the alert actor (the alert actor itself ingests locally).
    """

    def __init__(
        self,
        service: str,
        *,
        recreated: bool = False,
        report: Callable[[AlertInput], object] = report_input,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.restarted = recreated or was_restarted()
        self._report = report
        self._clock = clock
        self._began = clock()
        self._open = self.restarted
        if self.restarted:
            how = "re-created after a loss" if recreated else "restarted by Ray"
            self._report(SystemActorInput(service, restarted=True, detail=how))

    def recovered(self) -> None:
        """State restored, calls served: resolve (once; nothing if it never fired)."""
        if not self._open:
            return
        self._open = False
        took = self._clock() - self._began
        self._report(
            SystemActorInput(self.service, restarted=False, detail=f"recovered in {took:.3f} s")
        )


#: Registry states the alert actor catches up on at start: those that fire, and the settled
#: ones that resolve what fired before.
_CATCH_UP_STATES = ("failed", "degraded", "restarting", "healthy", "stopped")


async def registry_health_inputs(timeout_s: float = 30.0) -> list[HealthInput]:
    """What the registry says now, as health inputs: FAILED, DEGRADED and RESTARTING services
    fire, healthy and stopped ones resolve. The alert actor reads it at start, to catch up on
    transitions it missed."""
    try:
        registry = ray.get_actor(system_actors.REGISTRY, namespace=_kv.NAMESPACE)
        services = await asyncio.wait_for(registry.list_services.remote(), timeout_s)
    except Exception:  # no registry yet, or it is restarting: nothing to catch up on
        return []
    return [
        HealthInput(s["name"], s["state"], Severity(s["criticality"]), s.get("last_error") or "")
        for s in services
        if s.get("state") in _CATCH_UP_STATES
    ]


def flush_health_reports(timeout_s: float = 10.0) -> bool:
    """Block until queued health transitions were sent; ``False`` on timeout."""
    return _reporter.flush(timeout_s)
