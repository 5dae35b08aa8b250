"""Service and application specs: the desired state the registry reconciles toward.

Specs are pydantic models because they arrive from the edge (YAML files, Python callers, the
GCS key-value store after a registry restart) and must be rejected there, with the file, the
service and the field named, before anything is started.
"""

from __future__ import annotations

import importlib
import re
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ray_enterprise.backoff import DEFAULT_JITTER
from ray_enterprise.errors import SpecError
from ray_enterprise.registry.routing import Routing
from ray_enterprise.safe_load import DocumentError, read_document

_NAME_RE = re.compile(r"^[a-z][a-z0-9_\-]{0,62}$")


class Criticality(str, Enum):
    """How much a service's health weighs in the system status."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class RestartPolicy(str, Enum):
    """OTP's restart types: when a stopped service is started again."""

    PERMANENT = "permanent"  # always restarted
    TRANSIENT = "transient"  # restarted after a crash or failed health, not after a clean exit
    TEMPORARY = "temporary"  # never restarted


class Strategy(str, Enum):
    """Which services restart together (OTP supervisor strategies over the dependency graph)."""

    ONE_FOR_ONE = "one_for_one"
    REST_FOR_ONE = "rest_for_one"
    # The group is the services naming the same ``group:``, not a supervisor's children: a
    # flat spec file has no supervisor tree, and an explicit name says what restarts together.
    ONE_FOR_ALL = "one_for_all"


class AutoShutdown(str, Enum):
    """OTP's ``auto_shutdown``: whether the application stops when significant services end."""

    NEVER = "never"
    ANY_SIGNIFICANT = "any_significant"  # the first significant service to end stops it
    ALL_SIGNIFICANT = "all_significant"  # it stops once every significant service has ended


class _Strict(BaseModel):
    # ``.inf`` and ``.nan`` parse as floats and passed ``gt=0``: a health check that never
    # times out, a restart window that never ends. Every float here must be finite.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


#: Upper bounds: past these a value is a typo (ms for s, a stray zero), not a choice.
DAY_S = 86_400.0
HOUR_S = 3_600.0


class RestartSpec(_Strict):
    """Restart policy, intensity (``max_restarts`` within ``window_s``) and backoff."""

    policy: RestartPolicy = RestartPolicy.PERMANENT
    max_restarts: int = Field(5, ge=0, le=10_000)
    window_s: float = Field(60.0, gt=0, le=DAY_S)
    backoff_initial_s: float = Field(0.1, ge=0, le=HOUR_S)
    backoff_max_s: float = Field(30.0, ge=0, le=HOUR_S)
    # Backoff forgets past restarts after this long healthy (Kubernetes resets after 10 min).
    backoff_reset_s: float = Field(120.0, gt=0, le=DAY_S)
    # Each backoff is lengthened by up to this fraction, at random (Akka's randomFactor), so
    # services restarted together do not retry in lockstep.
    jitter: float = Field(DEFAULT_JITTER, ge=0, le=1)
    # start() failing this many times in a row is FAILED at once: a constructor that cannot
    # succeed (bad config, missing file) should not spend the crash budget, nor retry forever.
    # 3 is Ray Serve's per-replica constructor retry count (MAX_PER_REPLICA_RETRY_COUNT).
    max_start_attempts: int = Field(3, ge=1, le=1_000)

    @model_validator(mode="after")
    def _cap_not_below_initial(self) -> RestartSpec:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be >= backoff_initial_s")
        return self


class HealthSpec(_Strict):
    """How the registry probes a service, in Kubernetes' three roles.

    Startup: ``start()`` and the first passed check must come within ``startup_timeout_s``;
    failed checks before that do not count (a slow starter is not killed for being slow).
    Liveness: ``check_health()`` failing ``failure_threshold`` times in a row restarts it.
    Readiness: ``check_ready()`` saying no takes the replica out of the routes callers read,
    without restarting it. Either kind of failure, once seen, takes ``success_threshold``
    passes in a row to undo (k8s ``successThreshold``, Consul ``success_before_passing``).
    """

    period_s: float = Field(1.0, gt=0, le=HOUR_S)
    timeout_s: float = Field(2.0, gt=0, le=HOUR_S)
    failure_threshold: int = Field(3, ge=1, le=1_000)
    success_threshold: int = Field(1, ge=1, le=1_000)
    startup_timeout_s: float = Field(30.0, gt=0, le=DAY_S)


class ActorOptions(_Strict):
    """The Ray actor options a service may set; everything else is the registry's to decide."""

    num_cpus: float = Field(0.0, ge=0)
    num_gpus: float = Field(0.0, ge=0)
    memory: int | None = Field(None, ge=0)
    resources: dict[str, float] = Field(default_factory=dict)
    node_id: str | None = None  # node affinity (hex node id)
    node_soft: bool = True  # fall back to another node when the pinned one is gone
    # Unpinned services go to the least loaded nodes, so one node's loss takes few of them.
    spread: bool = True
    # Each concurrent call may hold a thread or a task; Ray Serve caps a replica at 10,000 too.
    max_concurrency: int = Field(1000, ge=1, le=10_000)
    # At most this many replicas of the service on one node (Ray Serve's option); as in Serve,
    # replicas beyond nodes x this stay pending until a node joins, the spec is not refused.
    max_replicas_per_node: int | None = Field(None, ge=1, le=64)
    runtime_env: dict[str, Any] | None = None


class AutoscaleSpec(_Strict):
    """Run between ``min_replicas`` and ``max_replicas`` so that each replica has about
    ``target_inflight`` calls in flight (queue depth, counted inside each replica)."""

    min_replicas: int = Field(1, ge=1)
    max_replicas: int = Field(4, ge=1, le=64)
    target_inflight: float = Field(8.0, gt=0)
    # Down only after the load stayed low this long: a dip between bursts costs no cold start.
    downscale_delay_s: float = Field(30.0, ge=0, le=DAY_S)
    period_s: float = Field(1.0, gt=0, le=HOUR_S)  # how often the calls in flight are sampled

    @model_validator(mode="after")
    def _bounds_ordered(self) -> AutoscaleSpec:
        if self.max_replicas < self.min_replicas:
            raise ValueError("max_replicas must be >= min_replicas")
        return self


class UpgradeSpec(_Strict):
    """How an upgrade of this service proceeds (Kubernetes Deployment, Nomad ``update``).

    A new replica counts as available only after it has been ready ``min_ready_s``; an
    upgrade in which no new replica becomes available for ``progress_deadline_s`` rolls back;
    a rolling upgrade keeps at most ``replicas + max_surge`` replicas and at least
    ``replicas - max_unavailable`` available ones.
    """

    min_ready_s: float = Field(0.0, ge=0, le=HOUR_S)
    progress_deadline_s: float = Field(600.0, gt=0, le=DAY_S)
    max_surge: int = Field(1, ge=0, le=64)
    max_unavailable: int = Field(0, ge=0, le=64)

    @model_validator(mode="after")
    def _some_room(self) -> UpgradeSpec:
        if self.max_surge == 0 and self.max_unavailable == 0:
            raise ValueError(
                "max_surge and max_unavailable cannot both be 0: a rolling upgrade could "
                "neither add a new replica nor take an old one away"
            )
        return self


class ServiceSpec(_Strict):
    """Everything the registry needs to start, supervise and stop one service."""

    name: str
    class_path: str = Field(alias="class")
    depends_on: tuple[str, ...] = ()
    criticality: Criticality = Criticality.MEDIUM
    restart: RestartSpec = RestartSpec()
    strategy: Strategy = Strategy.ONE_FOR_ONE
    # one_for_all: the services sharing this name restart together.
    group: str | None = Field(None, validate_default=True)
    # With the app's auto_shutdown: this service ending for good (completed, or FAILED) may stop
    # the application (OTP's significant child).
    significant: bool = False
    health: HealthSpec = HealthSpec()
    shutdown_timeout_s: float = Field(10.0, gt=0, le=HOUR_S)  # for stop(), then killed
    # A replica taken away waits this long for its calls in flight before stop() (Ray Serve's
    # graceful_shutdown_timeout_s); None: the deployment.drain_timeout_seconds setting.
    graceful_shutdown_timeout_s: float | None = Field(None, ge=0, le=HOUR_S)
    # How often that wait asks the replica for its calls in flight (Serve's wait_loop_s).
    graceful_shutdown_wait_loop_s: float = Field(0.05, gt=0, le=60)
    upgrade: UpgradeSpec = UpgradeSpec()
    actor: ActorOptions = ActorOptions()
    replicas: int = Field(1, ge=1, le=64)
    routing: Routing = Routing.ROUND_ROBIN
    # How long a caller's call waits for a live replica while the service restarts, before
    # ServiceUnavailableError; a call may override it (handle.m.options(call_wait_s=...)).
    call_wait_s: float = Field(5.0, ge=0, le=600)
    autoscale: AutoscaleSpec | None = None  # replicas is then the count to start with
    config: dict[str, Any] = Field(default_factory=dict)
    config_section: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError(
                "must start with a lowercase letter and hold only lowercase letters, digits, "
                "'_' or '-' (at most 63 characters)"
            )
        return value

    @field_validator("class_path")
    @classmethod
    def _valid_class_path(cls, value: str) -> str:
        module, sep, qualname = value.partition(":")
        if not sep or not module or not qualname:
            raise ValueError("must be 'package.module:ClassName'")
        return value

    @field_validator("group")
    @classmethod
    def _group_with_one_for_all(cls, value: str | None, info: ValidationInfo) -> str | None:
        strategy = info.data.get("strategy")
        if strategy is Strategy.ONE_FOR_ALL and value is None:
            raise ValueError(
                "strategy one_for_all needs group: NAME (the services that restart together "
                "are those naming the same group)"
            )
        if value is not None and strategy is not Strategy.ONE_FOR_ALL:
            raise ValueError(
                f"group {value!r} is only read with strategy: one_for_all; set that, or drop group"
            )
        if value is not None and not _NAME_RE.match(value):
            raise ValueError("a group name follows the service name rules (lowercase, a-z0-9_-)")
        return value

    @field_validator("depends_on", mode="before")
    @classmethod
    def _deps_as_tuple(cls, value: Any) -> Any:
        if isinstance(value, str):
            return (value,)
        return value

    @model_validator(mode="after")
    def _check(self) -> ServiceSpec:
        if self.name in self.depends_on:
            raise ValueError(f"service {self.name!r} cannot depend on itself")
        if len(set(self.depends_on)) != len(self.depends_on):
            raise ValueError("depends_on lists a service twice")
        scale = self.autoscale
        if scale is not None and not scale.min_replicas <= self.replicas <= scale.max_replicas:
            raise ValueError(
                f"replicas={self.replicas} lies outside autoscale's "
                f"[{scale.min_replicas}, {scale.max_replicas}]"
            )
        return self

    def to_json(self) -> dict[str, Any]:
        """The spec as plain JSON data, as stored in the key-value store."""
        return self.model_dump(mode="json", by_alias=True)

    def load_class(self) -> type:
        """Import the service class this spec names; it must subclass :class:`Service`.

        A spec runs code from the modules it names (importing runs their top level): the
        spec's author is trusted as much as that code. The subclass check keeps a typo or a
        hostile spec from starting any other callable (``subprocess:Popen``) as a service.
        """
        from ray_enterprise.service import Service  # the layer above: only when loading

        try:
            obj = import_object(self.class_path)
        except Exception as exc:  # importing runs the module: anything may come out
            raise SpecError(
                f"cannot import {self.class_path!r} ({type(exc).__name__}: {exc}); check the "
                "module path and that it is importable where the registry runs (PYTHONPATH, "
                "the job's working_dir or py_modules)",
                service=self.name,
                field="class",
            ) from exc
        if not (isinstance(obj, type) and issubclass(obj, Service)):
            raise SpecError(
                f"{self.class_path!r} is not a subclass of ray_enterprise.Service; name a "
                "Service subclass",
                service=self.name,
                field="class",
            )
        return obj


def import_object(path: str) -> Any:
    """``"package.module:Name.attr"`` -> the object; raises ImportError or AttributeError."""
    module_name, _, qualname = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split(".") if qualname else ():
        obj = getattr(obj, part)
    return obj


class AppSpec(_Strict):
    """An application: a named set of services (a spec file)."""

    name: str = "default"
    # The application's, not a service's: OTP sets it on the supervisor of the children.
    auto_shutdown: AutoShutdown = AutoShutdown.NEVER
    services: tuple[ServiceSpec, ...]

    @model_validator(mode="after")
    def _unique_names(self) -> AppSpec:
        seen: set[str] = set()
        for service in self.services:
            if service.name in seen:
                raise ValueError(f"service {service.name!r} is defined twice")
            seen.add(service.name)
        significant = [s.name for s in self.services if s.significant]
        if significant and self.auto_shutdown is AutoShutdown.NEVER:
            # OTP refuses this too: a significant child under auto_shutdown=never means nothing.
            raise ValueError(
                f"significant: true on {', '.join(significant)} has no effect while "
                "auto_shutdown is never; set auto_shutdown: any_significant or all_significant"
            )
        return self


def _location(loc: tuple[int | str, ...], raw_services: list[Any]) -> tuple[str | None, str]:
    """Turn a pydantic error location into (service name, dotted field)."""
    parts = list(loc)
    service: str | None = None
    if len(parts) >= 2 and parts[0] == "services" and isinstance(parts[1], int):
        index = parts[1]
        raw = raw_services[index] if index < len(raw_services) else None
        service = str(raw.get("name")) if isinstance(raw, dict) and raw.get("name") else f"#{index}"
        parts = parts[2:]
    field = ".".join(str(p) for p in parts) or "services"
    return service, field


def parse_app_spec(data: Any, *, file: str | None = None) -> AppSpec:
    """Validate raw spec data, raising :class:`SpecError` that names file, service and field.

    Accepts ``services`` as a list of service mappings or as a mapping from name to service.
    """
    if not isinstance(data, dict):
        raise SpecError("the spec must be a mapping with a 'services' key", file=file)
    data = dict(data)
    services = data.get("services")
    if isinstance(services, dict):
        services = [
            {"name": name, **(body or {})} if isinstance(body, dict) or body is None else body
            for name, body in services.items()
        ]
        data["services"] = services
    if not isinstance(services, list) or not services:
        raise SpecError("'services' must be a non-empty list or mapping", file=file)
    try:
        app = AppSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        service, field = _location(tuple(first["loc"]), services)
        raise SpecError(first["msg"], file=file, service=service, field=field) from exc
    from ray_enterprise.registry.graph import DependencyGraph

    try:
        DependencyGraph({s.name: s.depends_on for s in app.services})
    except SpecError as exc:
        raise (exc.in_file(file) if file else exc) from None
    return app


def load_app_spec(path: str | Path) -> AppSpec:
    """Read and validate a YAML (or JSON) spec file, through the one safe loader."""
    path = Path(path)
    try:
        data = read_document(path)
    except DocumentError as exc:
        where = f" at line {exc.line}" if exc.line is not None else ""
        raise SpecError(f"{exc.reason}{where}", file=str(path)) from None
    app = parse_app_spec(data, file=str(path))
    if app.name == "default":
        app = app.model_copy(update={"name": path.stem})
    return app
