"""Keys and the audit trail on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from ray_enterprise.security.apikeys import ApiKeyStore, Scope
from ray_enterprise.security.audit import AuditLog, audit_records
from ray_enterprise.security.errors import ExpiredApiKeyError, RevokedApiKeyError
from tests.unit.security.fakes import FakeClock

pytestmark = pytest.mark.timeout(60)


def test_key_lifecycle_survives_a_new_store_on_the_same_database(engine: sa.Engine) -> None:
    clock = FakeClock()
    audit = AuditLog(engine, clock=clock)
    store = ApiKeyStore(engine, clock=clock, iterations=1000, audit=audit)
    issued = store.create([Scope.STATUS_READ, Scope.AUDIT_READ], name="ops", expires_in_s=3600)
    rotated = store.rotate(issued.key.key_id, overlap_s=60)
    other = store.create([Scope.ALERTS_ACK])
    store.revoke(other.key.key_id)

    reopened = ApiKeyStore(engine, clock=clock, iterations=1000)  # another process, say
    assert reopened.verify(rotated.secret, required=["audit:read"]).name == "ops"
    assert reopened.verify(issued.secret).key_id == issued.key.key_id  # still in its overlap
    clock.advance(60)
    with pytest.raises(ExpiredApiKeyError):
        reopened.verify(issued.secret)
    with pytest.raises(RevokedApiKeyError):
        reopened.verify(other.secret)
    statuses = {k.key_id: k.status(clock()) for k in reopened.list_keys()}
    assert statuses == {
        issued.key.key_id: "expired",
        rotated.key.key_id: "active",
        other.key.key_id: "revoked",
    }
    assert [r.action for r in audit.records()] == [
        "key.create",
        "key.rotate",
        "key.create",
        "key.revoke",
    ]
    assert AuditLog(engine).verify().ok


def test_concurrent_writers_make_one_unbroken_chain(engine: sa.Engine) -> None:
    logs = [AuditLog(engine) for _ in range(4)]
    errors: list[BaseException] = []

    def write(log: AuditLog, worker: int) -> None:
        try:
            for i in range(5):
                log.append(f"worker{worker}", "restart", target=f"svc{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(log, n)) for n, log in enumerate(logs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=50)
    assert errors == []
    report = logs[0].verify()
    assert report.ok, report.problems
    assert report.checked == 20


def test_retention_and_tampering_on_a_real_database(engine: sa.Engine) -> None:
    clock = FakeClock()
    log = AuditLog(engine, clock=clock)
    for i in range(8):
        clock.advance(3600)
        log.append("alice", "config.change", details={"version": i})
    assert log.apply_retention(log.records()[4].at) == 4
    assert log.verify().ok
    with engine.begin() as conn:
        conn.execute(audit_records.update().where(audit_records.c.seq == 6).values(actor="eve"))
    assert [(p.seq, p.kind) for p in log.verify().problems] == [(6, "edited")]
