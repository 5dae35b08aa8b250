from __future__ import annotations

import asyncio

from ray_enterprise.config.sources import (
    EnvironmentConfigSource,
    parse_env_value,
    parse_environment,
)


def test_values_are_yaml_scalars() -> None:
    assert parse_env_value("true") is True
    assert parse_env_value("42") == 42
    assert parse_env_value("0.5") == 0.5
    assert parse_env_value("null") is None
    assert parse_env_value("") == ""
    assert parse_env_value("[https://a.example, https://b.example]") == [
        "https://a.example",
        "https://b.example",
    ]
    assert parse_env_value("plain text: with colon") == "plain text: with colon"
    assert parse_env_value("{unclosed") == "{unclosed"


def test_double_underscore_nests_and_names_are_lowercased() -> None:
    env = {
        "RAY_ENTERPRISE__SECURITY__API_KEYS_ENABLED": "true",
        "RAY_ENTERPRISE__SECURITY__RATE_LIMIT__BURST": "7",
        "RAY_ENTERPRISE__ENVIRONMENT": "production",
        "RAY_ENTERPRISE_DB_URL": "sqlite:///x.db",  # single underscore: not config
        "RAY_ENTERPRISE__": "ignored",
        "RAY_ENTERPRISE__A____B": "ignored",
        "HOME": "/root",
    }
    assert parse_environment(env) == {
        "security": {"api_keys_enabled": True, "rate_limit": {"burst": 7}},
        "environment": "production",
    }


def test_load_and_watch_see_a_changed_variable() -> None:
    env = {"RAY_ENTERPRISE__CACHE__ENABLED": "false"}
    source = EnvironmentConfigSource(environ=env, poll_interval=0.01, clock=lambda: 5.0)

    async def run() -> None:
        assert await source.load() == {"cache": {"enabled": False}}
        assert source.health().ok and source.health().last_success_at == 5.0
        env["RAY_ENTERPRISE__CACHE__ENABLED"] = "true"
        updates = source.watch()
        update = await asyncio.wait_for(updates.__anext__(), 2.0)
        assert update.values_changed and update.values == {"cache": {"enabled": True}}
        assert update.layer == "environment"
        await updates.aclose()

    asyncio.run(run())
