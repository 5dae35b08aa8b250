"""The audit trail against someone who can write its database but holds neither the audit key
nor the checkpoint file: a cut tail, a deleted trail and a chain rebuilt without the key are
each found and named."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from ray_enterprise.security.audit import AuditLog, audit_head, audit_records
from ray_enterprise.security.audit_anchor import Anchors, FileAnchor, trail_id
from ray_enterprise.security.audit_key import (
    KEY_ENV,
    KEY_FILE_ENV,
    AuditKeyError,
    load_audit_key,
)
from tests.unit.security.fakes import FakeClock, memory_engine

KEY = b"k" * 32


def anchored_trail(
    tmp_path: Path, n: int = 6, key: bytes = KEY
) -> tuple[AuditLog, sa.Engine, FakeClock]:
    engine, clock = memory_engine(), FakeClock()
    anchors = Anchors("trail-1", [FileAnchor(tmp_path / "anchor.json")], clock=clock)
    log = AuditLog(engine, clock=clock, key=key, anchors=anchors)
    for i in range(n):
        clock.advance(60)
        log.append(f"user{i}", "config.change", target=f"cache.size={i}", details={"i": i})
    return log, engine, clock


def findings(log: AuditLog) -> list[tuple[int, str]]:
    return [(p.seq, p.kind) for p in log.verify().problems]


def test_an_untouched_trail_verifies_against_its_checkpoint(tmp_path: Path) -> None:
    log, _, _ = anchored_trail(tmp_path)
    report = log.verify()
    assert report.ok, report.problems
    assert report.checkpoint is not None and report.checkpoint["seq"] == 6
    assert str(tmp_path / "anchor.json") in report.checkpoint["where"]


def test_cutting_the_tail_and_moving_the_head_is_found_by_the_checkpoint(tmp_path: Path) -> None:
    log, engine, _ = anchored_trail(tmp_path)
    fourth = log.records()[3]
    with engine.begin() as conn:  # what the reviewer did: the chain itself stays consistent
        conn.execute(audit_records.delete().where(audit_records.c.seq > 4))
        conn.execute(audit_head.update().values(seq=4, hash=fourth.hash))
    report = log.verify()
    assert [(p.seq, p.kind) for p in report.problems] == [(5, "truncated")]
    assert "records 5..6 are missing" in report.problems[0].message
    assert "anchor.json" in report.problems[0].message


def test_deleting_every_record_and_the_head_is_found(tmp_path: Path) -> None:
    log, engine, _ = anchored_trail(tmp_path)
    with engine.begin() as conn:
        conn.execute(audit_records.delete())
        conn.execute(audit_head.delete())
    report = log.verify()
    assert not report.ok and report.checked == 0
    assert [(p.seq, p.kind) for p in report.problems] == [(1, "truncated")]
    assert "records 1..6 are missing" in report.problems[0].message


def test_a_chain_rebuilt_without_the_key_is_found(tmp_path: Path) -> None:
    log, engine, clock = anchored_trail(tmp_path, n=4)
    originals = log.records()
    with engine.begin() as conn:
        conn.execute(audit_records.delete())
        conn.execute(audit_head.delete())
    # The forger knows the format and writes the same story, with their own key.
    forger = AuditLog(engine, clock=clock, key=b"f" * 32)
    for rec in originals:
        clock.now = rec.at
        forger.append(rec.actor, rec.action, target=rec.target, details=json.loads(rec.details))
    found = findings(log)
    assert (1, "edited") in found  # every MAC is wrong under the real key
    assert (4, "altered") in found  # and the head is not the one the checkpoint signed


def test_a_checkpoint_edited_by_hand_is_reported_as_forged(tmp_path: Path) -> None:
    log, engine, _ = anchored_trail(tmp_path)
    path = tmp_path / "anchor.json"
    second = log.records()[1]
    forged = {**json.loads(path.read_text()), "seq": 2, "hash": second.hash}
    path.write_text(json.dumps(forged))  # moved back with the tail, but its MAC is not redone
    with engine.begin() as conn:
        conn.execute(audit_records.delete().where(audit_records.c.seq > 2))
        conn.execute(audit_head.update().values(seq=2, hash=second.hash))
    [problem] = log.verify().problems
    assert problem.kind == "checkpoint" and "anchor.json is forged" in problem.message


def test_the_checkpoint_only_moves_forward(tmp_path: Path) -> None:
    store = FileAnchor(tmp_path / "a.json")
    anchors = Anchors("t", [store])
    anchors.advance(KEY, 5, "h5")
    anchors.advance(KEY, 3, "h3")  # a slower writer finishing late
    assert json.loads((tmp_path / "a.json").read_text())["seq"] == 5
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o600


def test_retention_then_verification_across_the_cut(tmp_path: Path) -> None:
    log, _, _ = anchored_trail(tmp_path)
    assert log.apply_retention(log.records()[3].at) == 3
    report = log.verify()
    assert report.ok, report.problems
    assert report.checkpoint is not None and report.checkpoint["seq"] == 7  # the cut's record


def test_trail_ids_name_the_database_not_its_password() -> None:
    one = trail_id("postgresql://admin:hunter2@db:5432/app")
    assert one == trail_id("postgresql://admin:other@db:5432/app")
    assert one != trail_id("postgresql://admin:hunter2@db:5432/other")
    engine = sa.create_engine("sqlite://")
    in_a = engine.execution_options(schema_translate_map={None: "a"})
    in_b = engine.execution_options(schema_translate_map={None: "b"})
    assert len({trail_id(engine), trail_id(in_a), trail_id(in_b)}) == 3


# -- the key ----------------------------------------------------------------------------------


def test_the_key_is_generated_once_into_a_private_file_outside_the_database(
    tmp_path: Path,
) -> None:
    env = {"RAY_ENTERPRISE_HOME": str(tmp_path / "home")}
    key = load_audit_key(env)
    path = tmp_path / "home" / "audit.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(key) >= 32
    assert load_audit_key(env) == key  # the next boot reads the same one


def test_the_environment_wins_and_a_short_key_is_refused_naming_where(tmp_path: Path) -> None:
    env = {"RAY_ENTERPRISE_HOME": str(tmp_path), KEY_ENV: "x" * 40}
    assert load_audit_key(env) == b"x" * 40
    with pytest.raises(AuditKeyError, match=r"\$RAY_ENTERPRISE_AUDIT_KEY: has 5 characters"):
        load_audit_key({KEY_ENV: "short"})
    assert not (tmp_path / "audit.key").exists()


def test_a_configured_key_file_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nope.key"
    with pytest.raises(AuditKeyError, match=r"nope\.key") as raised:
        load_audit_key({KEY_FILE_ENV: str(missing)})
    assert "cannot be read" in str(raised.value)
    given = tmp_path / "given.key"
    given.write_text("g" * 64 + "\n")
    assert load_audit_key({KEY_FILE_ENV: str(given)}) == b"g" * 64
