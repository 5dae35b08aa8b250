"""The audit chain: every edit, deletion, reordering and truncation is found and named."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_enterprise.security.audit import AuditLog, AuditSink, audit_head, audit_records
from ray_enterprise.security.errors import AuditError
from tests.unit.security.fakes import FakeClock, memory_engine


def trail(n: int = 5, key: bytes | None = None) -> tuple[AuditLog, sa.Engine, FakeClock]:
    engine, clock = memory_engine(), FakeClock()
    log = AuditLog(engine, clock=clock, key=key)
    for i in range(n):
        clock.advance(60)
        log.append(f"user{i}", "config.change", target=f"cache.size={i}", details={"i": i})
    return log, engine, clock


def tamper(engine: sa.Engine, seq: int, **values: object) -> None:
    with engine.begin() as conn:
        conn.execute(audit_records.update().where(audit_records.c.seq == seq).values(**values))


def kinds(log: AuditLog) -> list[tuple[int, str]]:
    return [(p.seq, p.kind) for p in log.verify().problems]


def test_an_untouched_trail_verifies() -> None:
    log, _, _ = trail()
    report = log.verify()
    assert report.ok and report.checked == 5 and report.problems == []


def test_an_empty_trail_verifies() -> None:
    assert AuditLog(memory_engine()).verify().ok


def test_records_link_to_the_one_before() -> None:
    log, _, _ = trail(3)
    first, second, third = log.records()
    assert (second.prev_hash, third.prev_hash) == (first.hash, second.hash)


@pytest.mark.parametrize(
    "field", [{"actor": "mallory"}, {"outcome": "denied"}, {"details": '{"i":99}'}, {"at": 1.0}]
)
def test_an_edited_record_is_named(field: dict[str, object]) -> None:
    log, engine, _ = trail()
    tamper(engine, 3, **field)
    assert kinds(log) == [(3, "edited")]


def test_a_deleted_record_is_named() -> None:
    log, engine, _ = trail()
    with engine.begin() as conn:
        conn.execute(audit_records.delete().where(audit_records.c.seq == 2))
    report = log.verify()
    assert [(p.seq, p.kind) for p in report.problems] == [(2, "deleted")]
    assert "record 2 deleted" in report.problems[0].message


def test_deleting_and_renumbering_still_breaks_the_chain() -> None:
    log, engine, _ = trail(4)
    with engine.begin() as conn:
        conn.execute(audit_records.delete().where(audit_records.c.seq == 2))
        for seq in (3, 4):
            conn.execute(
                audit_records.update().where(audit_records.c.seq == seq).values(seq=seq - 1)
            )
        conn.execute(audit_head.update().values(seq=3))
    assert (2, "broken") in kinds(log)


def test_swapped_records_are_reported_as_reordered() -> None:
    log, engine, _ = trail()
    two, three = log.records()[1:3]
    with engine.begin() as conn:
        conn.execute(audit_records.delete().where(audit_records.c.seq.in_([2, 3])))
        conn.execute(audit_records.insert().values(**{**three.__dict__, "seq": 2}))
        conn.execute(audit_records.insert().values(**{**two.__dict__, "seq": 3}))
    found = kinds(log)
    assert (2, "reordered") in found and (3, "reordered") in found
    assert all(kind != "edited" for _, kind in found)  # the contents themselves are intact


def test_records_cut_off_the_end_are_found_by_the_head() -> None:
    log, engine, _ = trail()
    with engine.begin() as conn:
        conn.execute(audit_records.delete().where(audit_records.c.seq >= 4))
    report = log.verify()
    assert [(p.seq, p.kind) for p in report.problems] == [(4, "truncated")]
    assert "records 4..5" in report.problems[0].message


def test_details_that_look_secret_are_redacted() -> None:
    log, _, _ = trail(0)
    rec = log.append(
        "ci", "config.change", details={"vault_token": "s.abc", "db": {"password": "p"}}
    )
    assert "s.abc" not in rec.details and '"p"' not in rec.details
    assert log.verify().ok


def test_a_keyed_chain_cannot_be_recomputed_without_the_key() -> None:
    log, engine, clock = trail(3, key=b"k" * 32)
    forger = AuditLog(engine, clock=clock)  # knows the format, not the key
    forged = forger.records()[1]
    recomputed = forger._digest(forged.content())
    tamper(engine, 2, hash=recomputed)
    assert (2, "edited") in kinds(log)


def test_concurrent_writers_link_into_one_chain() -> None:
    engine, clock = memory_engine(), FakeClock()
    one, two = AuditLog(engine, clock=clock), AuditLog(engine, clock=clock)
    for i in range(10):
        (one if i % 2 else two).append("w", "x", details={"i": i})
    assert one.verify().ok and [r.seq for r in one.records()] == list(range(1, 11))


# -- retention --------------------------------------------------------------------------------


def test_retention_deletes_old_records_and_the_chain_still_verifies() -> None:
    log, _, _ = trail(6)
    cutoff = log.records()[3].at  # records 1..3 are older
    assert log.apply_retention(cutoff) == 3
    report = log.verify()
    assert report.ok, report.problems
    assert report.anchored_at == 3
    seqs = [(r.seq, r.kind, r.action) for r in log.records()]
    assert seqs[0] == (3, "anchor", "audit.anchor")
    assert seqs[-1][2] == "audit.retention"


def test_retention_twice_moves_the_anchor() -> None:
    log, _, clock = trail(6)
    log.apply_retention(log.records()[2].at)
    clock.advance(60)
    log.append("u", "later")
    log.apply_retention(log.records()[-1].at)
    report = log.verify()
    assert report.ok, report.problems
    assert [r.kind for r in log.records()].count("anchor") == 1


def test_tampering_after_retention_is_still_found() -> None:
    log, engine, _ = trail(6)
    log.apply_retention(log.records()[3].at)
    tamper(engine, 5, actor="mallory")
    assert kinds(log) == [(5, "edited")]


def test_an_edited_anchor_is_found() -> None:
    log, engine, _ = trail(6)
    log.apply_retention(log.records()[3].at)
    tamper(engine, 3, details='{"deleted":0}')
    assert kinds(log) == [(3, "anchor")]


def test_retention_refuses_to_erase_evidence() -> None:
    log, engine, _ = trail(4)
    tamper(engine, 1, actor="mallory")
    with pytest.raises(AuditError, match="record 1 was edited"):
        log.apply_retention(log.records()[-1].at + 1)
    assert len(log.records()) == 4


def test_retention_with_nothing_old_enough_changes_nothing() -> None:
    log, _, _ = trail(3)
    assert log.apply_retention(0.0) == 0
    assert len(log.records()) == 3


@settings(max_examples=8, deadline=None)
@given(
    n=st.integers(2, 12),
    data=st.data(),
    field=st.sampled_from(["actor", "action", "target", "outcome", "details"]),
)
def test_any_single_edit_is_found_at_its_record(n: int, data: st.DataObject, field: str) -> None:
    log, engine, _ = trail(n)
    seq = data.draw(st.integers(1, n))
    tamper(engine, seq, **{field: '"x"'})
    assert kinds(log) == [(seq, "edited")]


@settings(max_examples=8, deadline=None)
@given(n=st.integers(3, 12), data=st.data())
def test_any_deletion_is_found(n: int, data: st.DataObject) -> None:
    log, engine, _ = trail(n)
    seq = data.draw(st.integers(1, n))
    with engine.begin() as conn:
        conn.execute(audit_records.delete().where(audit_records.c.seq == seq))
    found = kinds(log)
    assert found == [(seq, "deleted")] or found == [(seq, "truncated")]


def test_the_sink_counts_a_record_it_cannot_write_and_writes_once_the_database_is_back(
    tmp_path: Path,
) -> None:
    """A system actor's action stands even when its record cannot be written."""
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the database's directory should be")
    url = f"sqlite:///{blocked / 'audit.db'}"
    sink = AuditSink(url)
    assert not sink.write("config:files", "config.applied", target="version 2")
    assert (sink.written, sink.failures) == (0, 1)
    blocked.unlink()  # the operator fixes the path: the next record goes through
    assert sink.write("config:files", "config.applied", target="version 3")
    log = AuditLog(sa.create_engine(url), create=False)
    assert [r.target for r in log.records()] == ["version 3"] and log.verify().ok
