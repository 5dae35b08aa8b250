"""Actors the ConfigActor tests push to: a Service that records ``on_config``, a plain one.

Importable by module path (``tests.integration.config.config_services``) so the registry can
start the service in its own worker process.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ray_enterprise.service import Health, Service

RECORDER = "tests.integration.config.config_services:ConfigRecorder"
TYPED = "tests.integration.config.config_services:TypedRecorder"


class ConfigRecorder(Service):
    """Remembers every ``on_config`` call, in the order it ran."""

    async def start(self) -> None:
        self.seen: list[tuple[str, Any, int]] = []

    async def on_config(self, section: str, value: Any, version: int) -> None:
        self.seen.append((section, value, version))

    async def calls(self) -> list[tuple[str, Any, int]]:
        return list(self.seen)


class PlainSubscriber:
    """Any actor can subscribe by name: it only needs a method taking (section, value, version)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any, int]] = []

    def apply(self, section: str, value: Any, version: int) -> None:
        self.seen.append((section, value, version))

    def calls(self) -> list[tuple[str, Any, int]]:
        return list(self.seen)


class IndexerConfig(BaseModel):
    """The indexer's own section: ``services.indexer`` in any config source."""

    batch_size: int = Field(100, gt=0)
    language: str = "en"


class TypedRecorder(ConfigRecorder):
    """A ConfigRecorder whose section is validated by its own model."""

    config_model = IndexerConfig


LEAKY = "tests.integration.config.config_services:LeakyService"
#: What LeakyService's health detail carries; no output may show it.
LEAKED = "planted-health-pw-3c8e"


class LeakyService(Service):
    """Healthy once (so it starts), then failing with a detail that carries a DSN password."""

    async def start(self) -> None:
        self.checks = 0

    async def check_health(self) -> Health:
        self.checks += 1
        if self.checks == 1:
            return Health(True, "")
        return Health(
            False, f"cannot reach postgresql://app:{LEAKED}@db:5432/app?api_token={LEAKED}"
        )
