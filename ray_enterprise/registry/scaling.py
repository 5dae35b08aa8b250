"""Scaling: the operator's ``scale(name, n)`` and the autoscaler's count, as desired replicas.

Neither starts or stops anything itself: both only change the count the RegistryActor's
reconcile loop compares with the replicas that run, so scaling follows the same path as a
replica lost and replaced, and the same drain as an upgrade.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from ray_enterprise.registry.autoscale import Autoscaler
from ray_enterprise.registry.history import new_deployment_id
from ray_enterprise.registry.ports import RegistryCore
from ray_enterprise.registry.rollout import DeploymentError
from ray_enterprise.registry.sampling import call_stats
from ray_enterprise.registry.supervision import UP_STATES, ServiceRecord
from ray_enterprise.spec import ServiceSpec

if TYPE_CHECKING:
    from ray_enterprise.registry.deployer import Deployer

logger = logging.getLogger("ray_enterprise.registry")

_POLL_S = 0.05


class Scaler:
    """Owned by the RegistryActor, reached through :class:`RegistryCore`; runs on its loop."""

    def __init__(self, registry: RegistryCore, deployer: Deployer) -> None:
        self._reg = registry
        self._deployer = deployer
        self._scalers: dict[str, tuple[Any, Autoscaler]] = {}  # service -> (its spec, scaler)
        self._scaled_to: dict[str, int] = {}  # service -> replicas the autoscaler asks for
        self._sampled_at: dict[str, float] = {}

    def forget(self) -> None:
        self._scalers.clear()
        self._scaled_to.clear()
        self._sampled_at.clear()

    def desired_replicas(self, rec: ServiceRecord) -> int:
        """The spec's count, or what the autoscaler decided within the spec's bounds."""
        if rec.spec.autoscale is None:
            return rec.spec.replicas
        return self._scaled_to.get(rec.spec.name, rec.spec.replicas)

    async def autoscale_forever(self) -> None:
        """Sample the calls in flight of every autoscaled service and set its count.

        It visits only the services with ``autoscale`` (the supervisor keeps that list with
        the specs), so a fleet of fixed-size services costs it nothing per step."""
        while True:
            try:
                await self._autoscale_once(time.monotonic())
            except Exception:  # one bad sample must not end autoscaling
                logger.exception("autoscaling step failed")
            await asyncio.sleep(0.25)

    async def _autoscale_once(self, now: float) -> None:
        reg = self._reg
        autoscaled = reg.supervisor.autoscaled()
        names = {rec.spec.name for rec in autoscaled}
        for gone in [name for name in self._scalers if name not in names]:
            del self._scalers[gone]  # unregistered, or its spec no longer autoscales
        for rec in autoscaled:
            name, scale = rec.spec.name, rec.spec.autoscale
            if scale is None or rec.state not in UP_STATES or self._deployer.busy(name):
                self._scalers.pop(name, None)
                continue
            known = self._scalers.get(name)
            if known is None or known[0] is not scale:  # new, or the spec changed
                scaler = Autoscaler(
                    scale.min_replicas,
                    scale.max_replicas,
                    scale.target_inflight,
                    scale.downscale_delay_s,
                )
                known = (scale, scaler)
                self._scalers[name] = known
                self._sampled_at[name] = 0.0
            if now - self._sampled_at.get(name, 0.0) < scale.period_s:
                continue
            self._sampled_at[name] = now
            replicas = reg.replica_set(name)
            current = replicas.of(rec.generation) if replicas else []
            if not current:
                continue
            inflight = (await call_stats(reg.replica_actors(), current)).inflight
            wanted = known[1].decide(len(current), inflight, now)
            if wanted != self._scaled_to.get(name, len(current)):
                logger.info("autoscaling %s: %d -> %d replicas", name, len(current), wanted)
                reg.wake(name)
            self._scaled_to[name] = wanted

    async def scale(self, name: str, replicas: int, *, wait_s: float) -> dict[str, Any]:
        """Change the replica count live; returns once the count is reached (or ``wait_s``)."""
        if replicas < 1:
            raise DeploymentError(f"cannot scale {name!r} to {replicas}: at least 1 replica")
        if self._deployer.busy(name):
            raise DeploymentError(f"{name!r} is being upgraded; scale it after the upgrade")
        reg = self._reg
        rec = reg.supervisor.record(name)
        old = rec.spec
        try:
            new = ServiceSpec.model_validate({**old.to_json(), "replicas": replicas})
        except Exception as exc:
            raise DeploymentError(f"cannot scale {name!r} to {replicas}: {exc}") from exc
        self._scaled_to.pop(name, None)  # an autoscaler starts again from the operator's count
        reg.supervisor.register(new)
        reg.save_spec(new)
        deployment_id = new_deployment_id()
        history = self._deployer.history_store
        await asyncio.to_thread(
            history.begin,
            deployment_id,
            name,
            "scale",
            "live",
            rec.generation,
            rec.generation,
            old.to_json(),
            new.to_json(),
        )
        reg.wake(name)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and not self._scaled(name, replicas):
            await asyncio.sleep(_POLL_S)
        reached = self._scaled(name, replicas)
        reason = f"{old.replicas} -> {replicas} replicas" + ("" if reached else " (still going)")
        row = await asyncio.to_thread(history.finish, deployment_id, "done", reason)
        await asyncio.to_thread(
            history.audit, "deployment.scale", name, "success", {"replicas": replicas}
        )
        return row or {}

    def _scaled(self, name: str, count: int) -> bool:
        rec = self._reg.supervisor.record(name)
        replicas = self._reg.replica_set(name)
        if replicas is None or not self._reg.routed(name):
            return False
        current = replicas.of(rec.generation)
        draining = any(r.draining for r in replicas.members.values())
        return len(current) == count and all(r.ready for r in current) and not draining
