"""Multi-source, validated, versioned configuration.

The pure core lives here and needs no Ray: sources (``load``/``watch``/``health``), merging in
layer order with provenance, the schema and compliance gate, diffs and redaction, and the
durable version history. The ConfigActor holds these objects and only does I/O and scheduling.
"""

from __future__ import annotations

from ray_enterprise.config.compliance import (
    DEFAULT_RULES,
    ComplianceReport,
    ComplianceRule,
    RuleResult,
    admit,
    check_compliance,
)
from ray_enterprise.config.errors import (
    ComplianceError,
    ConfigError,
    ConfigParseError,
    ConfigSourceError,
    ConfigValidationError,
    ConfigVersionNotFoundError,
)
from ray_enterprise.config.history import ConfigHistory, VersionRecord
from ray_enterprise.config.merge import (
    LAYER_ORDER,
    REDACTED,
    Change,
    ConfigDiff,
    MergedConfig,
    deep_merge,
    diff_documents,
    merge_layers,
    redact,
    restore_secrets,
    section_of,
)
from ray_enterprise.config.schema import (
    DeploymentFrameworkConfig,
    EnterpriseCacheConfig,
    EnterpriseConfig,
    EnterpriseSearchConfig,
    ObservabilityFrameworkConfig,
    SecurityFrameworkConfig,
    ServiceConfigRegistry,
    default_document,
    validate_config,
)
from ray_enterprise.config.sources import (
    ConfigSource,
    DatabaseConfigSource,
    EnvironmentConfigSource,
    FileConfigSource,
    SourceHealth,
    SourceUpdate,
    VaultConfigSource,
)

__all__ = [
    "DEFAULT_RULES",
    "LAYER_ORDER",
    "REDACTED",
    "Change",
    "ComplianceError",
    "ComplianceReport",
    "ComplianceRule",
    "ConfigDiff",
    "ConfigError",
    "ConfigHistory",
    "ConfigParseError",
    "ConfigSource",
    "ConfigSourceError",
    "ConfigValidationError",
    "ConfigVersionNotFoundError",
    "DatabaseConfigSource",
    "DeploymentFrameworkConfig",
    "EnterpriseCacheConfig",
    "EnterpriseConfig",
    "EnterpriseSearchConfig",
    "EnvironmentConfigSource",
    "FileConfigSource",
    "MergedConfig",
    "ObservabilityFrameworkConfig",
    "RuleResult",
    "SecurityFrameworkConfig",
    "ServiceConfigRegistry",
    "SourceHealth",
    "SourceUpdate",
    "VaultConfigSource",
    "VersionRecord",
    "admit",
    "check_compliance",
    "deep_merge",
    "default_document",
    "diff_documents",
    "merge_layers",
    "redact",
    "restore_secrets",
    "section_of",
    "validate_config",
]
