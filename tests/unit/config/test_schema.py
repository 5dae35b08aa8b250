from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, SecretStr

from ray_enterprise.config.errors import ConfigValidationError
from ray_enterprise.config.merge import merge_layers, redact
from ray_enterprise.config.schema import (
    REMOVED,
    EnterpriseConfig,
    ServiceConfigRegistry,
    default_document,
    validate_config,
)

PLANTED = "planted-secret-7c1e"


class SearchApiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    replicas: int = 1
    token: SecretStr | None = None


def test_defaults_validate_and_run_on_a_laptop() -> None:
    config = validate_config(default_document())
    assert config == EnterpriseConfig()
    assert config.environment == "development"
    assert {t.backend for t in config.cache.tiers.values()} <= {"memory", "disk"}
    assert config.search.index_name == "doc"
    assert config.security.jwt_secret is None


def test_unknown_key_is_rejected_naming_field_source_and_suggestion() -> None:
    merged = merge_layers(
        [("defaults", default_document()), ("file:app.yaml", {"security": {"cors_origin": ["x"]}})]
    )
    with pytest.raises(ConfigValidationError) as info:
        validate_config(merged.document, merged=merged)
    err = info.value
    assert (err.field, err.source) == ("security.cors_origin", "file:app.yaml")
    assert "did you mean 'cors_origins'" in str(err)


def test_unknown_key_inside_a_keyed_section_gets_a_suggestion() -> None:
    doc = {"cache": {"tiers": {"l1": {"max_itemz": 5}}}}
    with pytest.raises(ConfigValidationError, match="did you mean 'max_items'"):
        validate_config(doc)


def test_unknown_top_level_section_lists_the_allowed_ones() -> None:
    with pytest.raises(ConfigValidationError, match="allowed: environment, cache"):
        validate_config({"zzz": {}})


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"environment": "prod"}, "environment"),
        ({"search": {"default_limit": 500}}, "search"),
        ({"search": {"index_name": "a/b"}}, "search.index_name"),
        ({"cache": {"tiers": {"l3": {"backend": "redis"}}}}, "cache.tiers.l3"),
        ({"cache": {"tiers": {"a": {"level": 1}, "b": {"level": 1}}}}, "cache"),
        ({"deployment": {"route_ttl_seconds": 0}}, "deployment.route_ttl_seconds"),
        ({"deployment": {"rollback": {"min_calls": 0}}}, "deployment.rollback.min_calls"),
        ({"observability": {"flush_interval_seconds": 0}}, "observability.flush_interval_seconds"),
    ],
)
def test_invalid_values_name_the_field(doc: dict, field: str) -> None:
    with pytest.raises(ConfigValidationError) as info:
        validate_config(doc)
    assert info.value.field == field


@pytest.mark.parametrize("path", sorted(REMOVED))
def test_a_removed_setting_is_refused_saying_why_it_went(path: str) -> None:
    section, key = path.split(".")
    with pytest.raises(ConfigValidationError) as info:
        validate_config({section: {key: True}})
    assert info.value.field == path
    assert "removed setting: " in str(info.value)
    assert REMOVED[path] in str(info.value)


def test_errors_never_echo_the_input_value() -> None:
    doc = {"security": {"audit_retention_days": PLANTED, "jwt_secret": 12}}
    with pytest.raises(ConfigValidationError) as info:
        validate_config(doc)
    assert PLANTED not in str(info.value)
    assert PLANTED not in repr(info.value.problems)


def test_service_sections_are_validated_by_their_registered_model() -> None:
    services = ServiceConfigRegistry()
    services.register("search_api", SearchApiConfig)
    doc = {"services": {"search_api": {"replicas": "3", "token": PLANTED}, "other": {"k": 1}}}
    config = validate_config(doc, services=services)
    section = config.section("services.search_api")
    assert section["replicas"] == 3
    assert isinstance(section["token"], SecretStr)
    assert PLANTED not in str(config) and PLANTED not in repr(config)
    assert config.section("services.other") == {"k": 1}
    parsed = services.parse("search_api", section)
    assert isinstance(parsed, SearchApiConfig) and parsed.replicas == 3


def test_service_model_errors_carry_the_service_path_and_source() -> None:
    services = ServiceConfigRegistry()
    services.register("search_api", SearchApiConfig)
    merged = merge_layers([("database", {"services": {"search_api": {"replicaz": 2}}})])
    with pytest.raises(ConfigValidationError) as info:
        validate_config(merged.document, merged=merged, services=services)
    assert info.value.field == "services.search_api.replicaz"
    assert info.value.source == "database"


class NeedsHost(BaseModel):
    host: str


def test_a_typed_section_set_nowhere_is_its_models_defaults() -> None:
    services = ServiceConfigRegistry()
    services.register("search_api", SearchApiConfig)
    services.register("needs_host", NeedsHost)  # no defaults to give: stays unset
    config = validate_config(default_document(), services=services)
    assert config.section("services.search_api") == {"replicas": 1, "token": None}
    assert config.section("services.needs_host") == {}


def test_unregistered_services_pass_through_and_unregister_works() -> None:
    services = ServiceConfigRegistry()
    services.register("a", SearchApiConfig)
    assert "a" in services
    services.unregister("a")
    assert validate_config({"services": {"a": {"anything": 1}}}, services=services).services


def test_secrets_are_secretstr_and_masked_in_dumps() -> None:
    config = validate_config(
        {"security": {"jwt_secret": PLANTED}, "cache": {"tiers": {"l1": {"password": PLANTED}}}}
    )
    assert isinstance(config.security.jwt_secret, SecretStr)
    assert PLANTED not in config.model_dump_json()
    assert PLANTED not in str(redact(config.model_dump()))


def test_section_lookup_rejects_unknown_names() -> None:
    config = EnterpriseConfig()
    assert config.section("cache") is config.cache
    with pytest.raises(KeyError):
        config.section("nope")
