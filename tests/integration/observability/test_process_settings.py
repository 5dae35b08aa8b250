"""Per-process settings published from the config section reach a new worker process.

The settings are written to a fresh ConfigActor and published as boot_observability does; the
task runs in a process of its own (a runtime_env nobody else uses), which sets up its recorder
and tracer from them. The defaults are published again afterwards for the rest of the session.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

from ray_enterprise.config.actor import get_config_handle, remove_config_actor
from ray_enterprise.config.schema import ObservabilityFrameworkConfig
from ray_enterprise.config.settings import ConfigSettings
from ray_enterprise.observability import process_settings
from ray_enterprise.observability.platform import observability_section


@pytest.fixture
def config(ray_session: None, tmp_path: Path) -> Iterator[Any]:
    remove_config_actor()
    settings = ConfigSettings(database_url=f"sqlite:///{tmp_path / 'config.db'}")
    try:
        yield get_config_handle(create=True, settings=settings)
    finally:
        process_settings.publish(ObservabilityFrameworkConfig())
        remove_config_actor()


@ray.remote(num_cpus=0)
def recorder_and_tracer() -> tuple[float, bool]:
    from ray_enterprise.observability import metrics, tracing

    span = tracing.start_trace("sampled?", "settings-probe")
    recording = span.otel_span.is_recording()
    span.finish()
    return metrics.default_recorder().flush_interval_s, recording


def in_new_process() -> tuple[float, bool]:
    fresh = {"env_vars": {"RE_SETTINGS_RUN": uuid.uuid4().hex}}
    return tuple(ray.get(recorder_and_tracer.options(runtime_env=fresh).remote(), timeout=120))


def test_flush_interval_and_sample_rate_reach_a_new_process(config: Any) -> None:
    ray.get(config.set_value.remote("observability.flush_interval_seconds", 7))
    ray.get(config.set_value.remote("observability.trace_sample_rate", 0.0))
    process_settings.publish(observability_section())
    assert in_new_process() == (7.0, False)  # flushes every 7 s; no trace starts here

    ray.get(config.set_value.remote("observability.trace_sample_rate", 1.0))
    process_settings.publish(observability_section())
    assert in_new_process()[1] is True
