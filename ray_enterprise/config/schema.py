"""The validated shape of the whole configuration.

Every model forbids unknown keys: a misspelt key in a file or an environment variable would
otherwise be silently ignored and the default used, which is the hardest config bug to find.
Defaults run on a laptop (memory cache, in-process search, SQLite); compliance rules, not the
schema, decide what production needs.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ray_enterprise.config.errors import ConfigValidationError
from ray_enterprise.config.merge import MergedConfig, is_secret_key, reveal

Environment = Literal["development", "staging", "production"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, hide_input_in_errors=True)


class CacheTierConfig(_Section):
    """One tier of the cache; lower ``level`` is consulted first."""

    level: int = Field(default=1, ge=1)
    backend: Literal["memory", "disk", "redis"] = "memory"
    max_items: int = Field(default=10_000, ge=1)
    max_size_mb: int = Field(default=256, ge=1)
    ttl_seconds: float = Field(default=300.0, gt=0)
    eviction: Literal["lru", "lfu", "fifo", "ttl"] = "lru"
    url: str | None = None
    password: SecretStr | None = None

    @model_validator(mode="after")
    def _redis_needs_url(self) -> CacheTierConfig:
        if self.backend == "redis" and not self.url:
            raise ValueError("a redis tier needs a url (e.g. redis://localhost:6379/0)")
        return self


def _default_tiers() -> dict[str, CacheTierConfig]:
    return {
        "l1": CacheTierConfig(level=1, backend="memory", max_items=10_000, max_size_mb=128),
        "l2": CacheTierConfig(
            level=2, backend="disk", max_items=100_000, max_size_mb=1024, ttl_seconds=3600.0
        ),
    }


class EnterpriseCacheConfig(_Section):
    """A multi-tier cache; tiers are keyed by name so one tier's field can be overridden alone."""

    enabled: bool = True
    tiers: dict[str, CacheTierConfig] = Field(default_factory=_default_tiers)
    default_ttl_seconds: float = Field(default=300.0, gt=0)
    write_policy: Literal["write_through", "write_back"] = "write_through"
    key_prefix: str = "ray_enterprise"
    stampede_protection: bool = True

    @model_validator(mode="after")
    def _levels_unique(self) -> EnterpriseCacheConfig:
        if self.enabled and not self.tiers:
            raise ValueError("an enabled cache needs at least one tier")
        levels = [t.level for t in self.tiers.values()]
        if len(levels) != len(set(levels)):
            raise ValueError(f"tier levels must be unique, got {sorted(levels)}")
        return self


class EnterpriseSearchConfig(_Section):
    """The demo search service's index and ranking (in-process; see examples/search.py)."""

    enabled: bool = True
    # The documents indexed are the store's keys "<index_name>:..."; a change re-indexes.
    index_name: str = Field(default="doc", pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    default_limit: int = Field(default=10, ge=1)
    max_limit: int = Field(default=100, ge=1)
    timeout_seconds: float = Field(default=5.0, gt=0)
    # BM25 alone, or blended with character-trigram similarity (finds misspelt words).
    hybrid: bool = False
    dense_weight: float = Field(default=0.3, ge=0.0, le=1.0)
    reranking_enabled: bool = False
    query_cache_ttl_seconds: float = Field(default=60.0, ge=0)

    @model_validator(mode="after")
    def _limits_ordered(self) -> EnterpriseSearchConfig:
        if self.default_limit > self.max_limit:
            raise ValueError(
                f"default_limit {self.default_limit} exceeds max_limit {self.max_limit}"
            )
        return self


class RouteRateLimit(_Section):
    """The limit of one route of the management API, for each caller separately."""

    requests_per_minute: int = Field(ge=1)
    burst: int = Field(default=10, ge=1)


class RateLimitConfig(_Section):
    """Token buckets per caller and route; ``routes`` overrides the default for one route,
    named by its path template (``/alerts/{alert_id}/ack``), not by a concrete path."""

    enabled: bool = True
    requests_per_minute: int = Field(default=600, ge=1)
    burst: int = Field(default=100, ge=1)
    key_by: Literal["api_key", "client_ip", "service"] = "api_key"
    routes: dict[str, RouteRateLimit] = Field(default_factory=dict)

    @field_validator("routes")
    @classmethod
    def _routes_are_paths(cls, routes: dict[str, RouteRateLimit]) -> dict[str, RouteRateLimit]:
        bad = sorted(r for r in routes if not r.startswith("/"))
        if bad:
            raise ValueError(f"route names are paths starting with '/', e.g. '/status': {bad}")
        return routes


_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# An origin is scheme://host[:port] and nothing else: browsers send no path, so an entry with
# one would silently never match.
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~\-]+$")


class SecurityFrameworkConfig(_Section):
    """Zero-trust settings: who may call, from where, how often, and what is kept."""

    api_keys_enabled: bool = False
    api_key_header: str = "X-API-Key"
    api_key_ttl_days: int = Field(default=90, ge=1)
    cors_origins: list[str] = Field(
        default_factory=lambda: ["http://localhost:8265", "http://127.0.0.1:8265"]
    )
    cors_allow_methods: list[str] = Field(default_factory=lambda: ["GET", "POST", "PUT"])
    cors_allow_headers: list[str] = Field(
        default_factory=lambda: ["Authorization", "X-API-Key", "Content-Type", "traceparent"]
    )
    cors_allow_credentials: bool = False
    cors_max_age_seconds: int = Field(default=600, ge=0)
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    audit_enabled: bool = True
    audit_retention_days: int = Field(default=30, ge=1)
    # Bearer tokens (JWT, HS256) signed with this secret are taken beside API keys; each may
    # live at most session_timeout_minutes (security/tokens.py). None: no tokens.
    jwt_secret: SecretStr | None = None
    session_timeout_minutes: int = Field(default=60, ge=1, le=24 * 60)

    @field_validator("cors_origins")
    @classmethod
    def _origins_are_origins(cls, origins: list[str]) -> list[str]:
        cleaned = [o.strip() for o in origins]
        bad = [o for o in cleaned if o != "*" and not _ORIGIN.match(o)]
        if bad:
            raise ValueError(
                f"CORS origins are scheme://host[:port] with no path or trailing '/', or '*': {bad}"
            )
        return cleaned

    @field_validator("cors_allow_methods")
    @classmethod
    def _methods_are_http(cls, methods: list[str]) -> list[str]:
        upper = [m.strip().upper() for m in methods]
        bad = [m for m in upper if m != "*" and m not in _HTTP_METHODS]
        if bad:
            raise ValueError(f"unknown HTTP methods {bad}; use {sorted(_HTTP_METHODS)} or '*'")
        return upper

    @field_validator("cors_allow_headers")
    @classmethod
    def _headers_are_tokens(cls, headers: list[str]) -> list[str]:
        cleaned = [h.strip() for h in headers]
        bad = [h for h in cleaned if h != "*" and not _HEADER.match(h)]
        if bad:
            raise ValueError(f"not valid header names: {bad}")
        return cleaned

    @model_validator(mode="after")
    def _no_credentials_for_everyone(self) -> SecurityFrameworkConfig:
        # Browsers refuse credentialed responses to '*', so this pair can only be a mistake.
        if self.cors_allow_credentials and "*" in self.cors_origins:
            raise ValueError("cors_allow_credentials needs explicit cors_origins, not '*'")
        return self


class RollbackThresholds(_Section):
    """Past any of these during the bake period, a deployment rolls back."""

    auto_rollback: bool = True
    max_error_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    max_latency_p99_ms: float = Field(default=1000.0, gt=0)
    min_health_score: float = Field(default=70.0, ge=0.0, le=100.0)
    # Failed health checks of the new version during the bake period that still pass.
    max_health_failures: int = Field(default=0, ge=0)
    # Anomaly alerts on the service during the bake period beyond those of the same time before.
    max_new_anomalies: int = Field(default=0, ge=0)
    # Below this many calls to the new version, its error rate is not judged.
    min_calls: int = Field(default=10, ge=1)


class DeploymentFrameworkConfig(_Section):
    # For replicated services; a single replica is always upgraded blue-green. "recreate"
    # (stop, then start: downtime) is not offered by the registry and runs as rolling.
    strategy: Literal["blue_green", "rolling", "recreate"] = "rolling"
    bake_period_seconds: float = Field(default=60.0, ge=0)
    drain_timeout_seconds: float = Field(default=30.0, ge=0)
    # How stale a caller's list of replicas may be; a replica taken out of it is stopped only
    # after this long (plus its calls in flight), so callers never reach a stopped one.
    route_ttl_seconds: float = Field(default=0.5, gt=0, le=30.0)
    # How long a new version may take to pass its first health check before it is rolled back.
    ready_timeout_seconds: float = Field(default=60.0, gt=0)
    rollback: RollbackThresholds = Field(default_factory=RollbackThresholds)


class AlertReceiverConfig(_Section):
    """A named destination for notifications; URL and header values are secrets (a webhook
    URL often carries its token, and a header usually is one)."""

    type: Literal["webhook", "alertmanager", "log"] = "webhook"
    url: SecretStr | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    slack: bool = False

    @model_validator(mode="after")
    def _needs_url(self) -> AlertReceiverConfig:
        if self.type != "log" and self.url is None:
            raise ValueError(f"a {self.type} receiver needs a url")
        return self


class AlertRouteConfig(_Section):
    """A child of the root route: alerts matching ``match`` (``'service="api"'``) go to
    ``receivers``; the first matching route wins unless it says ``continue_matching``."""

    match: list[str] = Field(default_factory=list)
    receivers: list[str] = Field(min_length=1)
    continue_matching: bool = False


class AlertingConfig(_Section):
    """What the alert actor builds its routes and receivers from, live (see docs/settings.md).

    ``enabled: false`` routes every alert to nobody: alerts are still kept and counted in the
    health score, but no receiver is told.
    """

    enabled: bool = True
    dedup_window_seconds: float = Field(default=300.0, ge=0)
    escalation_after_seconds: float = Field(default=900.0, gt=0)
    resolve_notifications: bool = True
    group_wait_seconds: float = Field(default=30.0, ge=0)
    webhook_url: SecretStr | None = None
    webhook_headers: dict[str, SecretStr] = Field(default_factory=dict)
    receivers: dict[str, AlertReceiverConfig] = Field(default_factory=dict)
    routes: list[AlertRouteConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _routes_name_receivers(self) -> AlertingConfig:
        known = {"log", *self.receivers, *(["webhook"] if self.webhook_url else [])}
        for route in self.routes:
            missing = sorted(set(route.receivers) - known)
            if missing:
                raise ValueError(
                    f"routes name receivers {missing} that are not configured "
                    f"(configured: {sorted(known)})"
                )
        if self.webhook_url is not None and "webhook" in self.receivers:
            raise ValueError("'webhook' is the receiver of webhook_url; name yours otherwise")
        return self


class ObservabilityFrameworkConfig(_Section):
    """Metrics, traces and their export. The central actor reads its part when it is created
    (``boot_observability``); each process reads the per-process part (flush interval, trace
    sampling, OTLP) when it sets up its recorder and tracer. docs/settings.md has the table."""

    flush_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    # Series per metric name the central store admits; more are refused and counted (the
    # MetricsRefused alert says so).
    cardinality_limit: int = Field(default=1_000, ge=1)
    # Points each series keeps in its ring buffer (the newest; windows read from it).
    series_capacity: int = Field(default=8_192, ge=1)
    trace_sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    otlp_endpoint: str | None = None
    otlp_protocol: Literal["http/protobuf", "grpc"] = "http/protobuf"
    prometheus_enabled: bool = True
    # Loopback unless said otherwise: the exposition has no authentication of its own.
    prometheus_host: str = "127.0.0.1"
    prometheus_port: int = Field(default=9464, ge=0, le=65535)
    mirror_to_ray_metrics: bool = False
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)


class ServiceConfigRegistry:
    """Per-service pydantic models, consulted when ``services.<name>`` is validated.

    A registry object rather than a global so that the actor that validates owns the set of
    models it knows; sections of services without a model pass through as plain dicts.
    """

    def __init__(self) -> None:
        self._models: dict[str, type[BaseModel]] = {}

    def register(self, service: str, model: type[BaseModel]) -> None:
        self._models[service] = model

    def unregister(self, service: str) -> None:
        self._models.pop(service, None)

    def model_for(self, service: str) -> type[BaseModel] | None:
        return self._models.get(service)

    def __contains__(self, service: object) -> bool:
        return service in self._models

    def services(self) -> tuple[str, ...]:
        """The services that declared a model."""
        return tuple(self._models)

    def parse(self, service: str, value: Mapping[str, Any]) -> BaseModel | dict[str, Any]:
        """The section as the service's model when it declared one, else as a dict."""
        model = self._models.get(service)
        return model.model_validate(dict(value)) if model else dict(value)


class EnterpriseConfig(_Section):
    """The whole configuration; validate through :func:`validate_config` to get clear errors."""

    environment: Environment = "development"
    cache: EnterpriseCacheConfig = Field(default_factory=EnterpriseCacheConfig)
    search: EnterpriseSearchConfig = Field(default_factory=EnterpriseSearchConfig)
    security: SecurityFrameworkConfig = Field(default_factory=SecurityFrameworkConfig)
    deployment: DeploymentFrameworkConfig = Field(default_factory=DeploymentFrameworkConfig)
    observability: ObservabilityFrameworkConfig = Field(
        default_factory=ObservabilityFrameworkConfig
    )
    services: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("services")
    @classmethod
    def _wrap_service_secrets(
        cls, services: dict[str, dict[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        # Untyped service sections have no SecretStr fields, so a secret-looking key is wrapped
        # here; otherwise printing the config would print the secret.
        return {name: _wrap_secrets(section) for name, section in services.items()}

    def section(self, name: str) -> Any:
        """A section by subscriber name: ``cache`` or ``services.<name>``."""
        if name.startswith("services."):
            return self.services.get(name.split(".", 1)[1], {})
        if name not in type(self).model_fields:
            raise KeyError(name)
        return getattr(self, name)


def _wrap_secrets(section: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in section.items():
        if isinstance(value, dict):
            out[key] = _wrap_secrets(value)
        elif isinstance(value, str) and is_secret_key(str(key)):
            out[key] = SecretStr(value)
        else:
            out[key] = value
    return out


def default_document() -> dict[str, Any]:
    """The defaults layer: every field at its default, secrets still wrapped."""
    return EnterpriseConfig().model_dump()


def validate_config(
    document: Mapping[str, Any],
    *,
    merged: MergedConfig | None = None,
    services: ServiceConfigRegistry | None = None,
) -> EnterpriseConfig:
    """Validate a merged document, naming field and source of each problem on failure.

    ``merged`` supplies provenance; without it, errors name the field only.
    """
    problems: list[tuple[str, str | None, str]] = []
    try:
        config = EnterpriseConfig.model_validate(dict(document))
    except ValidationError as exc:
        problems = [_describe(err, (), document, merged) for err in exc.errors()]
        raise ConfigValidationError(problems) from None
    if services is None:
        return config
    # Service models are validated here rather than in a pydantic validator so that their
    # errors keep their own location (services.<name>.<field>) instead of one opaque message.
    checked: dict[str, dict[str, Any]] = {}
    for name, section in config.services.items():
        model = services.model_for(name)
        if model is None:
            checked[name] = section
            continue
        try:
            # Python mode keeps SecretStr wrapped, so secrets stay masked inside the dict.
            # Unwrapped first: the model decides which of its fields are SecretStr.
            checked[name] = model.model_validate(reveal(section)).model_dump()
        except ValidationError as exc:
            prefix = ("services", name)
            problems.extend(_describe(err, prefix, document, merged) for err in exc.errors())
    # A typed section no source sets is the model's defaults, as the README promises: the
    # first on_config got a raw {} instead. A model with required fields has no defaults to
    # give, so its section stays unset until a source sets it.
    for name in services.services():
        model = services.model_for(name)
        if name in checked or model is None:
            continue
        try:
            checked[name] = model.model_validate({}).model_dump()
        except ValidationError:
            continue
    if problems:
        raise ConfigValidationError(problems)
    return config.model_copy(update={"services": checked})


#: Settings that were once in the schema and did nothing: a config that still sets one is told
#: why it went rather than "unknown key".
REMOVED: dict[str, str] = {
    "security.mtls_required": (
        "nothing enforced it; mutual TLS between Ray processes is Ray's own (RAY_USE_TLS with "
        "RAY_TLS_SERVER_CERT, RAY_TLS_SERVER_KEY and RAY_TLS_CA_CERT), and the management API "
        "takes TLS from the proxy in front of it"
    ),
    "security.encryption_key": (
        "nothing encrypted with it; config versions' secrets are sealed with the key in "
        "RAY_ENTERPRISE_CONFIG_KEY (or the 0600 file in RAY_ENTERPRISE_HOME), which cannot live "
        "in the config it seals"
    ),
    "search.backend": (
        "the demo search is in-process (BM25, optionally hybrid); an external search engine "
        "is a service of your own with its own services.<name> section"
    ),
    "search.url": "the demo search is in-process: there is no server to reach",
    "search.api_key": "the demo search is in-process: there is no server to authenticate to",
    "deployment.traffic_steps": (
        "upgrades move traffic by replica (rolling, blue-green), not by percentage; bound "
        "them with deployment.bake_period_seconds and deployment.rollback"
    ),
}


def _describe(
    err: Any, prefix: tuple[str, ...], document: Mapping[str, Any], merged: MergedConfig | None
) -> tuple[str, str | None, str]:
    loc = [*prefix, *(str(p) for p in err.get("loc", ()))]
    path = ".".join(loc)
    reason = str(err.get("msg", "invalid value"))
    if err.get("type") == "extra_forbidden" and path in REMOVED:
        reason = f"removed setting: {REMOVED[path]}; delete it from this source"
    elif err.get("type") == "extra_forbidden":
        reason = "unknown key" + _suggestion(loc, document)
    elif err.get("type") == "missing":
        reason = "required key is missing"
    source = merged.source_of(path) if merged else None
    return path, source, reason


def _suggestion(loc: list[str], document: Mapping[str, Any]) -> str:
    """A did-you-mean hint from the model that owns the misspelt key."""
    model: Any = EnterpriseConfig
    parts = list(loc[:-1])
    while parts and model is not None:
        part = parts.pop(0)
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return ""
        annotation = fields[part].annotation
        if get_origin(annotation) is dict:
            # dict[str, Model]: the next location part is the key, not a field.
            if parts:
                parts.pop(0)
            annotation = get_args(annotation)[1]
        model = annotation if isinstance(annotation, type) else None
    fields = getattr(model, "model_fields", None)
    if not fields or not loc:
        return ""
    close = difflib.get_close_matches(loc[-1], list(fields), n=1)
    return f" (did you mean {close[0]!r}?)" if close else f"; allowed: {', '.join(fields)}"
