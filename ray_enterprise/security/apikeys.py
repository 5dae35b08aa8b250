"""API keys: created with the secret shown once, stored only as a salted hash, verified in
constant time, scoped, expiring, rotatable with an overlap, revocable.

A key reads ``rek_<id>_<secret>`` (see :mod:`.keyformat`): the id is public and indexed, so
verification is one primary key lookup, never a scan over hashes, and only a salted hash of the
secret is stored.

Verification does the same work whether or not the id exists (a dummy hash is checked) and
gives the same error for "unknown id" and "wrong secret", so neither timing nor text tells an
attacker which ids exist. Expiry and revocation are revealed only to a caller who proved the
secret. Rotation issues a new key with the same scopes and lets the old one live until the
overlap ends, so clients can switch without an outage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ray_enterprise.security.errors import (
    ApiKeyNotFoundError,
    ExpiredApiKeyError,
    InsufficientScopeError,
    InvalidApiKeyError,
    RevokedApiKeyError,
    UnknownScopeError,
)
from ray_enterprise.security.events import SecurityEvents, process_events
from ray_enterprise.security.keyformat import (
    DEFAULT_ITERATIONS,
    KEY_PREFIX,
    check_secret,
    hash_secret,
    new_key_id,
    new_secret,
    split_key,
)
from ray_enterprise.security.schema import security_metadata
from ray_enterprise.security.scopes import ALL_SCOPES, Scope
from ray_enterprise.storage import create_tables

if TYPE_CHECKING:
    from ray_enterprise.security.audit import AuditLog


def parse_scopes(names: Iterable[str]) -> frozenset[Scope]:
    """Scopes from their names; an unknown name is an error that lists the known ones."""
    out = set()
    for name in names:
        try:
            out.add(Scope(name))
        except ValueError:
            raise UnknownScopeError(name, ALL_SCOPES) from None
    return frozenset(out)


# -- the record -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiKey:
    """What is known about a key: everything except its secret, which is never kept."""

    key_id: str
    name: str
    scopes: frozenset[Scope]
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    replaced_by: str | None = None
    rotated_from: str | None = None

    def status(self, now: float) -> str:
        """``active``, ``rotating`` (valid until its overlap ends), ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "rotating" if self.replaced_by else "active"

    def allows(self, *needed: Scope | str) -> bool:
        return all(Scope(s) in self.scopes for s in needed)

    def require(self, *needed: Scope | str) -> None:
        """Raise :class:`InsufficientScopeError` naming every scope the key lacks."""
        missing = {Scope(s).value for s in needed} - {s.value for s in self.scopes}
        if missing:
            raise InsufficientScopeError(self.key_id, missing)

    def to_dict(self) -> dict[str, object]:
        """Plain data for ``keys list --json`` and the API; there is no secret to leak."""
        return {
            "id": self.key_id,
            "name": self.name,
            "scopes": sorted(s.value for s in self.scopes),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "replaced_by": self.replaced_by,
            "rotated_from": self.rotated_from,
        }


@dataclass(frozen=True)
class IssuedKey:
    """A newly created key: ``secret`` is the whole key to hand over, shown once."""

    key: ApiKey
    secret: str

    def __repr__(self) -> str:  # a stray print or log of the object must not leak it
        return f"IssuedKey(key={self.key!r}, secret='***')"


# -- the durable store ------------------------------------------------------------------------

api_keys = sa.Table(
    "security_api_keys",
    security_metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("secret_hash", sa.String(300), nullable=False),
    sa.Column("scopes", sa.String(500), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=True),
    sa.Column("revoked_at", sa.Float, nullable=True),
    sa.Column("replaced_by", sa.String(32), nullable=True),
    sa.Column("rotated_from", sa.String(32), nullable=True),
)


def _row_to_key(row: sa.Row[tuple[object, ...]]) -> ApiKey:
    m = row._mapping
    return ApiKey(
        key_id=str(m["key_id"]),
        name=str(m["name"]),
        scopes=parse_scopes(str(m["scopes"]).split()),
        created_at=float(m["created_at"]),
        expires_at=None if m["expires_at"] is None else float(m["expires_at"]),
        revoked_at=None if m["revoked_at"] is None else float(m["revoked_at"]),
        replaced_by=m["replaced_by"],
        rotated_from=m["rotated_from"],
    )


class ApiKeyStore:
    """Keys in SQL. Every administrative operation and every failed authentication is written
    to ``audit`` when one is given, and failures are counted in ``events`` (default: this
    process's counters, which feed the metrics pipeline).

    ``clock`` is seconds since the epoch; ``iterations`` is the PBKDF2 cost for new keys (tests
    lower it; existing hashes keep the cost they were made with). ``max_age_s`` (the config's
    ``security.api_key_ttl_days``) caps every key's life from its creation, whatever its own
    expiry says: a key made to live forever is still refused past it. ``anonymous_failures``, when
    given, receives the reason of each failure that names no known key (malformed, unknown id)
    instead of the audit trail: the HTTP gate folds those into one record per window (see
    :class:`~ray_enterprise.security.login_guard.FailureDigest`).
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        clock: Callable[[], float] = time.time,
        iterations: int = DEFAULT_ITERATIONS,
        audit: AuditLog | None = None,
        events: SecurityEvents | None = None,
        anonymous_failures: Callable[[str], None] | None = None,
        create: bool = True,
        max_age_s: float | None = None,
    ) -> None:
        if max_age_s is not None and max_age_s <= 0:
            raise ValueError(f"max_age_s must be positive, got {max_age_s}")
        self._engine = engine
        self._max_age_s = max_age_s
        self._anonymous = anonymous_failures
        self._clock = clock
        self._iterations = iterations
        self._audit = audit
        self._events = events if events is not None else process_events()
        # Checked against when the id is unknown, so a miss costs what a hit costs.
        self._dummy_hash = hash_secret(new_secret(), iterations=iterations)
        if create:
            create_tables(engine)

    # -- administration -----------------------------------------------------------------------

    def create(
        self,
        scopes: Iterable[Scope | str],
        *,
        name: str = "",
        expires_in_s: float | None = None,
        actor: str = "system",
        _rotated_from: str | None = None,
    ) -> IssuedKey:
        """A new key with ``scopes``; the returned ``secret`` is the only copy there will be."""
        scope_set = parse_scopes(Scope(s).value if isinstance(s, Scope) else s for s in scopes)
        if expires_in_s is not None and expires_in_s <= 0:
            raise ValueError(f"expires_in_s must be positive, got {expires_in_s}")
        now = self._clock()
        key_id, secret = new_key_id(), new_secret()
        record = ApiKey(
            key_id=key_id,
            name=name,
            scopes=scope_set,
            created_at=now,
            expires_at=None if expires_in_s is None else now + expires_in_s,
            rotated_from=_rotated_from,
        )
        with self._engine.begin() as conn:
            conn.execute(
                api_keys.insert().values(
                    key_id=key_id,
                    name=name,
                    secret_hash=hash_secret(secret, iterations=self._iterations),
                    scopes=" ".join(sorted(s.value for s in scope_set)),
                    created_at=now,
                    expires_at=record.expires_at,
                    rotated_from=_rotated_from,
                )
            )
        if _rotated_from is None:
            self._record(
                actor, "key.create", key_id, {"scopes": sorted(s.value for s in scope_set)}
            )
        return IssuedKey(record, f"{KEY_PREFIX}_{key_id}_{secret}")

    def rotate(
        self,
        key_id: str,
        *,
        overlap_s: float = 3600.0,
        expires_in_s: float | None = None,
        actor: str = "system",
    ) -> IssuedKey:
        """A new key with the same name and scopes; the old one stays valid ``overlap_s`` more.

        The new key lives ``expires_in_s`` if given, else as long as the old key was meant to.
        """
        if overlap_s < 0:
            raise ValueError(f"overlap_s must be >= 0, got {overlap_s}")
        old = self.get(key_id)
        if old.revoked_at is not None:
            raise RevokedApiKeyError(key_id, old.revoked_at)
        now = self._clock()
        if old.expires_at is not None and now >= old.expires_at:
            raise ExpiredApiKeyError(key_id, old.expires_at)
        if expires_in_s is None and old.expires_at is not None:
            expires_in_s = old.expires_at - old.created_at
        issued = self.create(
            old.scopes, name=old.name, expires_in_s=expires_in_s, _rotated_from=key_id
        )
        ends = now + overlap_s
        if old.expires_at is not None:
            ends = min(ends, old.expires_at)
        with self._engine.begin() as conn:
            conn.execute(
                api_keys.update()
                .where(api_keys.c.key_id == key_id)
                .values(expires_at=ends, replaced_by=issued.key.key_id)
            )
        self._record(
            actor, "key.rotate", key_id, {"new_key": issued.key.key_id, "overlap_s": overlap_s}
        )
        return issued

    def revoke(self, key_id: str, *, actor: str = "system") -> ApiKey:
        """Revoke at once; revoking twice keeps the first time."""
        key = self.get(key_id)
        if key.revoked_at is None:
            with self._engine.begin() as conn:
                conn.execute(
                    api_keys.update()
                    .where(api_keys.c.key_id == key_id)
                    .values(revoked_at=self._clock())
                )
            self._record(actor, "key.revoke", key_id, {})
        return self.get(key_id)

    def get(self, key_id: str) -> ApiKey:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
        if row is None:
            raise ApiKeyNotFoundError(key_id)
        return self._capped(_row_to_key(row))

    def list_keys(self) -> list[ApiKey]:
        """Every key, oldest first; no secret or hash is ever returned."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id)
            ).all()
        return [self._capped(_row_to_key(r)) for r in rows]

    # -- authentication -----------------------------------------------------------------------

    def verify(self, presented: str, *, required: Iterable[Scope | str] = ()) -> ApiKey:
        """The key ``presented`` proves, checked for expiry, revocation and ``required`` scopes.

        Raises :class:`InvalidApiKeyError` (malformed, unknown id or wrong secret, alike),
        :class:`ExpiredApiKeyError`, :class:`RevokedApiKeyError` or
        :class:`InsufficientScopeError`.
        """
        try:
            key_id, secret = split_key(presented)
        except InvalidApiKeyError:
            self._fail(None, "malformed", known=False)
            raise
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
        stored = self._dummy_hash if row is None else str(row._mapping["secret_hash"])
        matches = check_secret(secret, stored)
        if row is None or not matches:
            self._fail(key_id, "invalid", known=row is not None)
            raise InvalidApiKeyError(key_id)
        key = self._capped(_row_to_key(row))
        now = self._clock()
        if key.revoked_at is not None:
            self._fail(key_id, "revoked")
            raise RevokedApiKeyError(key_id, key.revoked_at)
        if key.expires_at is not None and now >= key.expires_at:
            self._fail(key_id, "expired")
            raise ExpiredApiKeyError(key_id, key.expires_at)
        try:
            key.require(*required)
        except InsufficientScopeError as exc:
            self._fail(key_id, "scope", missing=list(exc.missing))
            raise
        return key

    def _capped(self, key: ApiKey) -> ApiKey:
        """The key with its expiry no later than ``max_age_s`` after its creation."""
        if self._max_age_s is None:
            return key
        latest = key.created_at + self._max_age_s
        if key.expires_at is not None and key.expires_at <= latest:
            return key
        return replace(key, expires_at=latest)

    def _fail(
        self, key_id: str | None, reason: str, *, known: bool = True, **details: object
    ) -> None:
        self._events.auth_failure(reason)
        if not known and self._anonymous is not None:
            self._anonymous(reason)
            return
        self._record(
            f"key:{key_id}" if key_id else "anonymous",
            "auth.verify",
            key_id or "",
            {"reason": reason, **details},
            outcome="denied",
        )

    def _record(
        self,
        actor: str,
        action: str,
        target: str,
        details: dict[str, object],
        outcome: str = "success",
    ) -> None:
        if self._audit is not None:
            self._audit.append(actor, action, target=target, outcome=outcome, details=details)


__all__ = [
    "ALL_SCOPES",
    "ApiKey",
    "ApiKeyStore",
    "IssuedKey",
    "Scope",
    "api_keys",
    "check_secret",
    "hash_secret",
    "parse_scopes",
    "split_key",
]
