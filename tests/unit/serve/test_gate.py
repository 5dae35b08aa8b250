"""The gate on a real SQLite key store and an in-process lease book: who, may they, how often."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ray_enterprise.security.apikeys import ApiKeyStore, Scope
from ray_enterprise.security.audit import AuditLog
from ray_enterprise.security.events import AUTH_FAILURES, SecurityEvents
from ray_enterprise.security.limiter_client import LeasingLimiter
from ray_enterprise.security.login_guard import FailureDigest, LoginThrottle
from ray_enterprise.security.ratelimit import LeaseBook, RateLimit
from ray_enterprise.serve.gate import (
    UNAUTHORIZED_BODY,
    CachedVerifier,
    Gate,
    Refusal,
    presented_key,
    retry_after_header,
)
from ray_enterprise.storage import make_engine
from tests.support import FakeClock


@pytest.fixture
def parts(tmp_path: Path) -> tuple[ApiKeyStore, AuditLog, SecurityEvents, FakeClock]:
    engine = make_engine(f"sqlite:///{tmp_path / 'state.db'}", create=False)
    clock = FakeClock(1_000_000.0)
    events = SecurityEvents(metrics=False)
    audit = AuditLog(engine, clock=clock)
    store = ApiKeyStore(engine, clock=clock, iterations=1_000, audit=audit, events=events)
    return store, audit, events, clock


def refusal(gate: Gate, headers: dict[str, str], scope: Scope = Scope.STATUS_READ) -> Refusal:
    with pytest.raises(Refusal) as info:
        asyncio.run(gate.admit(headers, "/status", scope))
    return info.value


def test_the_key_comes_from_bearer_or_the_configured_header() -> None:
    assert presented_key({"authorization": "Bearer rek_a_b"}) == "rek_a_b"
    assert presented_key({"x-api-key": " rek_c_d "}) == "rek_c_d"
    assert presented_key({"x-my-key": "rek_e_f"}, "X-My-Key") == "rek_e_f"
    assert presented_key({"authorization": "Basic dXNlcg=="}) is None
    assert presented_key({"x-api-key": "  "}) is None


def test_missing_malformed_unknown_expired_and_revoked_keys_get_one_and_the_same_401(
    parts: tuple[ApiKeyStore, AuditLog, SecurityEvents, FakeClock],
) -> None:
    store, audit, events, clock = parts
    gate = Gate(CachedVerifier(store, clock=clock), audit=audit, events=events)
    expired = store.create([Scope.STATUS_READ], expires_in_s=10).secret
    revoked = store.create([Scope.STATUS_READ])
    store.revoke(revoked.key.key_id)
    clock.now += 11
    good = store.create([Scope.STATUS_READ]).secret
    unknown = good[:4] + "0" * 12 + good[16:]
    answers = [
        refusal(gate, headers)
        for headers in (
            {},
            {"x-api-key": "not-a-key"},
            {"x-api-key": unknown},
            {"authorization": f"Bearer {good[:-2]}xx"},
            {"x-api-key": expired},
            {"authorization": f"Bearer {revoked.secret}"},
        )
    ]
    assert {(a.status, tuple(a.body.items()), tuple(a.headers.items())) for a in answers} == {
        (401, tuple(UNAUTHORIZED_BODY.items()), (("WWW-Authenticate", "Bearer"),))
    }
    reasons = events.snapshot()[AUTH_FAILURES]
    assert reasons == {
        "reason=missing": 1,
        "reason=malformed": 1,
        "reason=invalid": 2,
        "reason=expired": 1,
        "reason=revoked": 1,
    }
    denied = [r for r in audit.records() if r.action == "auth.verify"]
    assert [r.outcome for r in denied] == ["denied"] * 6
    assert all(good not in r.details and expired not in r.details for r in audit.records())
    assert asyncio.run(gate.admit({"x-api-key": good}, "/status", Scope.STATUS_READ)).key_id


def test_a_valid_key_without_the_scope_gets_403_and_with_it_passes(
    parts: tuple[ApiKeyStore, AuditLog, SecurityEvents, FakeClock],
) -> None:
    store, audit, events, clock = parts
    gate = Gate(CachedVerifier(store, clock=clock), audit=audit, events=events)
    reader = store.create([Scope.STATUS_READ])
    answer = refusal(gate, {"x-api-key": reader.secret}, Scope.CONFIG_READ)
    assert (answer.status, answer.body) == (403, {"error": "forbidden"})
    key = asyncio.run(gate.admit({"x-api-key": reader.secret}, "/status", Scope.STATUS_READ))
    assert key.key_id == reader.key.key_id


def test_a_remembered_proof_does_not_outlive_a_revocation(
    parts: tuple[ApiKeyStore, AuditLog, SecurityEvents, FakeClock],
) -> None:
    store, audit, events, clock = parts
    gate = Gate(CachedVerifier(store, clock=clock), audit=audit, events=events)
    issued = store.create([Scope.STATUS_READ])
    headers = {"x-api-key": issued.secret}
    asyncio.run(gate.admit(headers, "/status", Scope.STATUS_READ))
    store.revoke(issued.key.key_id)
    assert refusal(gate, headers).status == 401
    assert events.snapshot()[AUTH_FAILURES] == {"reason=revoked": 1}


def test_past_its_bucket_a_key_gets_429_with_whole_seconds_to_wait(
    parts: tuple[ApiKeyStore, AuditLog, SecurityEvents, FakeClock],
) -> None:
    store, audit, events, clock = parts
    book = LeaseBook(RateLimit(100.0, 100.0), clock=clock)
    book.set_limit("*", "api:/status", RateLimit(0.5, 2.0))
    limiter = LeasingLimiter(lease=book.lease, clock=clock, events=events)
    gate = Gate(CachedVerifier(store, clock=clock), audit=audit, events=events, limiter=limiter)
    headers = {"x-api-key": store.create([Scope.STATUS_READ]).secret}
    for _ in range(2):
        asyncio.run(gate.admit(headers, "/status", Scope.STATUS_READ))
    answer = refusal(gate, headers)
    assert (answer.status, answer.body) == (429, {"error": "rate limited"})
    assert int(answer.headers["Retry-After"]) >= 1
    clock.now += 2.5  # one token back at 0.5 per second
    asyncio.run(gate.admit(headers, "/status", Scope.STATUS_READ))
    assert retry_after_header(0.01) == "1" and retry_after_header(2.2) == "3"


def folding_gate(
    tmp_path: Path, **options: object
) -> tuple[Gate, ApiKeyStore, AuditLog, SecurityEvents, FakeClock]:
    """A gate as the API builds it: anonymous failures folded into one record per window."""
    engine = make_engine(f"sqlite:///{tmp_path / 'fold.db'}", create=False)
    clock = FakeClock(1_000_000.0)
    events = SecurityEvents(metrics=False)
    audit = AuditLog(engine, clock=clock)

    def write(target: str, details: dict[str, object]) -> None:
        audit.append("anonymous", "auth.verify", target=target, outcome="denied", details=details)

    digest = FailureDigest(write, window_s=60.0, clock=clock)
    store = ApiKeyStore(
        engine, clock=clock, iterations=1_000, audit=audit, events=events,
        anonymous_failures=digest.note,
    )  # fmt: skip
    gate = Gate(
        CachedVerifier(store, clock=clock),
        audit=audit,
        events=events,
        digest=digest,
        **options,  # type: ignore[arg-type]
    )
    return gate, store, audit, events, clock


def test_a_client_past_its_failed_logins_is_refused_before_any_key_is_hashed(
    tmp_path: Path,
) -> None:
    throttle = LoginThrottle(per_minute=1.0, burst=3.0, clock=lambda: 0.0)
    gate, store, _, events, _ = folding_gate(tmp_path, throttle=throttle)
    good = store.create([Scope.STATUS_READ]).secret
    wrong = {"x-api-key": good[:-2] + "xx"}
    for _ in range(3):
        with pytest.raises(Refusal) as info:
            asyncio.run(gate.admit(wrong, "/status", Scope.STATUS_READ, "203.0.113.9"))
        assert info.value.status == 401
    hashed = events.snapshot()[AUTH_FAILURES]
    for headers in (wrong, {"x-api-key": good}):  # even the right key: no more guesses
        with pytest.raises(Refusal) as info:
            asyncio.run(gate.admit(headers, "/status", Scope.STATUS_READ, "203.0.113.9"))
        assert (info.value.status, info.value.body) == (429, {"error": "rate limited"})
        assert int(info.value.headers["Retry-After"]) == 60
    after = events.snapshot()[AUTH_FAILURES]
    assert after.pop("reason=throttled") == 2 and after == hashed  # nothing more was verified
    key = asyncio.run(gate.admit({"x-api-key": good}, "/status", Scope.STATUS_READ, "198.51.100.1"))
    assert key.key_id  # another address is not held back


def test_anonymous_failures_are_folded_and_known_keys_denials_are_all_written(
    tmp_path: Path,
) -> None:
    throttle = LoginThrottle(burst=1_000.0)
    gate, store, audit, _, clock = folding_gate(tmp_path, throttle=throttle)
    known = store.create([Scope.STATUS_READ])
    unknown = known.secret[:4] + "0" * 12 + known.secret[16:]
    anonymous = [{}, {"x-api-key": "not-a-key"}, {"x-api-key": unknown}] * 67  # 201 requests
    for headers in anonymous:
        with pytest.raises(Refusal):
            asyncio.run(gate.admit(headers, "/status", Scope.STATUS_READ, "203.0.113.9"))
    for _ in range(3):
        with pytest.raises(Refusal):
            asyncio.run(gate.admit({"x-api-key": known.secret[:-1] + "x"}, "/status", None))
    denied = [r.to_dict() for r in audit.records() if r.action == "auth.verify"]
    assert [d["details"]["reason"] for d in denied] == ["missing", "invalid", "invalid", "invalid"]
    assert denied[0]["target"] == "/status"
    assert [d["actor"] for d in denied[1:]] == [f"key:{known.key.key_id}"] * 3
    clock.now += 61
    gate.digest.flush()  # type: ignore[union-attr]  # the gate's timer does this in a server
    summary = audit.records()[-1].to_dict()["details"]
    assert summary["count"] == 200
    assert summary["reasons"] == {"missing": 66, "malformed": 67, "invalid": 67}
    assert summary["clients"] == {"203.0.113.9": 200}
