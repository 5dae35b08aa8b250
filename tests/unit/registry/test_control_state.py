"""The registry's durable copy of what should run: ordered, latest-wins writes on a thread of
their own, retried while the database is away, and read back for `up --restore`."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from ray_enterprise.registry.control_state import DurableMirror, is_durable, read_durable
from ray_enterprise.storage import make_engine
from tests.support import FakeClock


def _engine(tmp_path: Path) -> sa.Engine:
    return make_engine(f"sqlite:///{tmp_path / 'state.db'}", create=False)


def test_only_the_keys_that_say_what_should_run_are_durable() -> None:
    assert is_durable("registry/spec/api") and is_durable("registry/record/api")
    assert is_durable("registry/desired")
    assert is_durable("registry/app")  # the app's auto_shutdown: --restore keeps it
    assert not is_durable("registry/reported") and not is_durable("registry/routes/api")
    assert not is_durable("registry/shutdown")  # why it stopped itself: this run's, not kept


def test_the_newest_value_of_each_key_reaches_the_database(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    mirror = DurableMirror(lambda: engine, clock=FakeClock(50.0))
    for generation in range(1, 101):
        mirror.put("registry/record/api", {"generation": generation})
    mirror.put("registry/spec/api", {"name": "api"})
    assert mirror.flush(10)
    assert read_durable(engine) == {
        "registry/record/api": {"generation": 100},
        "registry/spec/api": {"name": "api"},
    }


def test_a_prefix_delete_erases_what_was_written_and_what_was_queued(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    mirror = DurableMirror(lambda: engine)
    mirror.put("registry/spec/a", {"name": "a"})
    assert mirror.flush(10)
    mirror.put("registry/spec/b", {"name": "b"})
    mirror.delete_prefix("registry/")
    mirror.put("registry/desired", "running")  # after the delete: kept
    assert mirror.flush(10)
    assert read_durable(engine) == {"registry/desired": "running"}


def test_writes_wait_for_a_database_that_is_away_and_none_is_lost(tmp_path: Path) -> None:
    """The first connection attempts fail (the database is down); the writes are kept and
    land once it answers, the newest value of each key winning."""
    engine = _engine(tmp_path)
    failures = {"left": 2}
    lock = threading.Lock()

    def factory() -> sa.Engine:
        with lock:
            if failures["left"]:
                failures["left"] -= 1
                raise sa.exc.OperationalError("connect", {}, Exception("database is down"))
        return engine

    mirror = DurableMirror(factory)
    mirror.put("registry/spec/api", {"name": "api", "v": 1})
    mirror.put("registry/spec/api", {"name": "api", "v": 2})
    assert mirror.flush(15)
    assert mirror.failures == 2
    assert read_durable(engine) == {"registry/spec/api": {"name": "api", "v": 2}}


def test_flush_reports_a_write_it_could_not_finish(tmp_path: Path) -> None:
    def factory() -> sa.Engine:
        raise sa.exc.OperationalError("connect", {}, Exception("database is down"))

    mirror = DurableMirror(factory)
    mirror.put("registry/desired", "running")
    assert mirror.flush(0.5) is False


@pytest.mark.parametrize("kept", [{}, {"registry/desired": "stopped"}])
def test_read_durable_of_a_database_without_an_application(tmp_path: Path, kept: dict) -> None:
    engine = _engine(tmp_path)
    if kept:
        mirror = DurableMirror(lambda: engine)
        for key, value in kept.items():
            mirror.put(key, value)
        assert mirror.flush(10)
    assert read_durable(engine) == kept


def test_a_delete_made_while_a_write_fails_is_not_undone_by_its_retry(tmp_path: Path) -> None:
    """`down` while the database is away: the failed write must not come back after it."""
    engine = _engine(tmp_path)
    attempt_started, delete_queued = threading.Event(), threading.Event()
    calls = {"n": 0}

    def factory() -> sa.Engine:
        calls["n"] += 1
        if calls["n"] == 1:  # the first write fails, after the delete below was queued
            attempt_started.set()
            delete_queued.wait(10)
            raise sa.exc.OperationalError("connect", {}, Exception("database is down"))
        return engine

    mirror = DurableMirror(factory)
    mirror.put("registry/spec/api", {"name": "api"})
    assert attempt_started.wait(10)
    mirror.delete_prefix("registry/")
    delete_queued.set()
    assert mirror.flush(15)
    assert read_durable(engine) == {}
