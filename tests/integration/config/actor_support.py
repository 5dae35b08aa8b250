"""Running one ConfigActor per test on the session's Ray, and waiting on what it does.

Kept beside config_backends.py under its own name so tests import it directly. The actor is
named ``config`` cluster-wide, so each test gets a fresh one and removes it (and the state it
kept in the key-value store) afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import ray

from ray_enterprise.config.actor import (
    ACTOR_NAME,
    get_config_handle,
    remove_config_actor,
)
from ray_enterprise.config.settings import ConfigSettings

T = TypeVar("T")


def eventually(probe: Callable[[], T], timeout: float = 10.0, what: str = "") -> T:
    """Poll ``probe`` until it returns something truthy, failing with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last = probe()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}: last={last!r}")
        time.sleep(0.02)
        last = probe()
    return last


def config_actor_names() -> list[str]:
    return [n for n in ray.util.list_named_actors() if n == ACTOR_NAME]


@contextmanager
def config_actor(settings: ConfigSettings, env_vars: dict[str, str] | None = None) -> Iterator[Any]:
    """A fresh ConfigActor with ``settings``; removed with its key-value state afterwards."""
    remove_config_actor()
    handle = get_config_handle(create=True, settings=settings, env_vars=env_vars)
    try:
        yield handle
    finally:
        remove_config_actor()


def section_value(handle: Any, path: str) -> Any:
    """A dotted value of the running config, read through the actor (redacted view)."""
    node: Any = ray.get(handle.show.remote())["value"]
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node
