"""Multi-source, validated, versioned configuration.

The pure core lives here and needs no Ray: sources (``load``/``watch``/``health``), merging in
layer order with provenance, the schema and compliance gate, diffs and redaction, and the
durable version history. The ConfigActor holds these objects and only does I/O and scheduling.

The Ray side lives in its own modules, outside this list so the core stays testable alone:
``config.actor`` (ConfigActor, ``get_config_handle``), ``config.client`` (ConfigOrchestrator,
``load_enterprise_configuration``, ``start_configuration_watching``) and ``config.cli``.
"""

from __future__ import annotations

from ray_enterprise.config.applier import Applied, ConfigApplier
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
from ray_enterprise.config.events import ConfigEvent, EventLog, Rejection
from ray_enterprise.config.fanout import Fanout, SubscriberGone, Subscription
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
from ray_enterprise.config.settings import ConfigSettings, VaultSettings
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
    "Applied",
    "Change",
    "ComplianceError",
    "ComplianceReport",
    "ComplianceRule",
    "ConfigApplier",
    "ConfigDiff",
    "ConfigError",
    "ConfigEvent",
    "ConfigHistory",
    "ConfigParseError",
    "ConfigSettings",
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
    "EventLog",
    "Fanout",
    "FileConfigSource",
    "MergedConfig",
    "ObservabilityFrameworkConfig",
    "Rejection",
    "RuleResult",
    "SecurityFrameworkConfig",
    "ServiceConfigRegistry",
    "SourceHealth",
    "SourceUpdate",
    "SubscriberGone",
    "Subscription",
    "VaultConfigSource",
    "VaultSettings",
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
