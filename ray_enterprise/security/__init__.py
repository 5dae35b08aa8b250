"""Security: API keys, cluster-wide rate limits, the tamper-evident audit trail, and the
security events that feed the metrics pipeline.

The cores (:mod:`.apikeys`, :mod:`.ratelimit`, :mod:`.audit`) need no Ray; the limiter actor
and its leasing client are the Ray shell around :class:`LeaseBook`. The Ray-dependent names
are imported lazily so that the key store and the audit trail stay cheap to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray_enterprise.security.errors import (
    ApiKeyNotFoundError,
    AuditError,
    AuthenticationError,
    ExpiredApiKeyError,
    InsufficientScopeError,
    InvalidApiKeyError,
    RateLimitedError,
    RevokedApiKeyError,
    SecurityError,
    UnknownScopeError,
)
from ray_enterprise.security.events import SecurityEvents, process_events
from ray_enterprise.security.ratelimit import Lease, LeaseBook, RateLimit, TokenBucket
from ray_enterprise.security.scopes import ALL_SCOPES, Scope

if TYPE_CHECKING:
    from ray_enterprise.security.apikeys import ApiKey, ApiKeyStore, IssuedKey
    from ray_enterprise.security.audit import (
        AuditLog,
        AuditRecord,
        Problem,
        VerifyReport,
        platform_audit_log,
    )
    from ray_enterprise.security.audit_key import AuditKeyError, load_audit_key

# The stores import SQLAlchemy and the limiter Ray: `ray-enterprise --help` needs neither.
_LAZY = {
    "ApiKey": "ray_enterprise.security.apikeys",
    "ApiKeyStore": "ray_enterprise.security.apikeys",
    "IssuedKey": "ray_enterprise.security.apikeys",
    "AuditLog": "ray_enterprise.security.audit",
    "AuditRecord": "ray_enterprise.security.audit",
    "Problem": "ray_enterprise.security.audit",
    "VerifyReport": "ray_enterprise.security.audit",
    "platform_audit_log": "ray_enterprise.security.audit",
    "AuditKeyError": "ray_enterprise.security.audit_key",
    "load_audit_key": "ray_enterprise.security.audit_key",
    "LeasingLimiter": "ray_enterprise.security.limiter_client",
    "Decision": "ray_enterprise.security.limiter_client",
    "RateLimiterActor": "ray_enterprise.security.limiter_actor",
    "get_limiter_handle": "ray_enterprise.security.limiter_actor",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ALL_SCOPES",
    "ApiKey",
    "ApiKeyNotFoundError",
    "ApiKeyStore",
    "AuditError",
    "AuditKeyError",
    "AuditLog",
    "AuditRecord",
    "AuthenticationError",
    "Decision",
    "ExpiredApiKeyError",
    "InsufficientScopeError",
    "InvalidApiKeyError",
    "IssuedKey",
    "Lease",
    "LeaseBook",
    "LeasingLimiter",
    "Problem",
    "RateLimit",
    "RateLimitedError",
    "RateLimiterActor",
    "RevokedApiKeyError",
    "Scope",
    "SecurityError",
    "SecurityEvents",
    "TokenBucket",
    "UnknownScopeError",
    "VerifyReport",
    "get_limiter_handle",
    "load_audit_key",
    "platform_audit_log",
    "process_events",
]
