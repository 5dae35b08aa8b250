"""A clock tests move by hand, and an in-memory database for the key store and audit trail."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from tests import support

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class FakeClock(support.FakeClock[float]):
    """The shared fake clock, starting at the security tests' epoch."""

    def __init__(self, now: float = T0) -> None:
        super().__init__(now)


def memory_engine() -> sa.Engine:
    """One shared in-memory SQLite connection: fast, and gone when the test ends."""
    return sa.create_engine(
        "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
    )
