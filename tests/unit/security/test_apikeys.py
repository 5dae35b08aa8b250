"""API keys: hashing, the constant-time verify path, scopes, expiry, rotation, revocation."""

from __future__ import annotations

import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_enterprise.errors import RayEnterpriseError
from ray_enterprise.security import apikeys, keyformat
from ray_enterprise.security.apikeys import (
    ApiKeyStore,
    Scope,
    check_secret,
    hash_secret,
    parse_scopes,
    split_key,
)
from ray_enterprise.security.audit import AuditLog
from ray_enterprise.security.errors import (
    ApiKeyNotFoundError,
    AuthenticationError,
    ExpiredApiKeyError,
    InsufficientScopeError,
    InvalidApiKeyError,
    RevokedApiKeyError,
    UnknownScopeError,
)
from ray_enterprise.security.events import AUTH_FAILURES, SecurityEvents
from tests.unit.security.fakes import FakeClock, memory_engine

FAST = 1_000  # PBKDF2 iterations for tests: the cost is a parameter, the logic is not


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> SecurityEvents:
    return SecurityEvents(metrics=False)


@pytest.fixture
def store(clock: FakeClock, events: SecurityEvents) -> ApiKeyStore:
    engine = memory_engine()
    return ApiKeyStore(
        engine, clock=clock, iterations=FAST, audit=AuditLog(engine, clock=clock), events=events
    )


def test_hash_is_salted_so_one_secret_hashes_differently_each_time() -> None:
    first, second = hash_secret("s3cret", iterations=FAST), hash_secret("s3cret", iterations=FAST)
    assert first != second
    assert "s3cret" not in first
    assert check_secret("s3cret", first) and check_secret("s3cret", second)


@settings(max_examples=15, deadline=None)
@given(secret=st.text(min_size=1, max_size=40), other=st.text(min_size=1, max_size=40))
def test_check_secret_accepts_only_the_secret_that_was_hashed(secret: str, other: str) -> None:
    stored = hash_secret(secret, iterations=10)
    assert check_secret(secret, stored)
    assert check_secret(other, stored) == (other == secret)


def test_check_secret_refuses_malformed_or_foreign_hashes() -> None:
    assert not check_secret("x", "garbage")
    assert not check_secret("x", "md5$1$00$00")
    assert not check_secret("x", "pbkdf2_sha256$notanumber$00$00")


def test_hash_keeps_its_iteration_count_so_the_cost_can_be_raised_later() -> None:
    old = hash_secret("k", iterations=10)
    assert old.split("$")[1] == "10"
    assert check_secret("k", old)


def test_digests_are_compared_with_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(keyformat.hmac, "compare_digest", spy)
    assert check_secret("k", hash_secret("k", iterations=10))
    assert len(calls) == 1


def test_an_unknown_key_id_costs_a_hash_check_like_a_known_one(
    store: ApiKeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = store.create(["status:read"])
    checked: list[str] = []
    real = apikeys.check_secret

    def spy(secret: str, stored: str) -> bool:
        checked.append(stored)
        return real(secret, stored)

    monkeypatch.setattr(apikeys, "check_secret", spy)
    _, secret = split_key(issued.secret)
    with pytest.raises(InvalidApiKeyError) as unknown:
        store.verify(f"rek_{'0' * 12}_{secret}")
    with pytest.raises(InvalidApiKeyError) as wrong:
        store.verify(f"rek_{issued.key.key_id}_wrong")
    assert len(checked) == 2  # both paths did the PBKDF2 work
    assert str(unknown.value) == str(wrong.value)  # and say the same thing


def test_created_key_verifies_and_carries_its_scopes(store: ApiKeyStore) -> None:
    issued = store.create(["status:read", Scope.CONFIG_READ], name="dashboard")
    assert issued.secret.startswith(f"rek_{issued.key.key_id}_")
    key = store.verify(issued.secret, required=[Scope.STATUS_READ])
    assert key.scopes == {Scope.STATUS_READ, Scope.CONFIG_READ}
    assert key.name == "dashboard"


def test_secret_is_never_in_the_record_the_list_or_the_repr(store: ApiKeyStore) -> None:
    issued = store.create(["audit:read"])
    _, secret = split_key(issued.secret)
    assert secret not in repr(issued)
    assert secret not in repr(store.list_keys())
    assert secret not in str(store.get(issued.key.key_id).to_dict())


def test_missing_scope_is_refused_and_named(store: ApiKeyStore, events: SecurityEvents) -> None:
    issued = store.create(["status:read"])
    with pytest.raises(InsufficientScopeError) as caught:
        store.verify(issued.secret, required=["config:write", "status:read"])
    assert caught.value.missing == ("config:write",)
    assert events.snapshot()[AUTH_FAILURES] == {"reason=scope": 1}


def test_unknown_scope_names_the_known_ones() -> None:
    with pytest.raises(UnknownScopeError, match=r"known scopes: .*status:read"):
        parse_scopes(["status:write"])


@pytest.mark.parametrize(
    "presented", ["", "rek_", "abc", "rek_zzzzzzzzzzzz_secret", "xyz_0123456789ab_s", "rek_01_s"]
)
def test_malformed_keys_are_invalid_without_a_lookup(store: ApiKeyStore, presented: str) -> None:
    with pytest.raises(InvalidApiKeyError):
        store.verify(presented)


def test_key_expires_at_its_lifetime(store: ApiKeyStore, clock: FakeClock) -> None:
    issued = store.create(["status:read"], expires_in_s=60)
    clock.advance(59.9)
    store.verify(issued.secret)
    clock.advance(0.1)
    with pytest.raises(ExpiredApiKeyError):
        store.verify(issued.secret)
    assert store.get(issued.key.key_id).status(clock()) == "expired"


def test_max_age_caps_every_keys_life_from_its_creation(clock: FakeClock) -> None:
    engine = memory_engine()
    capped = ApiKeyStore(engine, clock=clock, iterations=FAST, max_age_s=100.0)
    forever = capped.create(["status:read"])  # no expiry of its own
    short = capped.create(["status:read"], expires_in_s=10)
    clock.advance(50)
    capped.verify(forever.secret)
    assert capped.get(short.key.key_id).status(clock()) == "expired"  # its own, shorter, holds
    clock.advance(50)
    with pytest.raises(ExpiredApiKeyError):
        capped.verify(forever.secret)
    assert capped.get(forever.key.key_id).status(clock()) == "expired"
    # The same row through a store without the cap: the cap is the store's, not the key's.
    uncapped = ApiKeyStore(engine, clock=clock, iterations=FAST, create=False)
    assert uncapped.verify(forever.secret).expires_at is None
    with pytest.raises(ValueError, match="max_age_s must be positive"):
        ApiKeyStore(engine, max_age_s=0)


def test_rotation_keeps_the_old_key_valid_until_the_overlap_ends(
    store: ApiKeyStore, clock: FakeClock
) -> None:
    old = store.create(["config:read", "config:write"], name="deployer", expires_in_s=86400)
    clock.advance(100)
    new = store.rotate(old.key.key_id, overlap_s=3600)
    assert new.key.scopes == old.key.scopes and new.key.name == "deployer"
    assert new.key.expires_at == clock() + 86400  # the old key's lifetime, from now
    assert store.get(old.key.key_id).status(clock()) == "rotating"
    clock.advance(3599)
    store.verify(old.secret)
    store.verify(new.secret)
    clock.advance(1)
    with pytest.raises(ExpiredApiKeyError):
        store.verify(old.secret)
    store.verify(new.secret)
    assert store.get(old.key.key_id).replaced_by == new.key.key_id
    assert store.get(new.key.key_id).rotated_from == old.key.key_id


def test_rotation_never_extends_the_old_keys_life(store: ApiKeyStore, clock: FakeClock) -> None:
    old = store.create(["status:read"], expires_in_s=600)
    store.rotate(old.key.key_id, overlap_s=3600)
    clock.advance(600)
    with pytest.raises(ExpiredApiKeyError):
        store.verify(old.secret)


def test_revoked_key_is_refused_and_cannot_be_rotated(store: ApiKeyStore, clock: FakeClock) -> None:
    issued = store.create(["alerts:ack"])
    first = store.revoke(issued.key.key_id)
    clock.advance(5)
    assert store.revoke(issued.key.key_id).revoked_at == first.revoked_at  # idempotent
    with pytest.raises(RevokedApiKeyError):
        store.verify(issued.secret)
    with pytest.raises(RevokedApiKeyError):
        store.rotate(issued.key.key_id)


def test_revocation_needs_the_secret_to_be_revealed(store: ApiKeyStore) -> None:
    issued = store.create(["alerts:ack"])
    store.revoke(issued.key.key_id)
    with pytest.raises(InvalidApiKeyError):  # a guesser is not told the id exists
        store.verify(f"rek_{issued.key.key_id}_guess")


def test_unknown_id_for_administration_is_a_clear_error(store: ApiKeyStore) -> None:
    with pytest.raises(ApiKeyNotFoundError, match="keys list"):
        store.revoke("0123456789ab")


def _expired_key_store() -> tuple[ApiKeyStore, str, str]:
    clock = FakeClock()
    engine = memory_engine()
    store = ApiKeyStore(engine, clock=clock, iterations=10, audit=AuditLog(engine, clock=clock))
    issued = store.create(["status:read"], expires_in_s=10)
    clock.advance(20)
    return store, issued.key.key_id, issued.secret


_EXPIRED = _expired_key_store()


@settings(max_examples=10, deadline=None)
@given(tail=st.text(min_size=1, max_size=30))
def test_no_error_message_contains_the_presented_secret(tail: str) -> None:
    store, key_id, whole = _EXPIRED
    _, secret = split_key(whole)
    for attempt in (whole + tail, f"rek_{key_id}_{tail}", tail, whole):
        with pytest.raises(AuthenticationError) as caught:
            store.verify(attempt)
        assert secret not in str(caught.value) and secret not in repr(caught.value.__dict__)
        assert isinstance(caught.value, RayEnterpriseError)


def test_the_audit_of_failures_holds_no_secret() -> None:
    store, _, whole = _EXPIRED
    _, secret = split_key(whole)
    with pytest.raises(ExpiredApiKeyError):
        store.verify(whole)
    assert secret not in repr([r.to_dict() for r in AuditLog(store._engine).records()])


def test_key_operations_and_failures_are_audited(store: ApiKeyStore, clock: FakeClock) -> None:
    issued = store.create(["status:read"], actor="alice")
    store.rotate(issued.key.key_id, actor="alice")
    with pytest.raises(InvalidApiKeyError):
        store.verify("rek_000000000000_nope")
    audit = AuditLog(store._engine, clock=clock)
    actions = [(r.actor, r.action, r.outcome) for r in audit.records()]
    assert actions == [
        ("alice", "key.create", "success"),
        ("alice", "key.rotate", "success"),
        ("key:000000000000", "auth.verify", "denied"),
    ]
    assert audit.verify().ok
