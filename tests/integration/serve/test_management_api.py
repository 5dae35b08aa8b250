"""The management API on real Ray Serve over real HTTP on 127.0.0.1: keys, scopes, CORS,
rate limits, redaction, and acknowledgements that reach the alert actor."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import ray
import requests
from prometheus_client.parser import text_string_to_metric_families

from ray_enterprise.alerts.actor import get_alert_handle
from ray_enterprise.observability.platform import EnterpriseObservabilityPlatform
from ray_enterprise.security.apikeys import ALL_SCOPES, ApiKeyStore, Scope
from ray_enterprise.security.events import AUTH_FAILURES, RATE_LIMITED
from ray_enterprise.security.tokens import mint_token
from ray_enterprise.serve.routes import ROUTES
from tests.integration.serve.conftest import (
    ALLOWED_ORIGIN,
    KEY_TTL_DAYS,
    LIMITED_ROUTE,
    PLANTED,
    Api,
)
from tests.support import wait_for

pytestmark = pytest.mark.timeout(300)

# Concrete paths for the route templates; none of them names anything that exists.
PATH_VALUES = {
    "{name}": "no-such-service",
    "{key}": "services.apitest.enabled",
    "{alert_id}": "no-such-alert",
    "{trace_id}": "0" * 32,
    "{version}": "999999",
}
BODIES = {"PUT": {"value": True}, "POST": {"reason": "scope test"}}


def concrete(path: str) -> str:
    for template, value in PATH_VALUES.items():
        path = path.replace(template, value)
    return path


def call(api: Api, method: str, path: str, key: str | None = None, **kw: Any) -> Any:
    headers = dict(kw.pop("headers", {}))
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if method in BODIES and "json" not in kw:
        kw["json"] = BODIES[method]
    return requests.request(method, api.url + path, headers=headers, timeout=60, **kw)


def test_keys_older_than_the_configured_ttl_are_refused_whatever_their_own_expiry(
    api: Api,
) -> None:
    def made_days_ago(days: float) -> str:
        then = ApiKeyStore(
            api.store._engine,
            clock=lambda: time.time() - days * 86400,
            iterations=1_000,
            create=False,
        )
        return then.create([Scope.STATUS_READ], name=f"made {days} days ago").secret

    before = len(api.audit.records())
    assert call(api, "GET", "/status", made_days_ago(KEY_TTL_DAYS - 1)).status_code == 200
    old = made_days_ago(KEY_TTL_DAYS + 1)  # never expires by itself
    answer = call(api, "GET", "/status", old)
    assert answer.status_code == 401 and answer.content == b'{"error":"unauthorized"}'
    denied = [r for r in api.audit.records()[before:] if r.action == "auth.verify"]
    assert [r.to_dict()["details"]["reason"] for r in denied] == ["expired"]


def test_bearer_tokens_signed_with_the_configured_jwt_secret_are_taken_like_keys(
    api: Api,
) -> None:
    now = time.time()
    token = mint_token(PLANTED, "ci-bot", ["status:read"], 300, now)
    assert call(api, "GET", "/status", token).status_code == 200
    assert call(api, "GET", "/audit", token).status_code == 403  # scope it does not carry
    before = len(api.audit.records())
    refused = {
        "wrong secret": mint_token("not-the-secret", "ci-bot", ["status:read"], 300, now),
        "past session_timeout_minutes": mint_token(PLANTED, "ci-bot", ["status:read"], 7200, now),
        "expired": mint_token(PLANTED, "ci-bot", ["status:read"], 60, now - 3600),
    }
    for why, bad in refused.items():
        answer = call(api, "GET", "/status", bad)
        assert answer.status_code == 401, why
        assert answer.content == b'{"error":"unauthorized"}', why
    denied = [r.to_dict()["details"] for r in api.audit.records()[before:]]
    details = [d.get("detail", "") for d in denied if d.get("reason") == "token"]
    assert len(details) == 3
    assert any("signature" in d for d in details)
    assert any("session_timeout_minutes" in d for d in details)
    assert all(PLANTED not in json.dumps(d) for d in denied)


def test_missing_invalid_expired_and_revoked_keys_all_get_the_same_bare_401(api: Api) -> None:
    valid = api.key(Scope.STATUS_READ).secret
    revoked = api.key(Scope.STATUS_READ)
    api.store.revoke(revoked.key.key_id)
    an_hour_ago = ApiKeyStore(
        api.store._engine, clock=lambda: time.time() - 3600, iterations=1_000, create=False
    )
    expired = an_hour_ago.create([Scope.STATUS_READ], expires_in_s=60).secret
    bad = {
        "missing": {},
        "malformed": {"Authorization": "Bearer not-a-key"},
        "invalid": {"X-API-Key": valid[:-4] + "AAAA"},
        "expired": {"Authorization": f"Bearer {expired}"},
        "revoked": {"X-API-Key": revoked.secret},
    }
    before = len(api.audit.records())
    answers = {reason: call(api, "GET", "/status", headers=h) for reason, h in bad.items()}
    for reason, answer in answers.items():
        assert answer.status_code == 401, (reason, answer.text)
        assert answer.content == b'{"error":"unauthorized"}', reason
        assert answer.headers["www-authenticate"] == "Bearer"
        assert set(answer.headers) == set(answers["missing"].headers), reason
    # A denied known key is always written; failures naming no key are folded per window.
    denied = [r for r in api.audit.records()[before:] if r.action == "auth.verify"]
    known = [r.to_dict()["details"]["reason"] for r in denied if r.actor != "anonymous"]
    assert sorted(known) == ["expired", "invalid", "revoked"]
    assert all(r.outcome == "denied" for r in denied)
    assert call(api, "GET", "/status", valid).status_code == 200
    # The failures are security events in the metrics pipeline, where alert rules see them.
    platform = EnterpriseObservabilityPlatform()
    for reason in bad:
        platform.wait_for_points(AUTH_FAILURES, {"reason": reason}, 1, timeout_s=60)


def test_healthz_answers_a_probe_without_a_key_and_tells_it_nothing(api: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-key"}):
        probe = call(api, "GET", "/healthz", headers=headers)
        assert (probe.status_code, probe.text) == (200, "ok\n")
        assert probe.headers["content-type"].startswith("text/plain")
    # The probe opened no other door: the health with its reasons still needs a key.
    assert call(api, "GET", "/health").status_code == 401


def test_every_route_refuses_a_key_without_its_scope_and_admits_one_with_it(api: Api) -> None:
    assert {scope.value for scope in ROUTES.values()} == ALL_SCOPES
    for (method, path), scope in ROUTES.items():
        lacking = api.key(*(ALL_SCOPES - {scope.value})).secret
        holding = api.key(scope).secret
        refused = call(api, method, concrete(path), lacking)
        assert (refused.status_code, refused.json()) == (403, {"error": "forbidden"}), path
        admitted = call(api, method, concrete(path), holding)
        assert admitted.status_code in (200, 404), (method, path, admitted.text)
    # The admitted PUT went through to the ConfigActor, and the trail says who did it.
    writer = api.key(Scope.CONFIG_READ).secret
    shown = call(api, "GET", "/config", writer, params={"section": "services.apitest"}).json()
    assert shown["value"] == {"enabled": True}
    assert any(r.action == "config.set" for r in api.audit.records())


def test_cors_preflight_answers_the_configured_origin_and_refuses_another(api: Api) -> None:
    ask = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-api-key"}
    allowed = requests.options(
        api.url + "/status", headers={"Origin": ALLOWED_ORIGIN, **ask}, timeout=60
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
    refused = requests.options(
        api.url + "/status", headers={"Origin": "https://evil.example", **ask}, timeout=60
    )
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    # A browser may read even a refusal from the allowed origin, and nothing from another.
    denied = call(api, "GET", "/status", headers={"Origin": ALLOWED_ORIGIN})
    assert denied.status_code == 401
    assert denied.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    other = call(api, "GET", "/status", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_past_its_route_limit_a_key_gets_429_with_retry_after_and_others_do_not(
    api: Api,
) -> None:
    flooding, other = api.key(Scope.STATUS_READ).secret, api.key(Scope.STATUS_READ).secret
    path = concrete(LIMITED_ROUTE)
    answers = [call(api, "GET", path, flooding) for _ in range(12)]
    codes = [a.status_code for a in answers]
    assert 429 in codes and 404 in codes, codes  # 404: admitted, and no such trace
    limited = [a for a in answers if a.status_code == 429]
    assert all(a.json() == {"error": "rate limited"} for a in limited)
    assert all(int(a.headers["retry-after"]) >= 1 for a in limited)
    assert call(api, "GET", path, other).status_code == 404  # buckets are per key
    assert call(api, "GET", "/status", flooding).status_code == 200  # and per route
    # Rejections reach the metrics pipeline when the client next renews its lease.
    platform = EnterpriseObservabilityPlatform()

    def counted() -> bool:
        call(api, "GET", path, flooding)
        found = platform.get_metric_stats(RATE_LIMITED, {"route": f"api:{LIMITED_ROUTE}"})
        return found is not None and found["total_count"] >= 1

    wait_for(counted, timeout=60, interval=1.0, what="the rate-limit rejections as a metric")


def test_no_response_body_or_header_shows_a_secret(api: Api) -> None:
    everything = api.key(*ALL_SCOPES).secret
    shown = call(api, "GET", "/config", everything).json()["value"]
    assert shown["security"]["jwt_secret"] == "**********"
    assert shown["cache"]["tiers"]["l1"]["password"] == "**********"
    assert shown["services"]["billing"]["password"] == "**********"
    assert shown["security"]["cors_origins"] == [ALLOWED_ORIGIN]
    for (method, path), _ in ROUTES.items():
        if method != "GET":
            continue
        answer = call(api, method, concrete(path), everything)
        assert answer.status_code in (200, 404), (path, answer.text)
        assert PLANTED not in answer.text, path
        assert everything not in answer.text, path
        assert not any(PLANTED in v or everything in v for v in answer.headers.values()), path
    for section in ("security", "cache", "services.billing"):
        text = call(api, "GET", "/config", everything, params={"section": section}).text
        assert PLANTED not in text and "**********" in text, section


def test_an_acknowledgement_through_the_api_reaches_the_alert_actor_and_the_trail(
    api: Api,
) -> None:
    actor = get_alert_handle(create=True)
    signal = {
        "labels": {"alertname": "ApiAckTest", "service": "api-test"},
        "severity": "high",
        "firing": True,
        "annotations": {"summary": "raised by the management API test"},
    }
    ray.get(actor.ingest.remote([signal]))
    reader, acker = api.key(Scope.STATUS_READ), api.key(Scope.ALERTS_ACK)
    listed = call(api, "GET", "/alerts", reader.secret, params={"service": "api-test"}).json()
    [alert] = [a for a in listed if a["labels"]["alertname"] == "ApiAckTest"]
    acked = call(api, "POST", f"/alerts/{alert['id']}/ack", acker.secret, json={"reason": "on it"})
    assert acked.status_code == 200, acked.text
    seen = ray.get(actor.get.remote(alert["id"]))
    assert (seen["state"], seen["acknowledged_by"]) == ("acknowledged", f"key:{acker.key.key_id}")
    back = call(api, "POST", f"/alerts/{alert['id']}/unack", acker.secret)
    assert back.status_code == 200 and ray.get(actor.get.remote(alert["id"]))["state"] == "firing"
    trail = [r.to_dict() for r in api.audit.records() if r.target == alert["id"]]
    assert [(r["action"], r["actor"]) for r in trail] == [
        ("alert.ack", f"key:{acker.key.key_id}"),
        ("alert.unack", f"key:{acker.key.key_id}"),
    ]
    assert trail[0]["details"] == {"reason": "on it"}
    ray.get(actor.ingest.remote([{**signal, "firing": False}]))  # resolve it again


def test_metrics_are_prometheus_text_and_the_audit_chain_verifies(api: Api) -> None:
    key = api.key(Scope.STATUS_READ, Scope.AUDIT_READ).secret
    answer = call(api, "GET", "/metrics", key)
    assert answer.headers["content-type"].startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(answer.text)}
    assert "ray_enterprise_health_score" in names
    assert call(api, "GET", "/audit/verify", key).json()["ok"] is True
    health = call(api, "GET", "/health", key).json()
    assert 0 <= health["score"] <= 100
