"""The security errors: what went wrong with a key, a limit or the audit trail.

Every error carries the facts as attributes (the key id, the scope, the route) and never the
secret: a message may be logged, shown in a terminal or returned over HTTP, so it is written as
if an attacker will read it. Authentication errors share one base so that the HTTP layer maps
them to 401 (who are you?) and :class:`InsufficientScopeError` to 403 (not allowed).
"""

from __future__ import annotations

from collections.abc import Iterable

from ray_enterprise.errors import RayEnterpriseError


class SecurityError(RayEnterpriseError):
    """Base of every error raised by :mod:`ray_enterprise.security`."""


class AuthenticationError(SecurityError):
    """The presented API key does not authenticate anyone (HTTP 401)."""


class InvalidApiKeyError(AuthenticationError):
    """Malformed, unknown or wrong secret: deliberately one error, so nothing is learned.

    ``key_id`` is what the caller presented (``None`` when even that was unreadable); whether it
    exists is not said, so that key ids cannot be enumerated.
    """

    def __init__(self, key_id: str | None = None) -> None:
        self.key_id = key_id
        super().__init__(
            "invalid API key: check that the whole key was copied (it starts with 'rek_') "
            "or create a new one with `ray-enterprise keys create`"
        )


class ExpiredApiKeyError(AuthenticationError):
    """The key authenticated but its lifetime (or its rotation overlap) has ended."""

    def __init__(self, key_id: str, expired_at: float) -> None:
        self.key_id = key_id
        self.expired_at = expired_at
        super().__init__(
            f"API key {key_id} has expired; use the key that replaced it or create a new one"
        )


class RevokedApiKeyError(AuthenticationError):
    """The key authenticated but was revoked."""

    def __init__(self, key_id: str, revoked_at: float) -> None:
        self.key_id = key_id
        self.revoked_at = revoked_at
        super().__init__(f"API key {key_id} was revoked; ask for a new key")


class InsufficientScopeError(SecurityError):
    """The key is valid but lacks a scope the operation needs (HTTP 403)."""

    def __init__(self, key_id: str, missing: Iterable[str]) -> None:
        self.key_id = key_id
        self.missing = tuple(sorted(missing))
        super().__init__(
            f"API key {key_id} lacks scope {', '.join(self.missing)}; "
            "create or rotate a key with that scope"
        )


class ApiKeyNotFoundError(SecurityError, KeyError):
    """An administrative operation (rotate, revoke) named a key id that does not exist."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(f"no API key with id {key_id!r}; `ray-enterprise keys list` shows them")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class UnknownScopeError(SecurityError, ValueError):
    """A scope name that is not one of :class:`~ray_enterprise.security.apikeys.Scope`."""

    def __init__(self, scope: str, known: Iterable[str]) -> None:
        self.scope = scope
        super().__init__(f"unknown scope {scope!r}; known scopes: {', '.join(sorted(known))}")


class RateLimitedError(SecurityError):
    """A request was refused by the rate limit of (key, route) (HTTP 429).

    ``retry_after_s`` is how long until a token is expected, for a ``Retry-After`` header.
    """

    def __init__(self, key: str, route: str, retry_after_s: float) -> None:
        self.key = key
        self.route = route
        self.retry_after_s = retry_after_s
        super().__init__(
            f"rate limit exceeded for key {key} on {route}; retry after {retry_after_s:.2f} s"
        )


class AuditError(SecurityError):
    """The audit trail could not be written or read."""
