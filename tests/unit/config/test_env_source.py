from __future__ import annotations

import asyncio

from ray_enterprise.config.sources import (
    EnvironmentConfigSource,
    parse_env_value,
    parse_environment,
)


def test_values_are_json_else_the_text_as_written() -> None:
    assert parse_env_value("true") is True
    assert parse_env_value("42") == 42
    assert parse_env_value("0.5") == 0.5
    assert parse_env_value("null") is None
    assert parse_env_value("") == ""
    assert parse_env_value('["https://a.example", "https://b.example"]') == [
        "https://a.example",
        "https://b.example",
    ]
    assert parse_env_value("plain text: with colon") == "plain text: with colon"
    assert parse_env_value("{unclosed") == "{unclosed"


def test_no_yaml_1_1_surprises() -> None:
    assert parse_env_value("0123") == "0123"  # YAML 1.1: the octal 83
    assert parse_env_value("no") == "no"  # YAML 1.1: False
    assert parse_env_value("on") == "on"
    assert parse_env_value("1e3") == 1000.0  # JSON's own number
    assert parse_env_value("[a, b]") == "[a, b]"  # not JSON: the text


def test_the_pydantic_settings_spelling_reads_only_schema_sections() -> None:
    env = {
        "RAY_ENTERPRISE_CACHE__DEFAULT_TTL_SECONDS": "60",
        "RAY_ENTERPRISE_SECURITY__CORS_ORIGINS": '["https://ops.example.com"]',
        "RAY_ENTERPRISE_ENVIRONMENT": "staging",
        "RAY_ENTERPRISE_SERVICES__SEARCH__ZIP": "0123",
        "RAY_ENTERPRISE_DB_URL": "sqlite:///x.db",  # a settings variable, not a section
        "RAY_ENTERPRISE_HOME": "/tmp/x",
        "RAY_ENTERPRISE__CACHE__DEFAULT_TTL_SECONDS": "30",  # older spelling: loses to the new
        "RAY_ENTERPRISE__CACHE__ENABLED": "false",  # ... and still works alone
    }
    assert parse_environment(env) == {
        "cache": {"default_ttl_seconds": 60, "enabled": False},
        "security": {"cors_origins": ["https://ops.example.com"]},
        "environment": "staging",
        "services": {"search": {"zip": "0123"}},
    }


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
