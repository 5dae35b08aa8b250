"""Security events are counters a metrics pipeline can read."""

from __future__ import annotations

import click
import pytest

from ray_enterprise.security.cli import parse_duration
from ray_enterprise.security.events import AUTH_FAILURES, RATE_LIMITED, SecurityEvents


def test_counts_are_kept_by_metric_and_tags() -> None:
    events = SecurityEvents(metrics=False)
    events.auth_failure("invalid")
    events.auth_failure("invalid")
    events.auth_failure("expired")
    events.rate_limited("/status", 5)
    events.rate_limited("/status", 0)  # nothing to count
    assert events.snapshot() == {
        AUTH_FAILURES: {"reason=invalid": 2, "reason=expired": 1},
        RATE_LIMITED: {"route=/status": 5},
    }
    assert events.total(AUTH_FAILURES) == 3


def test_every_increment_is_forwarded_to_the_metrics_pipeline() -> None:
    seen: list[tuple[str, float, dict[str, str]]] = []
    events = SecurityEvents(forward=lambda *point: seen.append(point))
    events.rate_limited("/config", 3)
    assert seen == [(RATE_LIMITED, 3.0, {"route": "/config"})]


def test_a_broken_metrics_pipeline_never_breaks_counting() -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("collector gone")

    events = SecurityEvents(forward=broken)
    events.auth_failure("invalid")
    events.auth_failure("invalid")
    assert events.total(AUTH_FAILURES) == 2


def test_the_default_forward_is_record_metric_when_the_pipeline_exists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ray_enterprise.observability import metrics
    from ray_enterprise.observability.metric_batch import MetricBatch, MetricType

    batches: list[MetricBatch] = []

    def sink(batch: MetricBatch) -> bool:
        batches.append(batch)
        return True

    recorder = metrics.Recorder(sink=sink, autostart=False)
    monkeypatch.setattr(metrics, "_default", recorder)
    events = SecurityEvents()
    events.auth_failure("revoked")
    events.auth_failure("revoked")
    assert recorder.flush()
    [series] = [s for b in batches for s in b.series if s.name == AUTH_FAILURES]
    assert series.kind is MetricType.COUNTER and float(series.values.sum()) == 2.0
    assert ("reason", "revoked") in tuple(series.labels)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 2_592_000), ("1h", 3600), ("15m", 900), ("45s", 45), ("2w", 1_209_600)],
)
def test_durations_read_like_people_write_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "1y", "-1h", "h"])
def test_nonsense_durations_are_refused(text: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_duration(text)
