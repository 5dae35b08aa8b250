from __future__ import annotations

from ray_enterprise.config.events import EventLog


def test_events_are_numbered_and_read_after_a_sequence_number() -> None:
    log = EventLog(first_seq=100, clock=lambda: 5.0)
    log.emit("source_failed", "vault down", source="vault", severity="medium")
    log.reject(
        "validation",
        trigger="files",
        field="cache.default_ttl_seconds",
        source="files (app.yaml)",
        message="must be > 0",
        kept_version=3,
    )
    assert [(e.seq, e.kind) for e in log.events()] == [(100, "source_failed"), (101, "rejected")]
    assert [e.kind for e in log.events(since=100)] == ["rejected"]
    rejected = log.events()[-1]
    assert (rejected.version, rejected.field, rejected.severity) == (
        3,
        "cache.default_ttl_seconds",
        "high",
    )


def test_rejections_are_bounded_and_survive_a_restart_through_restore() -> None:
    log = EventLog(keep=2)
    for i in range(3):
        log.reject(
            "compliance", trigger="t", field=f"f{i}", source=None, message="m", kept_version=1
        )
    kept = [r.to_dict() for r in log.rejections()]
    assert [r["field"] for r in kept] == ["f1", "f2"]
    again = EventLog()
    again.restore(kept)
    assert [r.field for r in again.rejections()] == ["f1", "f2"]
