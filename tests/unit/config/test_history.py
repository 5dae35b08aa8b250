from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pydantic import SecretStr

from ray_enterprise.config.errors import ConfigVersionNotFoundError
from ray_enterprise.config.history import ConfigHistory
from ray_enterprise.config.merge import REDACTED, diff_documents, restore_secrets
from ray_enterprise.storage import default_db_url, make_engine
from tests.support import FakeClock

PLANTED = "planted-history-secret-91"


@pytest.fixture
def history(tmp_path: Path) -> ConfigHistory:
    return ConfigHistory(
        make_engine(f"sqlite:///{tmp_path / 'state.db'}"), clock=FakeClock(1000.0, step=1.0)
    )


def test_versions_are_numbered_from_one_with_source_time_and_diff(history: ConfigHistory) -> None:
    a, b = {"cache": {"enabled": True}}, {"cache": {"enabled": False}}
    r1 = history.record(a, diff_documents({}, a), "files")
    r2 = history.record(b, diff_documents(a, b), "environment")
    assert (r1.version, r2.version) == (1, 2)
    assert (r1.created_at, r2.created_at) == (1001.0, 1002.0)
    assert [r.version for r in history.history()] == [1, 2]
    got = history.get(2)
    assert got.source == "environment" and got.document == b
    assert got.diff.changed_sections == ("cache",)
    assert history.latest_version() == 2 and history.latest() == got
    assert [r.version for r in history.history(since=1)] == [2]
    assert [r.version for r in history.history(limit=1)] == [2]


def test_secrets_are_stored_redacted_and_rollback_restores_live_ones(
    history: ConfigHistory, tmp_path: Path
) -> None:
    doc = {"security": {"jwt_secret": SecretStr(PLANTED), "audit_enabled": False}}
    history.record(doc, diff_documents({}, doc), "vault")
    assert PLANTED not in (tmp_path / "state.db").read_bytes().decode("latin-1")
    old = history.get(1)
    assert old.document["security"]["jwt_secret"] == REDACTED
    assert PLANTED not in repr(old) and PLANTED not in str(old.to_dict())
    restored = restore_secrets(old.document, doc)
    assert restored["security"]["jwt_secret"].get_secret_value() == PLANTED


def test_unknown_version_says_which_exist(history: ConfigHistory) -> None:
    with pytest.raises(ConfigVersionNotFoundError, match="no version recorded yet"):
        history.get(1)
    history.record({}, diff_documents({}, {}), "defaults")
    with pytest.raises(ConfigVersionNotFoundError, match="from 1 to 1"):
        history.get(7)


def test_concurrent_writers_get_gap_free_distinct_numbers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    writers = [ConfigHistory(make_engine(url)) for _ in range(4)]
    errors: list[BaseException] = []

    def write(h: ConfigHistory) -> None:
        try:
            for i in range(10):
                h.record({"x": {"i": i}}, diff_documents({}, {"x": {"i": i}}), "t")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(h,)) for h in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [r.version for r in writers[0].history()] == list(range(1, 41))


def test_history_survives_a_new_engine_on_the_same_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    ConfigHistory(make_engine(url)).record({"a": {"b": 1}}, diff_documents({}, {}), "files")
    assert ConfigHistory(make_engine(url)).latest_version() == 1


def test_default_url_honours_env_and_home(tmp_path: Path) -> None:
    assert default_db_url({"RAY_ENTERPRISE_DB_URL": "postgresql://x/y"}) == "postgresql://x/y"
    assert (
        default_db_url({"RAY_ENTERPRISE_HOME": str(tmp_path)}) == f"sqlite:///{tmp_path}/state.db"
    )
