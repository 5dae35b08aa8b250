"""A clock tests move by hand, and an in-memory database for the key store and audit trail."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def memory_engine() -> sa.Engine:
    """One shared in-memory SQLite connection: fast, and gone when the test ends."""
    return sa.create_engine(
        "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
    )
