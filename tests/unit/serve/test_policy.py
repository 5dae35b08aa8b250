"""What the security section means for the API: CORS options, per-route limits, validation."""

from __future__ import annotations

import pytest

from ray_enterprise.config.errors import ConfigValidationError
from ray_enterprise.config.schema import SecurityFrameworkConfig, validate_config
from ray_enterprise.security.ratelimit import RateLimit
from ray_enterprise.serve.policy import cors_options, route_limits

ROUTES = ["/status", "/alerts/{alert_id}/ack"]


def test_cors_options_carry_the_section_and_expose_retry_after() -> None:
    security = SecurityFrameworkConfig(
        cors_origins=[" https://ops.example.com "],
        cors_allow_methods=["get", "post"],
        cors_allow_headers=["Authorization"],
        cors_max_age_seconds=30,
    )
    options = cors_options(security)
    assert options["allow_origins"] == ["https://ops.example.com"]
    assert options["allow_methods"] == ["GET", "POST"]
    assert options["allow_headers"] == ["Authorization"]
    assert options["max_age"] == 30
    assert options["allow_credentials"] is False
    assert "Retry-After" in options["expose_headers"]


@pytest.mark.parametrize(
    ("security", "field"),
    [
        ({"cors_origins": ["https://ops.example.com/"]}, "security.cors_origins"),
        ({"cors_origins": ["ops.example.com"]}, "security.cors_origins"),
        ({"cors_allow_methods": ["FETCH"]}, "security.cors_allow_methods"),
        ({"cors_allow_headers": ["X Bad"]}, "security.cors_allow_headers"),
        ({"cors_origins": ["*"], "cors_allow_credentials": True}, "security"),
        ({"rate_limit": {"routes": {"status": {"requests_per_minute": 5}}}}, "security.rate_limit"),
        (
            {"rate_limit": {"routes": {"/status": {"requests_per_minute": 0}}}},
            "security.rate_limit.routes./status.requests_per_minute",
        ),
    ],
)
def test_bad_cors_and_route_limits_are_refused_naming_the_field(
    security: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigValidationError) as info:
        validate_config({"security": security})
    assert any(p[0].startswith(field) for p in info.value.problems), info.value.problems


def test_a_route_gets_its_own_limit_and_the_others_the_default() -> None:
    security = SecurityFrameworkConfig.model_validate(
        {
            "rate_limit": {
                "requests_per_minute": 120,
                "burst": 7,
                "routes": {"/status": {"requests_per_minute": 6, "burst": 2}},
            }
        }
    )
    limits = route_limits(security, ROUTES)
    assert limits["/status"] == RateLimit(0.1, 2.0)
    assert limits["/alerts/{alert_id}/ack"] == RateLimit(2.0, 7.0)


def test_a_limit_for_a_route_the_api_lacks_is_an_error_listing_the_routes() -> None:
    security = SecurityFrameworkConfig.model_validate(
        {"rate_limit": {"routes": {"/stats": {"requests_per_minute": 6}}}}
    )
    with pytest.raises(ValueError, match=r"unknown routes \['/stats'\].*'/status'"):
        route_limits(security, ROUTES)
