"""The design summary's calls, as written there, against a running ConfigActor."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from actor_support import config_actor

from ray_enterprise.config import client
from ray_enterprise.config.client import (
    load_enterprise_configuration,
    start_configuration_watching,
)
from ray_enterprise.config.schema import EnterpriseConfig
from ray_enterprise.config.settings import ConfigSettings


@pytest.fixture
def fresh_orchestrator() -> Iterator[None]:
    """The process-wide orchestrator must not outlive the ConfigActor it found."""
    client._default = None
    yield
    client._default = None


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_load_watch_and_a_cache_change_handler(
    ray_session: None, tmp_path: Path, fresh_orchestrator: None
) -> None:
    settings = ConfigSettings(database_url=f"sqlite:///{tmp_path / 's.db'}")
    seen: list[tuple[float, int]] = []

    async def handle_cache_config_change(section: str, value: Any, version: int) -> None:
        seen.append((value.default_ttl_seconds, version))

    async def main() -> None:
        config = await load_enterprise_configuration()
        assert isinstance(config, EnterpriseConfig) and config.cache.default_ttl_seconds == 300
        orchestrator = await start_configuration_watching()
        orchestrator.add_change_handler("cache", handle_cache_config_change)
        try:
            await until(lambda: orchestrator.applied_version("cache") == 1)
            assert await orchestrator.set("cache.default_ttl_seconds", 7) == 2
            await until(lambda: seen == [(7.0, 2)])
            assert (await load_enterprise_configuration()).cache.default_ttl_seconds == 7
        finally:
            await orchestrator.stop_watching()
        with pytest.raises(KeyError, match="no config section 'cahce'"):
            orchestrator.add_change_handler("cahce", handle_cache_config_change)

    with config_actor(settings):
        asyncio.run(main())
