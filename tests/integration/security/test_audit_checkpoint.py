"""The audit checkpoint in Ray's GCS key-value store: written by the platform's writers when
Ray runs, and enough on its own to find a cut tail when the checkpoint file is gone too."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from ray_enterprise import _kv
from ray_enterprise.security.audit import (
    AuditLog,
    audit_head,
    audit_records,
    platform_audit_log,
)
from ray_enterprise.security.audit_anchor import (
    ANCHOR_DIR,
    KV_PREFIX,
    Anchors,
    FileAnchor,
    trail_id,
)
from ray_enterprise.storage import home_dir, make_engine

pytestmark = pytest.mark.timeout(120)


def test_the_kv_checkpoint_alone_finds_a_cut_tail(ray_session: None, tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'state.db'}", create=False)
    log = platform_audit_log(engine)
    for i in range(5):
        log.append("ops", "config.set", target=f"k{i}")
    trail = trail_id(engine)
    assert _kv.get(KV_PREFIX + trail)["seq"] == 5
    (home_dir() / ANCHOR_DIR / f"{trail}.json").unlink()  # the attacker also reached the file
    third = log.records()[2]
    with engine.begin() as conn:
        conn.execute(audit_records.delete().where(audit_records.c.seq > 3))
        conn.execute(audit_head.update().values(seq=3, hash=third.hash))
    [problem] = platform_audit_log(engine).verify().problems
    assert problem.kind == "truncated" and problem.seq == 4
    assert f"Ray KV {KV_PREFIX}{trail}" in problem.message
    _kv.delete(KV_PREFIX + trail)
    engine.dispose()


def test_a_cut_tail_is_found_on_sqlite_and_postgresql(engine: sa.Engine, tmp_path: Path) -> None:
    anchors = Anchors(trail_id(engine), [FileAnchor(tmp_path / "anchor.json")])
    log = AuditLog(engine, anchors=anchors)
    for i in range(4):
        log.append("ops", "key.create", target=f"k{i}")
    second = log.records()[1]
    with engine.begin() as conn:
        conn.execute(audit_records.delete().where(audit_records.c.seq > 2))
        conn.execute(audit_head.update().values(seq=2, hash=second.hash))
    [problem] = log.verify().problems
    assert (problem.seq, problem.kind) == (3, "truncated") and "records 3..4" in problem.message
