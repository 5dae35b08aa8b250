"""Environment variables: the highest layer, for what an operator sets per process or pod.

``RAY_ENTERPRISE_SECURITY__API_KEYS_ENABLED=true`` sets ``security.api_keys_enabled`` to the
boolean ``True``: pydantic-settings' spelling (the prefix, then the section, ``__`` between
levels), read only for the sections the schema has, so ``RAY_ENTERPRISE_DB_URL`` and the other
settings variables are never taken for config. The older ``RAY_ENTERPRISE__SECURITY__...``
still works; when both name one key, the documented spelling wins.

A value is JSON when it parses as JSON (``60``, ``true``, ``null``, ``["https://a"]``), else the
text as written. Never YAML 1.1: it read ``0123`` as the octal 83 and ``no`` as ``False``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Collection, Hashable, Mapping
from typing import Any

from ray_enterprise.config.merge import deep_merge
from ray_enterprise.config.sources.base import Clock, ConfigSource

#: The older spelling's prefix; the documented one drops the second underscore.
ENV_PREFIX = "RAY_ENTERPRISE__"


def parse_env_value(raw: str) -> Any:
    """JSON when the text is JSON, else the text itself (an empty variable is ``""``)."""
    if raw.strip() == "":
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _sections() -> frozenset[str]:
    from ray_enterprise.config.schema import EnterpriseConfig

    return frozenset(EnterpriseConfig.model_fields)


def parse_environment(
    environ: Mapping[str, str],
    prefix: str = ENV_PREFIX,
    *,
    sections: Collection[str] | None = None,
) -> dict[str, Any]:
    """The nested document the prefixed variables of ``environ`` describe (both spellings)."""
    short = prefix.rstrip("_") + "_"  # RAY_ENTERPRISE__ -> RAY_ENTERPRISE_
    known = _sections() if sections is None else sections
    older: dict[str, Any] = {}
    documented: dict[str, Any] = {}
    for name in sorted(environ):
        if name.startswith(prefix):
            parts = [p.lower() for p in name[len(prefix) :].split("__")]
            target = older
        elif name.startswith(short) and short != prefix:
            parts = [p.lower() for p in name[len(short) :].split("__")]
            if parts[0] not in known:
                continue  # a settings variable (RAY_ENTERPRISE_DB_URL), not config
            target = documented
        else:
            continue
        if any(not p for p in parts):
            continue  # "A____B" has an empty level: ignore rather than guess
        value: Any = parse_env_value(environ[name])
        for part in reversed(parts[1:]):
            value = {part: value}
        merged = deep_merge(target, {parts[0]: value})
        target.clear()
        target.update(merged)
    return deep_merge(older, documented)


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
        short = self.prefix.rstrip("_") + "_"
        for name in sorted(n for n in self._environ if n.startswith(short)):
            digest.update(f"{name}\0{self._environ[name]}\0".encode())
        return digest.hexdigest()
