"""Compliance rules: what an environment demands beyond a valid document.

The schema says what is well-formed; these rules say what is acceptable where. They are plain
data (a name, the field they judge, the environments they bind, a check) so that a report can
list every rule, passed or not, and a platform team can add its own without touching the schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ray_enterprise.config.errors import ComplianceError
from ray_enterprise.config.merge import MergedConfig
from ray_enterprise.config.schema import EnterpriseConfig, ServiceConfigRegistry, validate_config

Check = Callable[[EnterpriseConfig], "str | None"]


@dataclass(frozen=True)
class ComplianceRule:
    """A rule; ``check`` returns ``None`` when satisfied, else why not (never a secret value)."""

    name: str
    field: str
    description: str
    check: Check
    environments: frozenset[str] = frozenset({"production"})
    severity: str = "high"

    def applies_to(self, environment: str) -> bool:
        return environment in self.environments


@dataclass(frozen=True)
class RuleResult:
    rule: str
    passed: bool
    message: str
    field: str
    severity: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "passed": self.passed,
            "message": self.message,
            "field": self.field,
            "severity": self.severity,
        }


@dataclass(frozen=True)
class ComplianceReport:
    """Every applicable rule's outcome for one environment; a view, not a decision."""

    environment: str
    results: tuple[RuleResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "passed": self.passed,
            "results": [r.to_dict() for r in self.results],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def raise_for_failures(self, merged: MergedConfig | None = None) -> None:
        """Raise :class:`ComplianceError` naming each failed rule, its field and its source."""
        if not self.passed:
            raise ComplianceError(
                self.environment,
                [
                    (r.rule, r.field, r.message, merged.source_of(r.field) if merged else None)
                    for r in self.failures
                ],
            )

    def __str__(self) -> str:
        if not self.results:
            return f"environment {self.environment}: no compliance rules apply"
        width = max(len(r.rule) for r in self.results)
        lines = [f"compliance for environment {self.environment}:"]
        for r in self.results:
            mark = "PASS" if r.passed else "FAIL"
            lines.append(f"  {mark}  {r.rule:<{width}}  {r.field}: {r.message}")
        failed = len(self.failures)
        lines.append(f"{len(self.results) - failed} passed, {failed} failed")
        return "\n".join(lines)


def _require(condition: bool, message: str) -> str | None:
    return None if condition else message


DEFAULT_RULES: tuple[ComplianceRule, ...] = (
    ComplianceRule(
        "api-keys-required",
        "security.api_keys_enabled",
        "every call to the management API carries an API key",
        lambda c: _require(c.security.api_keys_enabled, "API keys must be enabled"),
    ),
    ComplianceRule(
        "no-wildcard-cors",
        "security.cors_origins",
        "browsers may call only from named origins",
        lambda c: _require(
            not any(o.strip() == "*" for o in c.security.cors_origins),
            "CORS origins must be listed explicitly, not '*'",
        ),
    ),
    ComplianceRule(
        "audit-enabled",
        "security.audit_enabled",
        "an audit trail is kept",
        lambda c: _require(c.security.audit_enabled, "audit must be enabled"),
    ),
    ComplianceRule(
        "audit-retention",
        "security.audit_retention_days",
        "audit records are kept at least 30 days",
        lambda c: _require(
            c.security.audit_retention_days >= 30,
            f"retention is {c.security.audit_retention_days} days; at least 30 required",
        ),
    ),
    ComplianceRule(
        "rate-limits-enabled",
        "security.rate_limit.enabled",
        "callers are rate limited",
        lambda c: _require(c.security.rate_limit.enabled, "rate limiting must be enabled"),
    ),
    ComplianceRule(
        "auto-rollback",
        "deployment.rollback.auto_rollback",
        "a failing deployment rolls back by itself",
        lambda c: _require(c.deployment.rollback.auto_rollback, "auto rollback must be on"),
        environments=frozenset({"staging", "production"}),
        severity="medium",
    ),
    ComplianceRule(
        "alerting-enabled",
        "observability.alerting.enabled",
        "someone is told when things break (false routes every alert to nobody)",
        lambda c: _require(
            c.observability.alerting.enabled,
            "alerting must be enabled: with it off the alert actor notifies no receiver",
        ),
        environments=frozenset({"staging", "production"}),
    ),
)


def check_compliance(
    config: EnterpriseConfig, rules: Iterable[ComplianceRule] = DEFAULT_RULES
) -> ComplianceReport:
    """Run the rules that bind ``config.environment``; a rule that crashes counts as failed."""
    results = []
    for rule in rules:
        if not rule.applies_to(config.environment):
            continue
        try:
            problem = rule.check(config)
        except Exception as exc:  # a broken custom rule must not pass silently
            problem = f"rule could not be evaluated ({type(exc).__name__})"
        results.append(
            RuleResult(
                rule=rule.name,
                passed=problem is None,
                message=problem or rule.description,
                field=rule.field,
                severity=rule.severity,
            )
        )
    return ComplianceReport(environment=config.environment, results=tuple(results))


def admit(
    merged: MergedConfig,
    *,
    services: ServiceConfigRegistry | None = None,
    rules: Iterable[ComplianceRule] = DEFAULT_RULES,
) -> tuple[EnterpriseConfig, ComplianceReport]:
    """The gate before a document is applied: schema first, then the environment's rules.

    Raises :class:`ConfigValidationError` or :class:`ComplianceError`, each naming field and
    source; on success the caller swaps the whole config in at once, never a part of it.
    """
    config = validate_config(merged.document, merged=merged, services=services)
    report = check_compliance(config, rules)
    report.raise_for_failures(merged)
    return config, report
