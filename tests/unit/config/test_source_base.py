from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from ray_enterprise.config.sources import ConfigSource, describe_error
from tests.support import FakeClock

PLANTED = "planted-base-secret-55"


class ScriptedSource(ConfigSource):
    """Returns or raises what the test puts in ``script``, one step per read."""

    layer = "database"

    def __init__(self, clock: Any) -> None:
        super().__init__(name="scripted", poll_interval=0.0, clock=clock)
        self.script: list[Any] = []

    async def _read(self) -> dict[str, Any]:
        step = self.script.pop(0) if self.script else {"a": {"b": 1}}
        if isinstance(step, BaseException):
            raise step
        return step


def test_a_failing_read_keeps_last_good_values_and_reports() -> None:
    clock = FakeClock(100.0)
    source = ScriptedSource(clock)
    source.script = [{"a": {"b": 1}}, ConnectionError("refused")]

    async def run() -> None:
        assert await source.load() == {"a": {"b": 1}}
        clock.now = 200.0
        assert await source.load() == {"a": {"b": 1}}  # no raise, last good values

    asyncio.run(run())
    health = source.health()
    assert not health.ok
    assert health.last_error == "ConnectionError: refused"
    assert (health.last_success_at, health.last_failure_at) == (100.0, 200.0)
    assert health.consecutive_failures == 1
    assert health.to_dict()["ok"] is False


def test_watch_yields_on_failure_and_recovery_but_not_on_repeats() -> None:
    source = ScriptedSource(FakeClock(100.0))
    source.script = [
        {"a": {"b": 1}},
        ConnectionError("down"),
        ConnectionError("down"),
        {"a": {"b": 1}},
        {"a": {"b": 2}},
    ]

    async def run() -> list[tuple[bool, bool, dict[str, Any]]]:
        await source.load()
        seen = []
        watch = source.watch()
        for _ in range(3):
            u = await asyncio.wait_for(watch.__anext__(), 2.0)
            seen.append((u.health.ok, u.values_changed, u.values))
        await watch.aclose()
        return seen

    assert asyncio.run(run()) == [
        (False, False, {"a": {"b": 1}}),
        (True, False, {"a": {"b": 1}}),
        (True, True, {"a": {"b": 2}}),
    ]


def test_failures_are_logged_once_per_reason_without_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = ScriptedSource(FakeClock(100.0))
    stmt_error = OperationalError("INSERT INTO t VALUES (?)", (PLANTED,), Exception("locked"))
    source.script = [stmt_error, stmt_error]
    with caplog.at_level(logging.INFO, logger="ray_enterprise.config.sources"):
        asyncio.run(source.load())
        asyncio.run(source.load())
    assert len(caplog.records) == 1
    assert PLANTED not in caplog.text and PLANTED not in str(source.health())
    assert "locked" in caplog.text
    assert "scripted" in repr(source) and "{" not in repr(source)


def test_describe_error_strips_url_passwords() -> None:
    text = describe_error(RuntimeError("cannot reach postgresql://u:pw-" + PLANTED + "@h/db"))
    assert PLANTED not in text
