"""Configuration sources, one per layer, sharing one vocabulary: ``load()``, ``watch()``,
``health()``.
"""

from __future__ import annotations

from ray_enterprise.config.sources.base import (
    ConfigSource,
    SourceHealth,
    SourceUpdate,
    describe_error,
)
from ray_enterprise.config.sources.db_source import DatabaseConfigSource
from ray_enterprise.config.sources.env_source import (
    ENV_PREFIX,
    EnvironmentConfigSource,
    parse_env_value,
    parse_environment,
)
from ray_enterprise.config.sources.file_source import FileConfigSource, parse_config_text
from ray_enterprise.config.sources.vault_source import (
    SERVICE_ACCOUNT_TOKEN,
    TokenLease,
    VaultConfigSource,
)

__all__ = [
    "ENV_PREFIX",
    "SERVICE_ACCOUNT_TOKEN",
    "ConfigSource",
    "DatabaseConfigSource",
    "EnvironmentConfigSource",
    "FileConfigSource",
    "SourceHealth",
    "SourceUpdate",
    "TokenLease",
    "VaultConfigSource",
    "describe_error",
    "parse_config_text",
    "parse_env_value",
    "parse_environment",
]
