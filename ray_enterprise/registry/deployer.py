"""Upgrades, rollbacks and scaling: the RegistryActor's deployment shell.

The rules live in pure modules (:mod:`rollout` for the phases and the commit point,
:mod:`gates` for the bake verdict, :mod:`replicas` for which replica goes); this class only
starts and retires replicas through the registry, samples both versions, and writes the
key-value record of the upgrade in progress, the history row and the audit record.

Blue-green and rolling are one procedure with a different first batch: start the first greens
beside blue (all of them, or one canary), let them take calls, bake, judge, commit, then
replace what is left of blue one replica at a time (rolling) or at once (blue-green).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ray_enterprise import _kv
from ray_enterprise.alerts.client import report_rollback
from ray_enterprise.config.schema import DeploymentFrameworkConfig
from ray_enterprise.errors import SpecError
from ray_enterprise.registry.gates import GateSample, GateSettings, GateVerdict, evaluate
from ray_enterprise.registry.history import DeploymentHistory, new_deployment_id
from ray_enterprise.registry.ports import RegistryCore
from ray_enterprise.registry.replicas import Replica, ReplicaSet
from ray_enterprise.registry.rollout import (
    DeploymentError,
    Phase,
    ProgressDeadline,
    Rollout,
    Strategy,
    available,
    choose_strategy,
    recovered_outcome,
    rolling_step,
)
from ray_enterprise.registry.sampling import (
    anomaly_counts,
    call_stats,
    health_checks,
    health_score,
)
from ray_enterprise.registry.supervision import UP_STATES
from ray_enterprise.spec import ServiceSpec

logger = logging.getLogger("ray_enterprise.registry")

_ROLLOUT = "registry/rollout/"
_POLL_S = 0.05
# How often the bake reads the system health score: each read refreshes the score, which asks
# the registry for its status, so not every poll.
_SCORE_PERIOD_S = 1.0


def _lower(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return a if b is None else b
    return min(a, b)


class _RollBack(Exception):
    def __init__(self, reason: str, *, automatic: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.automatic = automatic


class Deployer:
    """Owned by the RegistryActor, reached through :class:`RegistryCore`; runs on its loop."""

    def __init__(self, registry: RegistryCore) -> None:
        self._reg = registry
        self._rollouts: dict[str, Rollout] = {}
        self._tasks: dict[str, asyncio.Task[dict[str, Any]]] = {}
        self._gone: dict[str, list[str]] = {}  # service -> why greens left, during an upgrade
        self._settings = DeploymentFrameworkConfig()
        self._history: DeploymentHistory | None = None

    # -- what the registry asks -----------------------------------------------------------

    @property
    def route_ttl_s(self) -> float:
        return self._settings.route_ttl_seconds

    @property
    def drain_timeout_s(self) -> float:
        return self._settings.drain_timeout_seconds

    def busy(self, name: str) -> bool:
        return name in self._rollouts

    def phases(self) -> dict[str, str]:
        """The phase of every upgrade in progress, by service."""
        return {name: rollout.phase.value for name, rollout in self._rollouts.items()}

    def replica_gone(self, name: str, replica: Replica, reason: str) -> None:
        """A replica was dropped for a reason; the upgrade cares when it was a green."""
        rollout = self._rollouts.get(name)
        if rollout is not None and replica.generation == rollout.to_generation:
            self._gone.setdefault(name, []).append(f"{replica.id}: {reason}")

    def forget(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._rollouts.clear()
        self._tasks.clear()
        self._gone.clear()

    async def abandon(self, name: str) -> None:
        """The service is being stopped: an upgrade of it ends now, as a rollback."""
        task = self._tasks.get(name)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    @property
    def history_store(self) -> DeploymentHistory:
        if self._history is None:
            self._history = DeploymentHistory()
        return self._history

    def recover(self, generations: dict[str, int]) -> list[ServiceSpec]:
        """Finish the upgrades a registry crash cut short: old or new, by the record.

        Returns the specs of those that had committed, for the caller to register; the
        caller's orphan sweep then kills whichever version lost.
        """
        committed: list[ServiceSpec] = []
        for key, data in _kv.scan(_ROLLOUT).items():
            rollout = Rollout.from_json(data)
            name = rollout.service
            outcome = recovered_outcome(rollout, generations.get(name, 0))
            if outcome == "new":
                spec = ServiceSpec.model_validate(rollout.new_spec)
                self._reg.save_spec(spec)
                committed.append(spec)
                result, why = "done", "registry restarted after the commit: kept the new version"
            else:
                result, why = "rolled_back", "registry restarted before the commit: kept the old"
            self._finish(rollout, result, why)
            _kv.delete(key)
            logger.warning("upgrade %s of %s: %s", rollout.deployment_id, name, why)
        return committed

    # -- public operations ----------------------------------------------------------------

    async def upgrade(
        self,
        name: str,
        spec: dict[str, Any],
        *,
        bake_s: float | None = None,
        kind: str = "upgrade",
        deployment_id: str | None = None,
    ) -> dict[str, Any]:
        """Replace ``name``'s running version with ``spec`` without a failed call.

        ``deployment_id`` makes the request idempotent: Ray retries a call to a registry that
        died, and the retry must report how the interrupted upgrade ended, not run it again.
        """
        if deployment_id is not None:
            done = await asyncio.to_thread(self.history_store.get, deployment_id)
            if done is not None:
                return done
        try:
            new = ServiceSpec.model_validate(spec)
        except Exception as exc:
            raise SpecError(f"the new spec is not valid: {exc}", service=name) from exc
        if new.name != name:
            raise DeploymentError(f"the new spec is for {new.name!r}, not {name!r}")
        rec = self._reg.supervisor.record(name)
        if self.busy(name):
            raise DeploymentError(
                f"an upgrade of {name!r} is already running; wait for it to finish"
            )
        if rec.state not in UP_STATES:
            raise DeploymentError(
                f"service {name!r} is {rec.state.value}: only a service that is up can be "
                "upgraded; start or restart it first"
            )
        self._reg.supervisor.check_replacement(new)
        settings = await self._load_settings()
        bake = settings.bake_period_seconds if bake_s is None else bake_s
        deployment_id = deployment_id or new_deployment_id()
        run = self._run(name, new, kind, bake, settings, deployment_id)
        task = asyncio.get_event_loop().create_task(run)
        self._tasks[name] = task
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():
                self._tasks.pop(name, None)

    async def rollback(self, name: str, deployment_id: str | None = None) -> dict[str, Any]:
        """Go back to the spec the last finished upgrade replaced, at today's replica count
        (a scale since then is not undone: it was a separate decision)."""
        if deployment_id is not None:
            done = await asyncio.to_thread(self.history_store.get, deployment_id)
            if done is not None:
                return done
        current = self._reg.supervisor.record(name).spec
        rows = await asyncio.to_thread(self.history_store.list, name, limit=200)
        for row in rows:
            if row["kind"] in ("upgrade", "rollback") and row["outcome"] == "done":
                if _unscaled(row["new_spec"]) != _unscaled(current.to_json()):
                    break  # the running spec came from elsewhere (re-registered): not ours
                target = {**row["old_spec"], "replicas": current.replicas}
                return await self.upgrade(
                    name, target, bake_s=0.0, kind="rollback", deployment_id=deployment_id
                )
        raise DeploymentError(
            f"no finished upgrade of {name!r} produced the running spec, so there is nothing "
            "to roll back to; see `ray-enterprise history` and upgrade to the spec you want"
        )

    async def history(self, name: str | None, limit: int) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.history_store.list, name, limit=limit)

    # -- the procedure --------------------------------------------------------------------

    async def _run(
        self,
        name: str,
        new: ServiceSpec,
        kind: str,
        bake_s: float,
        settings: DeploymentFrameworkConfig,
        deployment_id: str,
    ) -> dict[str, Any]:
        reg, sup = self._reg, self._reg.supervisor
        rec = sup.record(name)
        old, from_gen = rec.spec, rec.generation
        rollout = Rollout(
            service=name,
            deployment_id=deployment_id,
            kind=kind,
            from_generation=from_gen,
            to_generation=sup.reserve_generation(name),
            old_spec=old.to_json(),
            new_spec=new.to_json(),
            strategy=choose_strategy(new.replicas, settings.strategy),
        )
        to_gen = rollout.to_generation
        self._rollouts[name] = rollout
        self._gone[name] = []
        self._save(rollout)  # durable before any green exists: a restart knows what to sweep
        await asyncio.to_thread(
            self.history_store.begin,
            rollout.deployment_id,
            name,
            kind,
            rollout.strategy.value,
            from_gen,
            to_gen,
            rollout.old_spec,
            rollout.new_spec,
        )
        began = time.monotonic()
        verdict: GateVerdict | None = None
        try:
            greens = [reg.start_replica(name, to_gen, new) for _ in range(rollout.first_batch)]
            await self._until_ready(name, greens, from_gen, settings, new)
            rollout = self._step(rollout, Phase.BAKING)
            verdict = await self._bake(name, greens, from_gen, bake_s, settings)
            if not verdict.passed:
                if settings.rollback.auto_rollback:
                    raise _RollBack("; ".join(verdict.reasons))
                logger.warning("upgrade of %s failed its gate, auto_rollback is off", name)
            self._check_blue(name, from_gen)
            # The commit: one write of the record switches the service to the new generation.
            sup.switch_generation(name, to_gen, new)
            reg.persist(name)
            reg.save_spec(new)
            rollout = self._step(rollout, Phase.COMMITTED)
            await self._retire_blue(name, from_gen, to_gen, new, rollout.strategy, settings)
            rollout = self._step(rollout, Phase.DONE)
            outcome, reason = "done", ""
        except _RollBack as back:
            committed = rollout.committed
            rollout = self._step(rollout, Phase.ROLLING_BACK, back.reason)
            if committed:  # stalled after the commit: the old version comes back first
                await self._revert(name, old, from_gen, settings)
            await self._retire_generation(name, to_gen)
            rollout = self._step(rollout, Phase.ROLLED_BACK, back.reason)
            outcome, reason = "rolled_back", back.reason
            if back.automatic:
                criticality = sup.record(name).spec.criticality.value
                report_rollback(name, back.reason, rollout.deployment_id, criticality)
        except asyncio.CancelledError:
            if not rollout.committed:
                self._reg.kill_generation(name, to_gen)
            self._finish(rollout, "done" if rollout.committed else "rolled_back", "stopped")
            _kv.delete(_ROLLOUT + name)
            self._rollouts.pop(name, None)
            raise
        finally:
            reg.wake(name)
        row = await asyncio.to_thread(self._finish, rollout, outcome, reason, verdict)
        _kv.delete(_ROLLOUT + name)
        self._rollouts.pop(name, None)
        self._gone.pop(name, None)
        result = dict(row or {})
        result["duration_s"] = round(time.monotonic() - began, 3)
        result["gate"] = verdict.to_json() if verdict else None
        return result

    def _replicas(self, name: str) -> ReplicaSet:
        replicas = self._reg.replica_set(name)
        if replicas is None:  # a service that is up has its replicas
            raise DeploymentError(f"service {name!r} has no replicas to upgrade")
        return replicas

    def _step(self, rollout: Rollout, phase: Phase, reason: str = "") -> Rollout:
        rollout = rollout.to(phase, reason)
        self._rollouts[rollout.service] = rollout
        if phase not in (Phase.DONE, Phase.ROLLED_BACK):
            self._save(rollout)
        return rollout

    def _save(self, rollout: Rollout) -> None:
        _kv.put(_ROLLOUT + rollout.service, rollout.to_json())

    def _finish(
        self, rollout: Rollout, outcome: str, reason: str, verdict: GateVerdict | None = None
    ) -> dict[str, Any] | None:
        history = self.history_store
        row = history.finish(rollout.deployment_id, outcome, reason)
        details: dict[str, Any] = {
            "deployment": rollout.deployment_id,
            "kind": rollout.kind,
            "strategy": rollout.strategy.value,
            "from_generation": rollout.from_generation,
            "to_generation": rollout.to_generation,
            "reason": reason,
        }
        if verdict is not None:
            details["gate"] = verdict.to_json()
        action = "deployment.rollback" if outcome == "rolled_back" else f"deployment.{rollout.kind}"
        history.audit(action, rollout.service, "success" if outcome == "done" else outcome, details)
        return row

    def _check_blue(self, name: str, from_gen: int) -> None:
        rec = self._reg.supervisor.record(name)
        if rec.generation != from_gen or rec.state not in UP_STATES:
            raise _RollBack(
                f"the running version went {rec.state.value} during the upgrade; "
                "upgrade again once it is back",
                automatic=False,
            )

    async def _until_ready(
        self,
        name: str,
        greens: list[Replica],
        from_gen: int | None,
        settings: DeploymentFrameworkConfig,
        spec: ServiceSpec,
    ) -> None:
        """Wait until every green is available (ready, and serving for the spec's
        ``upgrade.min_ready_s``); roll back if one is dropped, if one is not healthy within
        ``deployment.ready_timeout_seconds``, or if none progresses for
        ``upgrade.progress_deadline_s``."""
        began = time.monotonic()
        progress = ProgressDeadline(spec.upgrade.progress_deadline_s, began)
        while True:
            if self._gone.get(name):
                raise _RollBack("new version failed: " + "; ".join(self._gone[name]))
            if from_gen is not None:
                self._check_blue(name, from_gen)
            now = time.monotonic()
            up = sum(available(g, now, spec.upgrade.min_ready_s) for g in greens)
            if up == len(greens):
                return
            progress.note(up, now)
            if progress.stalled(now):
                raise _RollBack(f"{progress.reason()}: {up} of {len(greens)} new available")
            if now - began > settings.ready_timeout_seconds and not all(g.ready for g in greens):
                raise _RollBack(
                    f"new version not healthy within {settings.ready_timeout_seconds:g} s "
                    f"(deployment.ready_timeout_seconds)"
                )
            await asyncio.sleep(_POLL_S)

    async def _bake(
        self,
        name: str,
        greens: list[Replica],
        from_gen: int,
        bake_s: float,
        settings: DeploymentFrameworkConfig,
    ) -> GateVerdict:
        """Greens take calls beside blue for ``bake_s``; then compare what each did."""
        blues = self._replicas(name).of(from_gen)
        blue_calls0, green_calls0 = (
            await call_stats(self._reg.replica_actors(), blues),
            await call_stats(self._reg.replica_actors(), greens),
        )
        blue_checks0, green_checks0 = health_checks(blues), health_checks(greens)
        score_before = await health_score()
        lowest_score = score_before
        began_ms = int(time.time() * 1000)
        deadline = time.monotonic() + bake_s
        next_score = time.monotonic() + _SCORE_PERIOD_S
        while time.monotonic() < deadline:
            if self._gone.get(name):
                raise _RollBack("new version failed while baking: " + "; ".join(self._gone[name]))
            self._check_blue(name, from_gen)
            if time.monotonic() >= next_score:
                lowest_score = _lower(lowest_score, await health_score())
                next_score = time.monotonic() + _SCORE_PERIOD_S
            await asyncio.sleep(min(0.1, max(deadline - time.monotonic(), 0.0)))
        lowest_score = _lower(lowest_score, await health_score())
        blue_calls, green_calls = (
            await call_stats(self._reg.replica_actors(), blues),
            await call_stats(self._reg.replica_actors(), greens),
        )
        blue_checks, green_checks = health_checks(blues), health_checks(greens)
        before, during = await anomaly_counts(name, began_ms, bake_s)
        blue = GateSample(
            health_passed=blue_checks[0] - blue_checks0[0],
            health_failed=blue_checks[1] - blue_checks0[1],
            calls=blue_calls - blue_calls0,
            anomalies=before,
            health_score=score_before,
        )
        green = GateSample(
            health_passed=green_checks[0] - green_checks0[0],
            health_failed=green_checks[1] - green_checks0[1],
            calls=green_calls - green_calls0,
            anomalies=during,
            health_score=lowest_score if score_before is not None else None,
        )
        rollback = settings.rollback
        return evaluate(
            blue,
            green,
            GateSettings(
                max_error_rate=rollback.max_error_rate,
                max_health_failures=rollback.max_health_failures,
                max_new_anomalies=rollback.max_new_anomalies,
                min_calls=rollback.min_calls,
                max_latency_p99_ms=rollback.max_latency_p99_ms,
                min_health_score=rollback.min_health_score,
            ),
        )

    async def _retire_blue(
        self,
        name: str,
        from_gen: int,
        to_gen: int,
        new: ServiceSpec,
        strategy: Strategy,
        settings: DeploymentFrameworkConfig,
    ) -> None:
        """After the commit: replace what is left of blue in rolling steps, or all at once."""
        reg = self._reg
        replicas = self._replicas(name)
        draining: list[asyncio.Task[None]] = []
        if strategy is Strategy.ROLLING:
            await self._roll(name, from_gen, to_gen, new, draining)
        draining += [reg.retire(name, b) for b in replicas.of(from_gen)]
        await asyncio.gather(*draining)  # done means the old version is gone, not going

    async def _roll(
        self,
        name: str,
        from_gen: int,
        to_gen: int,
        new: ServiceSpec,
        draining: list[asyncio.Task[None]],
    ) -> None:
        """Rolling steps bounded by ``upgrade.max_surge`` / ``max_unavailable`` until no blue
        is left and every green is available; no progress for ``progress_deadline_s`` rolls
        back. A green that fails is replaced by the next step (the restart intensity counts
        it)."""
        reg, upgrade = self._reg, new.upgrade
        replicas = self._replicas(name)
        progress = ProgressDeadline(upgrade.progress_deadline_s, time.monotonic())
        retired = 0
        while True:
            rec = reg.supervisor.record(name)
            if rec.generation != to_gen or rec.state not in UP_STATES:
                raise _RollBack(f"the new version went {rec.state.value} while rolling out")
            now = time.monotonic()
            blues, greens = replicas.of(from_gen), replicas.of(to_gen)
            up = sum(available(g, now, upgrade.min_ready_s) for g in greens)
            if not blues and up >= new.replicas:
                return  # the last steps may add greens after the last blue left
            progress.note(up + retired, now)
            if progress.stalled(now):
                failed = "; ".join(self._gone.get(name, [])[-3:])
                raise _RollBack(
                    f"{progress.reason()}: {up} of {new.replicas} new available"
                    + (f"; new replicas failed: {failed}" if failed else "")
                )
            step = rolling_step(
                new.replicas,
                old=len(blues),
                new=len(greens),
                available_now=up + sum(1 for b in blues if b.ready and b.serving),
                max_surge=upgrade.max_surge,
                max_unavailable=upgrade.max_unavailable,
            )
            for _ in range(step.start):
                reg.start_replica(name, to_gen, new)
            for blue in replicas.to_retire(from_gen, step.retire):
                draining.append(reg.retire(name, blue))
                retired += 1
            await asyncio.sleep(_POLL_S)

    async def _revert(
        self, name: str, old: ServiceSpec, from_gen: int, settings: DeploymentFrameworkConfig
    ) -> None:
        """Undo a commit (the one write, switched back), then start old replicas to
        replace the retired ones before the caller retires the new: callers are not left with
        fewer replicas than the stalled upgrade had."""
        reg = self._reg
        reg.supervisor.switch_generation(name, from_gen, old)
        reg.persist(name)
        reg.save_spec(old)
        self._gone[name] = []
        missing = self._replicas(name).shortfall(from_gen, old.replicas)
        blues = [reg.start_replica(name, from_gen, old) for _ in range(max(missing, 0))]
        try:
            await self._until_ready(name, blues, None, settings, old)
        except _RollBack as exc:  # the reconcile loop tops the old version up under its policy
            logger.warning("rolling back %s: old replicas not back yet: %s", name, exc)

    async def _retire_generation(self, name: str, generation: int) -> None:
        replicas = self._reg.replica_set(name)
        if replicas is None:
            return
        members = [r for r in replicas.members.values() if r.generation == generation]
        await asyncio.gather(*(self._reg.retire(name, r) for r in members))

    async def _load_settings(self) -> DeploymentFrameworkConfig:
        """The ``deployment`` config section when a ConfigActor runs, else the defaults."""
        from ray_enterprise.config.actor import get_config_handle

        try:
            handle = get_config_handle(create=False)
            value = await asyncio.wait_for(handle.get.remote("deployment"), timeout=5.0)
            if not isinstance(value, DeploymentFrameworkConfig):
                value = DeploymentFrameworkConfig.model_validate(value)
            self._settings = value
        except Exception as exc:  # no config system: the defaults (or the last one read)
            logger.debug("deployment settings not read from config: %s", exc)
        return self._settings


def _unscaled(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k != "replicas"}
