"""Environment variables: the highest layer, for what an operator sets per process or pod.

``RAY_ENTERPRISE__SECURITY__API_KEYS_ENABLED=true`` sets ``security.api_keys_enabled`` to the
boolean ``True``: ``__`` separates levels, names are lower-cased, and values are read as YAML
scalars so numbers and booleans arrive typed (``[a, b]`` gives a list, for CORS origins).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Hashable, Mapping
from typing import Any

import yaml

from ray_enterprise.config.merge import deep_merge
from ray_enterprise.config.sources.base import Clock, ConfigSource

ENV_PREFIX = "RAY_ENTERPRISE__"


def parse_env_value(raw: str) -> Any:
    """A YAML scalar, or a flow list/map when it starts with ``[``/``{``; else the raw text.

    Block structure is not parsed: ``a: b`` in a variable is the text ``a: b``, not a mapping.
    """
    if raw.strip() == "":
        return raw  # an empty variable means the empty string, not YAML's null
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    if isinstance(value, (list, dict)) and not raw.lstrip().startswith(("[", "{")):
        return raw
    return value


def parse_environment(environ: Mapping[str, str], prefix: str = ENV_PREFIX) -> dict[str, Any]:
    """The nested document the prefixed variables of ``environ`` describe."""
    out: dict[str, Any] = {}
    for name in sorted(environ):
        if not name.startswith(prefix) or len(name) == len(prefix):
            continue
        parts = [p.lower() for p in name[len(prefix) :].split("__")]
        if any(not p for p in parts):
            continue  # "A____B" has an empty level: ignore rather than guess
        value: Any = parse_env_value(environ[name])
        for part in reversed(parts[1:]):
            value = {part: value}
        out = deep_merge(out, {parts[0]: value})
    return out


class EnvironmentConfigSource(ConfigSource):
    """Reads prefixed variables from ``environ`` (``os.environ`` by default)."""

    layer = "environment"

    def __init__(
        self,
        *,
        prefix: str = ENV_PREFIX,
        environ: Mapping[str, str] | None = None,
        poll_interval: float = 1.0,
        name: str = "environment",
        clock: Clock = time.time,
    ) -> None:
        super().__init__(name=name, poll_interval=poll_interval, clock=clock)
        self.prefix = prefix
        self._environ = os.environ if environ is None else environ

    async def _read(self) -> dict[str, Any]:
        return parse_environment(self._environ, self.prefix)

    async def _probe(self) -> Hashable:
        # A digest rather than the values themselves, so no secret is kept twice.
        digest = hashlib.sha256()
        for name in sorted(n for n in self._environ if n.startswith(self.prefix)):
            digest.update(f"{name}\0{self._environ[name]}\0".encode())
        return digest.hexdigest()
