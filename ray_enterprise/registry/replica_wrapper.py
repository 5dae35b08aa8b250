"""Every Ray call the registry makes for one replica: create, start, probe, watch, drain,
stop, kill (as Ray Serve's ``ActorReplicaWrapper`` is for its controller).

The registry actor decides; this module only talks to the actor and turns what Ray raises
into plain outcomes (a check passed or failed and why, the actor died, it is unreachable),
so the reconcile loop never handles a Ray exception itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from enum import Enum
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ray_enterprise import _kv
from ray_enterprise.registry.replica_rules import DrainVerdict, drain_verdict
from ray_enterprise.service import CONCURRENCY_GROUPS, counted
from ray_enterprise.spec import ServiceSpec

logger = logging.getLogger("ray_enterprise.registry")

_remote_classes: dict[str, Any] = {}  # class path -> its Ray actor class, made once


def error_text(exc: BaseException) -> str:
    """The user's exception, not Ray's wrapper with its remote traceback."""
    cause = getattr(exc, "cause", None) or exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[-1] if lines else ''}"[:500]


def death_reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"actor died: {text[0] if text else type(exc).__name__}"[:300]


def actor_options(spec: ServiceSpec, rid: str, spread_to: str | None) -> dict[str, Any]:
    """Ray options of a replica actor named ``rid``; ``spread_to`` pins it to that node (the
    registry spreads itself: Ray's SPREAD may pick a node it just saw go unreachable)."""
    opts = spec.actor
    options: dict[str, Any] = {
        "name": rid,
        "namespace": _kv.NAMESPACE,
        "lifetime": "detached",  # owned by no process: the registry kills it itself
        "max_restarts": 0,  # restarts are ours, under our policy
        "max_concurrency": opts.max_concurrency,
        "num_cpus": opts.num_cpus,
        "num_gpus": opts.num_gpus,
    }
    if opts.resources:
        options["resources"] = dict(opts.resources)
    if opts.memory is not None:
        options["memory"] = opts.memory
    if opts.runtime_env is not None:
        options["runtime_env"] = dict(opts.runtime_env)
    if opts.node_id:
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
            node_id=opts.node_id, soft=opts.node_soft
        )
    elif opts.spread and spread_to is None:  # custom resources: Ray finds a node with them
        options["scheduling_strategy"] = "SPREAD"
    elif spread_to is not None:
        # Hard: Ray's soft affinity may still pick the node we are avoiding. If the target
        # dies first, the start fails and the service is placed again.
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
            node_id=spread_to, soft=False
        )
    return options


class Probe(str, Enum):
    PASSED = "passed"  # live and ready
    NOT_READY = "not_ready"  # live (check_health passed), but check_ready said no: no calls
    FAILED = "failed"  # check_health said no or raised: counts toward the threshold
    TIMED_OUT = "timed_out"  # counts too, and its node may be gone
    UNREACHABLE = "unreachable"  # counts too, and its node may be gone
    DIED = "died"  # restart now


@dataclass(frozen=True)
class Check:
    outcome: Probe
    detail: str
    error: str | None = None  # what was raised, when something was (not a timeout)

    @property
    def ok(self) -> bool:
        """Live: the liveness probe passed (whatever readiness said)."""
        return self.outcome in (Probe.PASSED, Probe.NOT_READY)

    @property
    def ready(self) -> bool:
        return self.outcome is Probe.PASSED


def timed_out(timeout_s: float) -> Check:
    return Check(Probe.TIMED_OUT, f"health check timed out after {timeout_s:g} s")


def check_failed(exc: BaseException) -> Check:
    """What a health check that raised means: dead, unreachable for now, or failed."""
    if isinstance(exc, ActorDiedError):
        return Check(Probe.DIED, death_reason(exc), error_text(exc))
    if isinstance(exc, ActorUnavailableError):
        return Check(Probe.UNREACHABLE, "actor unreachable", error_text(exc))
    return Check(Probe.FAILED, f"check_health raised {error_text(exc)}", error_text(exc))


def check_passed(answer: tuple[bool, str, bool, str]) -> Check:
    """What the service answered: ``Service._re_health``'s (ok, detail, ready, ready_detail)."""
    ok, detail, ready, ready_detail = answer
    if not ok:
        return Check(Probe.FAILED, detail)
    if not ready:
        why = f"not ready: {ready_detail}" if ready_detail else "not ready"
        return Check(Probe.NOT_READY, why)
    return Check(Probe.PASSED, detail)


def _get_ready(ref: Any) -> Any:
    """``ray.get`` of a ref known to be ready. Inside the registry (an async actor) Ray warns
    once that a get blocks the loop; this one cannot block, so the warning is held back here
    alone (Ray Serve's controller, polling the same way, turns it off for its whole process)."""
    worker: Any = ray._private.worker
    warned = worker.blocking_get_inside_async_warned
    worker.blocking_get_inside_async_warned = True
    try:
        return ray.get(ref)
    finally:
        worker.blocking_get_inside_async_warned = warned


def read_check(ref: Any) -> Check:
    """The outcome of a health check whose ref is ready (``ray.wait`` said so): no wait."""
    try:
        answer = _get_ready(ref)
    except Exception as exc:
        return check_failed(exc)
    return check_passed(answer)


def watch_failed(exc: BaseException) -> str:
    if isinstance(exc, ActorUnavailableError):
        return "unreachable"
    if isinstance(exc, ActorDiedError):
        return f"died: {death_reason(exc)}"
    return f"failed: {error_text(exc)}"  # the watch call itself broke: the probes still run


def read_watch(ref: Any) -> str:
    """The outcome of a watch call whose ref is ready: ``"died: <why>"``, ``"unreachable"``,
    ``"failed: <why>"``, or what the service said (``"completed"``, ``"stopped"``,
    ``"timeout"`` when the poll ran out)."""
    try:
        outcome: str = _get_ready(ref)
    except Exception as exc:
        return watch_failed(exc)
    return outcome


class StartFailed(Exception):
    """start() did not return: ``alive`` says whether the actor may still be running."""

    def __init__(self, reason: str, *, alive: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.alive = alive


class ReplicaActor:
    """One replica's Ray actor, reached by its handle."""

    def __init__(self, rid: str, handle: Any) -> None:
        self.id = rid
        self.handle = handle
        self._probe_calls: tuple[Any, Any] | None = None

    def _quiet(self) -> tuple[Any, Any]:
        """The probe and watch methods without Ray's task events: one per second per replica
        would fill the dashboard's task list and cost a record on both sides of every call
        (Ray Serve turns them off for its replicas' calls too). Bound once per handle."""
        if self._probe_calls is None:
            self._probe_calls = (
                self.handle._re_health.options(enable_task_events=False),
                self.handle._re_watch.options(enable_task_events=False),
            )
        return self._probe_calls

    @classmethod
    def create(cls, spec: ServiceSpec, rid: str, spread_to: str | None = None) -> ReplicaActor:
        """Create the actor (raises on a bad class path or bad options)."""
        remote_class = _remote_classes.get(spec.class_path)
        if remote_class is None:
            # Concurrency groups can only be declared here, not in .options().
            remote: Any = ray.remote
            remote_class = remote(concurrency_groups=CONCURRENCY_GROUPS)(counted(spec.load_class()))
            _remote_classes[spec.class_path] = remote_class
        handle = remote_class.options(**actor_options(spec, rid, spread_to)).remote()
        return cls(rid, handle)

    @classmethod
    def lookup(cls, rid: str) -> ReplicaActor | None:
        """The live actor named ``rid`` (one a restarted registry adopts), or None."""
        try:
            return cls(rid, ray.get_actor(rid, namespace=_kv.NAMESPACE))
        except ValueError:
            return None

    async def start(self, spec: ServiceSpec, generation: int) -> str:
        """Run the service's start() within its startup timeout; returns the node it runs on."""
        timeout = spec.health.startup_timeout_s
        try:
            node: str = await asyncio.wait_for(
                self.handle._re_start.remote(
                    spec.name, spec.config, generation, spec.config_section
                ),
                timeout=timeout,
            )
        except asyncio.TimeoutError:
            raise StartFailed(f"start() took over {timeout:g} s", alive=True) from None
        except (ActorDiedError, ActorUnavailableError) as exc:
            raise StartFailed(death_reason(exc), alive=False) from None
        except Exception as exc:
            raise StartFailed(f"start() raised {error_text(exc)}", alive=True) from None
        return node

    async def check(self, timeout_s: float) -> Check:
        """One health check now, awaited (outside the prober's schedule: :mod:`prober`)."""
        try:
            answer = await asyncio.wait_for(self.handle._re_health.remote(), timeout=timeout_s)
        except asyncio.TimeoutError:
            return timed_out(timeout_s)
        except Exception as exc:
            return check_failed(exc)
        return check_passed(answer)

    def send_check(self) -> Any:
        """Send one health check, in the service's own concurrency group; its ObjectRef is
        polled by the prober with every other one out (:func:`read_check` reads it)."""
        return self._quiet()[0].remote()

    def send_watch(self, poll_s: float) -> Any:
        """The call that is always pending on the actor, so its death is seen at once; it
        returns after ``poll_s`` at the latest (:func:`read_watch` reads it)."""
        return self._quiet()[1].remote(poll_s)

    async def stats(self, timeout_s: float = 2.0) -> dict[str, Any]:
        """The call counters kept inside the replica (raises when it does not answer)."""
        stats: dict[str, Any] = await asyncio.wait_for(
            self.handle._re_stats.remote(), timeout=timeout_s
        )
        return stats

    async def drain(self, timeout_s: float, poll_s: float = 0.05) -> int:
        """Wait until the replica has no call in flight, up to ``timeout_s``; returns how many
        calls were still running when the wait ended (0 when it drained or did not answer)."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        while True:
            try:
                inflight = int((await self.stats())["inflight"])
            except Exception:
                return 0  # gone or stuck: nothing more to wait for
            verdict = drain_verdict(inflight, began=began, now=loop.time(), timeout_s=timeout_s)
            if verdict is DrainVerdict.STOP:
                return 0
            if verdict is DrainVerdict.CUT:
                logger.warning(
                    "%s still had %d call(s) in flight after graceful_shutdown_timeout_s=%g s: "
                    "stopping it, the kill cuts them",
                    self.id,
                    inflight,
                    timeout_s,
                )
                return inflight
            await asyncio.sleep(poll_s)

    async def stop(self, timeout_s: float) -> None:
        """Run the service's stop(); a stop that fails or overruns is logged, not raised."""
        try:
            await asyncio.wait_for(self.handle._re_stop.remote(), timeout=timeout_s)
        except Exception as exc:
            logger.warning("stop() of %s did not finish cleanly: %s", self.id, exc)

    async def notify(self, dependency: str, state: str, timeout_s: float = 10.0) -> None:
        """Tell the service a dependency changed state; a slow or dead one must not stall."""
        try:
            await asyncio.wait_for(
                self.handle._re_dependency_change.remote(dependency, state), timeout=timeout_s
            )
        except Exception as exc:
            logger.warning("on_dependency_change(%s) failed: %s", self.id, exc)

    def kill(self) -> None:
        with contextlib.suppress(Exception):  # already gone
            ray.kill(self.handle, no_restart=True)
