"""Actors the ConfigActor tests push to: a Service that records ``on_config``, a plain one.

Importable by module path (``tests.integration.config.config_services``) so the registry can
start the service in its own worker process.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ray_enterprise.service import Service

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
