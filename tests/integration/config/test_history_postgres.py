from __future__ import annotations

import threading

import pytest
from config_backends import pg_url
from pydantic import SecretStr
from sqlalchemy import text

from ray_enterprise.config.history import ConfigHistory
from ray_enterprise.config.merge import diff_documents
from ray_enterprise.storage import make_engine

pytestmark = pytest.mark.postgres
PLANTED = "planted-pg-history-secret-11"


def test_concurrent_writers_on_postgres_get_gap_free_numbers(
    pg_base_dsn: str, pg_schema: str
) -> None:
    url = pg_url(pg_base_dsn, pg_schema)
    engines = [make_engine(url) for _ in range(3)]
    errors: list[BaseException] = []

    def write(engine_index: int) -> None:
        history = ConfigHistory(engines[engine_index])
        try:
            for i in range(8):
                doc = {"security": {"jwt_secret": SecretStr(PLANTED)}, "n": {"i": i}}
                history.record(doc, diff_documents({}, doc), f"writer-{engine_index}")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    history = ConfigHistory(engines[0])
    assert [r.version for r in history.history()] == list(range(1, 25))
    with engines[0].connect() as conn:
        rows = conn.execute(text("select * from config_versions")).all()
    assert PLANTED not in str(rows)
    for engine in engines:
        engine.dispose()
