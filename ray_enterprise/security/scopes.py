"""What an API key may do, apart from the key store so that the CLI can offer the scopes as
choices without importing SQLAlchemy (``ray-enterprise --help`` stays quick)."""

from __future__ import annotations

import enum


class Scope(str, enum.Enum):
    """What a key may do; routes of the management API each require one."""

    STATUS_READ = "status:read"
    CONFIG_READ = "config:read"
    CONFIG_WRITE = "config:write"
    ALERTS_ACK = "alerts:ack"
    SERVICES_ADMIN = "services:admin"
    AUDIT_READ = "audit:read"


ALL_SCOPES = frozenset(s.value for s in Scope)
