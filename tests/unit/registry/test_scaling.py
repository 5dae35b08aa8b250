"""The autoscaler's step visits only autoscaled services. No Ray: a real Supervisor, and the
registry and deployer it asks stood in for by recorders."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from ray_enterprise.registry.scaling import Scaler
from ray_enterprise.registry.supervision import ServiceState, Supervisor
from ray_enterprise.spec import ServiceSpec


def spec(name: str, **fields: Any) -> ServiceSpec:
    return ServiceSpec.model_validate({"name": name, "class": "pkg.mod:Cls", **fields})


class _Registry:
    """What the Scaler asks of the RegistryActor; remembers which services it asked about."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self.asked: list[str] = []

    def replica_set(self, name: str) -> None:
        self.asked.append(name)  # no replicas yet: the step samples nothing

    def replica_actors(self) -> dict[str, Any]:
        return {}

    def wake(self, name: str | None = None) -> None:
        pass


class _Deployer:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def busy(self, name: str) -> bool:
        self.asked.append(name)
        return False


class _Untouchable:
    """A record's spec that fails the test when anything reads it."""

    def __getattr__(self, attr: str) -> Any:
        raise AssertionError(f"the autoscaler read spec.{attr} of a service without autoscale")


def fleet(fixed: int) -> tuple[Supervisor, _Registry, _Deployer, Scaler]:
    sup = Supervisor()
    sup.register_all(
        [spec(f"fixed{i}") for i in range(fixed)] + [spec("api", autoscale={"max_replicas": 3})]
    )
    for rec in sup.records():
        rec.state = ServiceState.HEALTHY
    registry, deployer = _Registry(sup), _Deployer()
    return sup, registry, deployer, Scaler(cast(Any, registry), cast(Any, deployer))


def test_a_step_reads_no_record_of_a_service_without_autoscale() -> None:
    sup, registry, deployer, scaler = fleet(200)
    asyncio.run(scaler._autoscale_once(0.0))  # the first step after a registration
    for rec in sup.records():
        if rec.spec.name != "api":
            rec.spec = cast(Any, _Untouchable())
    for step in range(1, 5):  # the steps after it, each past the sampling period
        asyncio.run(scaler._autoscale_once(step * 1.0))
    assert set(deployer.asked) == {"api"} and set(registry.asked) == {"api"}
    assert len(registry.asked) == 4  # sampled at every step past its period: api is not skipped


def test_a_service_whose_new_spec_drops_autoscale_is_forgotten_by_the_autoscaler() -> None:
    sup, registry, _, scaler = fleet(3)
    asyncio.run(scaler._autoscale_once(1.0))
    assert registry.asked == ["api"]
    sup.register(spec("api", replicas=2))
    asyncio.run(scaler._autoscale_once(5.0))
    assert registry.asked == ["api"]  # not sampled again
    assert scaler._scalers == {}
    assert scaler.desired_replicas(sup.record("api")) == 2
