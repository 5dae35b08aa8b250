"""Connecting to Ray and to the system actors, from a driver, a job, a Serve replica or an actor.

``connect()`` is safe to call anywhere: inside Ray it reuses the worker's connection; outside it
joins the cluster named by ``address`` (or ``RAY_ADDRESS``, which ``ray job submit`` sets) or
starts a local one.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ray
from ray._private import ray_constants as _ray_constants

from ray_enterprise import _kv, system_actors
from ray_enterprise.errors import NotConnectedError

if TYPE_CHECKING:  # the clients import most of the package: not at runtime, not here
    from ray_enterprise.alerts.manager_client import AlertManagerClient
    from ray_enterprise.config.client import ConfigOrchestrator
    from ray_enterprise.observability.platform import EnterpriseObservabilityPlatform
    from ray_enterprise.registry.client import EnterpriseServiceRegistry

NAMESPACE = _kv.NAMESPACE

# Ray's defaults that a laptop or CI user would not want: usage reports off.
_RAY_ENV_DEFAULTS = {"RAY_USAGE_STATS_ENABLED": "0"}
LOOPBACK = "127.0.0.1"
#: observability.otlp_endpoint in the config's environment layer.
OTLP_ENV = "RAY_ENTERPRISE__OBSERVABILITY__OTLP_ENDPOINT"


@dataclass(frozen=True)
class System:
    """Handles to the running system's parts; a part is ``None`` when ``connect(boot=False)``
    found it not running."""

    registry: EnterpriseServiceRegistry
    alerts: AlertManagerClient | None = None
    config: ConfigOrchestrator | None = None
    observability: EnterpriseObservabilityPlatform | None = None


def init_ray(
    address: str | None = None, *, num_cpus: int | None = None, log_to_driver: bool = True
) -> None:
    """Join or start Ray in the ray_enterprise namespace, once per process.

    ``address=None`` uses ``RAY_ADDRESS`` when set, else starts a fresh local instance
    (``address="local"``), which ignores a stale ``ray_current_cluster`` file left by an
    earlier ``ray stop --force``. ``"auto"`` joins the cluster this machine already runs.
    ``log_to_driver=False`` keeps workers' log lines out of this process's output (system
    actors are detached, so their lines reach every driver that asks for them).
    """
    if ray.is_initialized():
        return
    for key, value in _RAY_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if address is None:
        address = os.environ.get("RAY_ADDRESS") or "local"
    kwargs: dict[str, Any] = {
        "address": address,
        "namespace": NAMESPACE,
        "log_to_driver": log_to_driver,
        "configure_logging": False,
    }
    if address != "local":
        # A cluster on 127.0.0.1 runs on this machine: this driver's node is found by that IP.
        with loopback_only() if _on_loopback(address) else contextlib.nullcontext():
            ray.init(**kwargs)
        return
    if os.environ.get(OTLP_ENV):
        # Ray runs its tracing startup hook only in clusters started with it: set now, every
        # worker (system actors included) exports its spans to the OTLP endpoint.
        from ray_enterprise.observability.otlp import HOOK

        kwargs["_tracing_startup_hook"] = HOOK
    kwargs["num_cpus"] = num_cpus if num_cpus is not None else os.cpu_count()
    kwargs["include_dashboard"] = False
    kwargs["_node_ip_address"] = LOOPBACK
    with loopback_only():
        ray.init(**kwargs)


def _on_loopback(address: str) -> bool:
    """Whether a Ray address (``host:port``, maybe ``ray://``) names this machine's loopback."""
    if address == "auto":  # the cluster this machine runs: where its bootstrap file points
        try:
            from ray._private.services import get_ray_address_from_environment

            address = get_ray_address_from_environment("auto", None) or ""
        except Exception:  # no cluster recorded: ray.init says so itself
            return False
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # "auto", a host name
        return False


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Ray nodes started inside stay on 127.0.0.1: ``init_ray("local")``, a test ``Cluster``.

    Ray binds the GCS, raylet, object manager, worker and agent servers on loopback when the
    node IP is 127.0.0.1, and on every interface otherwise. But ``ray.init`` replaces a
    127.0.0.1 node IP with this machine's outward address unless
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, and Ray reads that variable once, when ``ray`` is
    imported (``ray_constants.ENABLE_RAY_CLUSTER``): setting it in ``init_ray`` comes too
    late. This switches the flag off inside the block only, so that a later join of a real
    cluster from this process, which must find its node by its real IP, is as Ray has it.
    A node started without an IP (``ray.cluster_utils.Cluster``) takes 127.0.0.1 inside too.
    """
    saved = _ray_constants.ENABLE_RAY_CLUSTER
    _ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        _ray_constants.ENABLE_RAY_CLUSTER = saved


def registry_actor(*, create: bool = False) -> Any:
    """The RegistryActor handle (raises :class:`NotConnectedError` when it does not run)."""
    from ray_enterprise.registry.actor import get_registry_handle

    try:
        return get_registry_handle(create=create)
    except ValueError as exc:
        raise NotConnectedError(
            "no ray_enterprise registry runs on this Ray cluster; start one with "
            "`ray-enterprise up SPEC` or ray_enterprise.connect()"
        ) from exc


def connect(
    address: str | None = None, *, boot: bool = True, num_cpus: int | None = None
) -> System:
    """Reach (and with ``boot``, start when missing) the system actors."""
    from ray_enterprise.alerts.actor import get_alert_handle
    from ray_enterprise.alerts.manager_client import AlertManagerClient
    from ray_enterprise.config.actor import get_config_handle
    from ray_enterprise.config.client import ConfigOrchestrator
    from ray_enterprise.observability.platform import (
        EnterpriseObservabilityPlatform,
        get_observability_handle,
    )
    from ray_enterprise.registry.client import EnterpriseServiceRegistry

    init_ray(address, num_cpus=num_cpus)
    registry = EnterpriseServiceRegistry(registry_actor(create=boot))
    alerts: AlertManagerClient | None
    try:
        alerts = AlertManagerClient(get_alert_handle(create=boot))
    except ValueError:  # joined without boot, and nobody started it
        alerts = None
    try:
        config = ConfigOrchestrator(get_config_handle(create=boot))
    except ValueError:
        config = None
    try:
        platform: EnterpriseObservabilityPlatform | None = EnterpriseObservabilityPlatform(
            get_observability_handle(create=boot)
        )
    except NotConnectedError:
        platform = None
    return System(registry=registry, alerts=alerts, config=config, observability=platform)


def shutdown_system() -> None:
    """Stop every service, erase the control state and kill the system actors.

    Durable history (alerts, config versions, audit) stays in its database.
    """
    from ray_enterprise.alerts.actor import remove_alert_actor
    from ray_enterprise.anomaly.shard import remove_shards
    from ray_enterprise.config.actor import remove_config_actor
    from ray_enterprise.observability.central import clear_checkpoint

    try:
        handle = registry_actor()
    except NotConnectedError:
        handle = None
    if handle is not None:
        ray.get(handle.forget.remote())
        ray.kill(handle, no_restart=True)
    remove_alert_actor()
    # The observability actor first: it re-creates anomaly shards it finds missing.
    for name in ray.util.list_named_actors():
        if name == system_actors.OBSERVABILITY or name.startswith(system_actors.COLLECTOR_PREFIX):
            with contextlib.suppress(ValueError):
                ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
    clear_checkpoint()
    remove_shards()
    remove_config_actor()
