"""Multi-source, validated, versioned configuration.

The pure core lives here and needs no Ray: sources (``load``/``watch``/``health``), merging in
layer order with provenance, the schema and compliance gate, diffs and redaction, and the
durable version history. The ConfigActor holds these objects and only does I/O and scheduling.

The Ray side lives in its own modules, outside this list so the core stays testable alone:
``config.actor`` (ConfigActor, ``get_config_handle``), ``config.client`` (ConfigOrchestrator,
``load_enterprise_configuration``, ``start_configuration_watching``) and ``config.cli``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: Name -> its module, imported on first use: `ray-enterprise --help` and a service worker
#: load this package for one submodule and must not pay for SQLAlchemy, pydantic and hvac.
_LAZY: dict[str, str] = {
    "Applied": "ray_enterprise.config.applier",
    "ConfigApplier": "ray_enterprise.config.applier",
    "DEFAULT_RULES": "ray_enterprise.config.compliance",
    "ComplianceReport": "ray_enterprise.config.compliance",
    "ComplianceRule": "ray_enterprise.config.compliance",
    "RuleResult": "ray_enterprise.config.compliance",
    "admit": "ray_enterprise.config.compliance",
    "check_compliance": "ray_enterprise.config.compliance",
    "ComplianceError": "ray_enterprise.config.errors",
    "ConfigError": "ray_enterprise.config.errors",
    "ConfigParseError": "ray_enterprise.config.errors",
    "ConfigSourceError": "ray_enterprise.config.errors",
    "ConfigValidationError": "ray_enterprise.config.errors",
    "ConfigVersionNotFoundError": "ray_enterprise.config.errors",
    "ConfigEvent": "ray_enterprise.config.events",
    "EventLog": "ray_enterprise.config.events",
    "Rejection": "ray_enterprise.config.events",
    "Fanout": "ray_enterprise.config.fanout",
    "SubscriberGone": "ray_enterprise.config.fanout",
    "Subscription": "ray_enterprise.config.fanout",
    "ConfigHistory": "ray_enterprise.config.history",
    "VersionRecord": "ray_enterprise.config.history",
    "LAYER_ORDER": "ray_enterprise.config.merge",
    "REDACTED": "ray_enterprise.config.merge",
    "Change": "ray_enterprise.config.merge",
    "ConfigDiff": "ray_enterprise.config.merge",
    "MergedConfig": "ray_enterprise.config.merge",
    "deep_merge": "ray_enterprise.config.merge",
    "diff_documents": "ray_enterprise.config.merge",
    "merge_layers": "ray_enterprise.config.merge",
    "redact": "ray_enterprise.config.merge",
    "restore_secrets": "ray_enterprise.config.merge",
    "section_of": "ray_enterprise.config.merge",
    "DeploymentFrameworkConfig": "ray_enterprise.config.schema",
    "EnterpriseCacheConfig": "ray_enterprise.config.schema",
    "EnterpriseConfig": "ray_enterprise.config.schema",
    "EnterpriseSearchConfig": "ray_enterprise.config.schema",
    "ObservabilityFrameworkConfig": "ray_enterprise.config.schema",
    "SecurityFrameworkConfig": "ray_enterprise.config.schema",
    "ServiceConfigRegistry": "ray_enterprise.config.schema",
    "default_document": "ray_enterprise.config.schema",
    "validate_config": "ray_enterprise.config.schema",
    "ConfigSettings": "ray_enterprise.config.settings",
    "VaultSettings": "ray_enterprise.config.settings",
    "ConfigSource": "ray_enterprise.config.sources",
    "DatabaseConfigSource": "ray_enterprise.config.sources",
    "EnvironmentConfigSource": "ray_enterprise.config.sources",
    "FileConfigSource": "ray_enterprise.config.sources",
    "SourceHealth": "ray_enterprise.config.sources",
    "SourceUpdate": "ray_enterprise.config.sources",
    "VaultConfigSource": "ray_enterprise.config.sources",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


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
