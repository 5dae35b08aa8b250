from __future__ import annotations

import json
from typing import Any

import pytest

from ray_enterprise.config.compliance import (
    DEFAULT_RULES,
    ComplianceRule,
    admit,
    check_compliance,
)
from ray_enterprise.config.errors import ComplianceError, ConfigValidationError
from ray_enterprise.config.merge import merge_layers
from ray_enterprise.config.schema import EnterpriseConfig, default_document, validate_config

GOOD_PRODUCTION: dict[str, Any] = {
    "environment": "production",
    "security": {
        "api_keys_enabled": True,
        "cors_origins": ["https://app.example.com"],
        "audit_enabled": True,
        "audit_retention_days": 90,
    },
}


def test_development_defaults_have_no_binding_rules() -> None:
    report = check_compliance(EnterpriseConfig())
    assert report.passed and report.results == ()
    assert "no compliance rules apply" in str(report)


def test_production_defaults_fail_with_rule_field_and_message() -> None:
    report = check_compliance(EnterpriseConfig(environment="production"))
    failed = {r.rule: r for r in report.failures}
    assert {"api-keys-required"} <= failed.keys()
    assert failed["api-keys-required"].field == "security.api_keys_enabled"
    assert not report.passed


def test_a_compliant_production_config_passes_every_rule() -> None:
    report = check_compliance(validate_config(GOOD_PRODUCTION))
    assert report.passed, str(report)
    assert len(report.results) == len(DEFAULT_RULES)


@pytest.mark.parametrize(
    ("override", "rule"),
    [
        ({"api_keys_enabled": False}, "api-keys-required"),
        ({"cors_origins": ["https://a.example", " * "]}, "no-wildcard-cors"),
        ({"audit_enabled": False}, "audit-enabled"),
        ({"audit_retention_days": 29}, "audit-retention"),
        ({"rate_limit": {"enabled": False}}, "rate-limits-enabled"),
    ],
)
def test_each_production_rule_catches_its_violation(override: dict, rule: str) -> None:
    doc = {**GOOD_PRODUCTION, "security": {**GOOD_PRODUCTION["security"], **override}}
    report = check_compliance(validate_config(doc))
    assert [r.rule for r in report.failures] == [rule]


def test_report_renders_as_text_and_json_and_raises_naming_the_field() -> None:
    report = check_compliance(
        validate_config(
            {
                **GOOD_PRODUCTION,
                "environment": "production",
                "security": {"audit_retention_days": 7},
            }
        )
    )
    data = json.loads(report.to_json())
    assert data["environment"] == "production" and data["passed"] is False
    assert {"rule", "passed", "message", "field", "severity"} == set(data["results"][0])
    text = str(report)
    assert "FAIL  audit-retention" in text and "retention is 7 days" in text
    with pytest.raises(ComplianceError) as info:
        report.raise_for_failures()
    assert info.value.environment == "production"
    assert "security.audit_retention_days" in str(info.value)


def test_staging_binds_only_staging_rules() -> None:
    report = check_compliance(EnterpriseConfig(environment="staging"))
    assert {r.rule for r in report.results} == {"auto-rollback", "alerting-enabled"}
    assert report.passed


def test_a_crashing_custom_rule_counts_as_failed() -> None:
    def boom(_config: EnterpriseConfig) -> str | None:
        raise RuntimeError("bug")

    rule = ComplianceRule(
        "custom", "x", "custom rule", boom, environments=frozenset({"development"})
    )
    report = check_compliance(EnterpriseConfig(), [rule])
    assert not report.passed
    assert "RuntimeError" in report.failures[0].message


def test_admit_rejects_a_noncompliant_change_naming_field_and_source() -> None:
    merged = merge_layers(
        [
            ("defaults", default_document()),
            ("vault", GOOD_PRODUCTION),
            ("environment", {"security": {"cors_origins": ["*"]}}),
        ]
    )
    with pytest.raises(ComplianceError) as info:
        admit(merged)
    assert (info.value.field, info.value.source) == ("security.cors_origins", "environment")
    assert "no-wildcard-cors (security.cors_origins, set by environment)" in str(info.value)


def test_admit_returns_config_and_report_when_all_is_well() -> None:
    merged = merge_layers([("defaults", default_document()), ("files", GOOD_PRODUCTION)])
    config, report = admit(merged)
    assert config.environment == "production" and report.passed


def test_admit_reports_schema_errors_before_rules() -> None:
    merged = merge_layers([("files", {"environment": "production", "cache": {"x": 1}})])
    with pytest.raises(ConfigValidationError, match=r"cache.x: unknown key.*set by files"):
        admit(merged)
