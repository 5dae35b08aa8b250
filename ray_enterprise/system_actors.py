"""How every system actor (registry, config, observability, alerts, ...) is created and found.

They share one life: named in the ``ray_enterprise`` namespace, detached (owned by no driver),
restarted by Ray forever with callers' calls retried across the restart, placed on the head
node (which goes down only with the whole cluster, or, with GCS fault tolerance, until a new
head on the same Redis starts, where Ray restarts them), and rebuilding their state in their
constructors. One function keeps those choices in one place, and every system actor's name
is spelled here once: the modules that create, find or kill one import its name from here.
"""

from __future__ import annotations

import time
from typing import Any

from ray_enterprise import _kv
from ray_enterprise.errors import RayEnterpriseError

NAMESPACE = _kv.NAMESPACE

# The names of the system actors in NAMESPACE. Alerts label a system actor's restart with
# its name, so these are also what an operator sees in SystemActorRestarted.
REGISTRY = "registry"
CONFIG = "config"
ALERTS = "alertmanager"
OBSERVABILITY = "observability"  # the central observability actor
COLLECTOR_PREFIX = "observability_collector:"  # + node id: one collector per node
ANOMALY_SHARD_PREFIX = "anomaly:"  # + shard index
RATE_LIMITER = "ratelimiter"
# Service actors are not system actors, but share the namespace: ``svc:<service>:<gen>``.
SERVICE_PREFIX = "svc:"

HEAD_RESOURCE = {"node:__internal_head__": 0.001}


def system_actor_options(name: str, *, on_head: bool = True, **extra: Any) -> dict[str, Any]:
    """Ray actor options of a system actor; ``extra`` overrides or adds options."""
    options: dict[str, Any] = {
        "name": name,
        "namespace": NAMESPACE,
        "lifetime": "detached",
        "max_restarts": -1,
        "max_task_retries": -1,
        "max_concurrency": 1000,
        "num_cpus": 0,
        "get_if_exists": True,
    }
    if on_head:
        options["resources"] = dict(HEAD_RESOURCE)
    options.update(extra)
    return options


def get_system_actor(
    name: str,
    actor_class: type | None = None,
    *,
    create: bool,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    ready_method: str = "ping",
    timeout_s: float = 60.0,
    **options: Any,
) -> Any:
    """The named system actor's handle; created (and waited for) when ``create`` and missing.

    Raises ``ValueError`` when it does not exist and ``create`` is false.
    """
    import ray  # here, not above: the names alone must not cost a Ray import
    from ray.exceptions import GetTimeoutError

    try:
        return ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        if not create or actor_class is None:
            raise
    remote: Any = ray.remote(actor_class)
    handle = remote.options(**system_actor_options(name, **options)).remote(*args, **(kwargs or {}))
    try:
        ray.get(getattr(handle, ready_method).remote(), timeout=timeout_s)
    except GetTimeoutError as exc:
        raise RayEnterpriseError(
            f"the {name} actor did not come up within {timeout_s:g} s; see its log under "
            "the Ray session's logs directory"
        ) from exc
    return handle


def kill_system_actor(name: str, timeout_s: float = 20.0) -> Any:
    """Kill the named system actor for good and wait until its name is free (``ray.kill`` is
    asynchronous), so the next ``get_system_actor(create=True)`` makes a new one; returns the
    killed handle, or ``None`` when none ran."""
    import ray

    try:
        handle = ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        return None
    ray.kill(handle, no_restart=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            break
        time.sleep(0.02)
    return handle
