"""EnterpriseServiceRegistry: the client-side face of the RegistryActor.

Every method is a coroutine for async code (a driver's event loop, a Serve replica, another
actor) and has a ``*_sync`` twin for scripts. The client holds only the actor handle, so it can
be created anywhere and passed around freely.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import ray

from ray_enterprise.errors import SpecError
from ray_enterprise.registry.handle import ServiceHandle
from ray_enterprise.registry.history import new_deployment_id
from ray_enterprise.service import default_service_name
from ray_enterprise.spec import AppSpec, ServiceSpec


def build_spec(
    service: type | str | None = None,
    *,
    name: str | None = None,
    dependencies: Sequence[str] | None = None,
    config: dict[str, Any] | None = None,
    criticality: str | None = None,
    **fields: Any,
) -> ServiceSpec:
    """A :class:`ServiceSpec` from the seed's keyword style (``service=``, ``dependencies=``)."""
    if isinstance(service, type):
        module = service.__module__
        if module == "__main__":
            raise SpecError(
                f"{service.__qualname__} is defined in __main__, which service actors cannot "
                "import; move it to a module on the Python path",
                field="class",
            )
        class_path = f"{module}:{service.__qualname__}"
        name = name or default_service_name(service)
    elif isinstance(service, str):
        class_path = service
    else:
        class_path = fields.pop("class_path", None) or fields.pop("class", None)
        if class_path is None:
            raise SpecError("register_service needs service= (a Service class or 'mod:Class')")
    if name is None:
        raise SpecError("a service registered by class path needs name=", field="name")
    data: dict[str, Any] = {"name": name, "class": class_path, **fields}
    if dependencies is not None:
        data["depends_on"] = tuple(dependencies)
    if config is not None:
        data["config"] = dict(config)
    if criticality is not None:
        data["criticality"] = criticality
    try:
        return ServiceSpec.model_validate(data)
    except Exception as exc:
        if hasattr(exc, "errors"):
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise SpecError(first["msg"], service=name, field=field) from exc
        raise


def _app_args(app: AppSpec | Iterable[ServiceSpec]) -> tuple[list[dict[str, Any]], str | None]:
    """``register_services``' arguments: the specs, and the app's auto_shutdown if it is one."""
    if isinstance(app, AppSpec):
        return [s.to_json() for s in app.services], app.auto_shutdown.value
    return [s.to_json() for s in app], None


class EnterpriseServiceRegistry:
    """Register, start, inspect and stop services through the cluster's RegistryActor."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    @property
    def actor(self) -> Any:
        return self._handle

    # -- async API ------------------------------------------------------------------------

    async def register_service(
        self,
        service: type | str | None = None,
        *,
        name: str | None = None,
        dependencies: Sequence[str] | None = None,
        config: dict[str, Any] | None = None,
        criticality: str | None = None,
        spec: ServiceSpec | None = None,
        **fields: Any,
    ) -> ServiceSpec:
        """Register (or replace) a service; it starts once start_all ran and its deps are up."""
        if spec is None:
            spec = build_spec(
                service,
                name=name,
                dependencies=dependencies,
                config=config,
                criticality=criticality,
                **fields,
            )
        await self._handle.register_service.remote(spec.to_json())
        return spec

    async def register_app(self, app: AppSpec | Iterable[ServiceSpec]) -> list[str]:
        """Register services; an :class:`AppSpec` also sets the application's auto_shutdown,
        a bare list of services leaves it as it was."""
        names: list[str] = await self._handle.register_services.remote(*_app_args(app))
        return names

    async def start_all(self, timeout_s: float | None = 300.0) -> dict[str, Any]:
        result: dict[str, Any] = await self._handle.start_all.remote(timeout_s)
        return result

    async def stop_all(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._handle.stop_all.remote()
        return result

    async def restart(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._handle.restart.remote(name)
        return result

    async def get_service(self, name: str, wait_s: float = 0.0) -> ServiceHandle:
        """A handle to call the service with (``handle.method.remote(...)``): each call goes
        straight to one of its replicas, the registry is not in the path, and the handle
        follows scaling and upgrades by itself."""
        handle: ServiceHandle = await self._handle.get_service.remote(name, wait_s)
        return handle

    async def upgrade(
        self, name: str, spec: ServiceSpec, *, bake_s: float | None = None
    ) -> dict[str, Any]:
        """Replace the running version with ``spec`` (blue-green, or rolling for replicas);
        returns the deployment record, whose ``outcome`` is ``done`` or ``rolled_back``."""
        result: dict[str, Any] = await self._handle.upgrade.remote(
            name, spec.to_json(), bake_s, new_deployment_id()
        )
        return result

    async def rollback(self, name: str) -> dict[str, Any]:
        """Go back to the spec the last finished upgrade replaced."""
        result: dict[str, Any] = await self._handle.rollback.remote(name, new_deployment_id())
        return result

    async def scale(self, name: str, replicas: int, wait_s: float = 60.0) -> dict[str, Any]:
        """Change the replica count live; returns when reached or after ``wait_s``."""
        result: dict[str, Any] = await self._handle.scale.remote(name, replicas, wait_s)
        return result

    async def deployment_history(
        self, name: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Upgrades, rollbacks and scales, newest first."""
        result: list[dict[str, Any]] = await self._handle.deployment_history.remote(name, limit)
        return result

    async def validate_service_health(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._handle.validate_service_health.remote(name)
        return result

    async def get_system_status(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._handle.get_system_status.remote()
        return result

    async def list_services(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._handle.list_services.remote()
        return result

    # -- sync twins -----------------------------------------------------------------------

    def register_service_sync(
        self, service: type | str | None = None, **kwargs: Any
    ) -> ServiceSpec:
        spec: ServiceSpec | None = kwargs.pop("spec", None)
        if spec is None:
            spec = build_spec(service, **kwargs)
        ray.get(self._handle.register_service.remote(spec.to_json()))
        return spec

    def register_app_sync(self, app: AppSpec | Iterable[ServiceSpec]) -> list[str]:
        names: list[str] = ray.get(self._handle.register_services.remote(*_app_args(app)))
        return names

    def start_all_sync(self, timeout_s: float | None = 300.0) -> dict[str, Any]:
        result: dict[str, Any] = ray.get(self._handle.start_all.remote(timeout_s))
        return result

    def stop_all_sync(self) -> dict[str, Any]:
        result: dict[str, Any] = ray.get(self._handle.stop_all.remote())
        return result

    def restart_sync(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = ray.get(self._handle.restart.remote(name))
        return result

    def get_service_sync(self, name: str, wait_s: float = 0.0) -> ServiceHandle:
        handle: ServiceHandle = ray.get(self._handle.get_service.remote(name, wait_s))
        return handle

    def upgrade_sync(
        self, name: str, spec: ServiceSpec, *, bake_s: float | None = None
    ) -> dict[str, Any]:
        result: dict[str, Any] = ray.get(
            self._handle.upgrade.remote(name, spec.to_json(), bake_s, new_deployment_id())
        )
        return result

    def rollback_sync(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = ray.get(self._handle.rollback.remote(name, new_deployment_id()))
        return result

    def scale_sync(self, name: str, replicas: int, wait_s: float = 60.0) -> dict[str, Any]:
        result: dict[str, Any] = ray.get(self._handle.scale.remote(name, replicas, wait_s))
        return result

    def deployment_history_sync(
        self, name: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = ray.get(self._handle.deployment_history.remote(name, limit))
        return result

    def validate_service_health_sync(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = ray.get(self._handle.validate_service_health.remote(name))
        return result

    def get_system_status_sync(self) -> dict[str, Any]:
        result: dict[str, Any] = ray.get(self._handle.get_system_status.remote())
        return result

    def list_services_sync(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = ray.get(self._handle.list_services.remote())
        return result
