"""observability.otlp_endpoint: spans of a driver, a service and a system actor reach a real
OTLP receiver over HTTP/protobuf, then over gRPC, each under its own ``service.name``.

The session's Ray was started without Ray's tracing startup hook, so the test does what
``ray start --tracing-startup-hook`` does at cluster start (it writes Ray's hook key into the
GCS) for its own duration; the worker processes it starts (pinned to a runtime_env of their
own, so they are new) run the hook as they connect. The receiver (otlp_receiver.py) decodes
with the official opentelemetry-proto messages: no collector binary is installable here.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
import ray.cloudpickle
from ray._private import ray_constants
from ray.experimental import internal_kv

from ray_enterprise.config.actor import get_config_handle, remove_config_actor
from ray_enterprise.config.settings import ConfigSettings
from ray_enterprise.observability import tracing
from ray_enterprise.observability.central import ObservabilityActor
from ray_enterprise.observability.otlp import HOOK, publish_export_settings
from ray_enterprise.observability.platform import observability_section
from tests.integration.observability.otlp_receiver import OtlpReceiver
from tests.support import wait_for

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

PROBE = "otlp-probe-central"


class Echo:
    """A service-like actor: its method is a span of service ``otlp-echo`` that calls the
    system actor, so Ray's hook traces that call on both sides."""

    async def work(self, probe: Any) -> str:
        with tracing.traced("echo.work", "otlp-echo") as span:
            await probe.ping.remote()
            return span.trace_id


@pytest.fixture
def cluster_hook(ray_session: None, tmp_path: Path) -> Iterator[Any]:
    remove_config_actor()
    config = get_config_handle(
        create=True, settings=ConfigSettings(database_url=f"sqlite:///{tmp_path / 'c.db'}")
    )
    internal_kv._internal_kv_put(
        b"tracing_startup_hook", HOOK.encode(), namespace=ray_constants.KV_NAMESPACE_TRACING
    )
    try:
        yield config
    finally:
        internal_kv._internal_kv_del(
            b"tracing_startup_hook", namespace=ray_constants.KV_NAMESPACE_TRACING
        )
        ray.get(config.set_value.remote("observability.otlp_endpoint", None))
        publish_export_settings(observability_section())  # nowhere again, for every process
        remove_config_actor()


def point_at(config: Any, endpoint: str, protocol: str) -> None:
    """Change the config and publish it as boot_observability does."""
    ray.get(config.set_value.remote("observability.otlp_protocol", protocol))
    ray.get(config.set_value.remote("observability.otlp_endpoint", endpoint))
    publish_export_settings(observability_section())


def test_spans_of_every_process_reach_an_otlp_receiver_over_http_and_grpc(
    cluster_hook: Any,
) -> None:
    config = cluster_hook
    fresh = {"env_vars": {"RE_OTLP_RUN": uuid.uuid4().hex}}  # new processes: they run the hook
    with OtlpReceiver() as receiver:
        point_at(config, receiver.http_url, "http/protobuf")
        probe = (
            ray.remote(ObservabilityActor)
            .options(name=PROBE, num_cpus=0, runtime_env=fresh)
            .remote(prometheus_enabled=False)
        )
        echo = ray.remote(Echo).options(num_cpus=0, runtime_env=fresh).remote()
        try:
            for protocol, endpoint in (("http", receiver.http_url), ("grpc", receiver.grpc_url)):
                if protocol == "grpc":
                    point_at(config, endpoint, "grpc")
                wanted = {"otlp-driver", "otlp-echo", PROBE}

                def arrived(protocol: str = protocol, wanted: set[str] = wanted) -> set[str]:
                    with tracing.traced("driver.op", "otlp-driver"):
                        ray.get(echo.work.remote(probe), timeout=60)
                    seen = {service for service, _, _ in receiver.spans(protocol)}
                    return wanted <= seen and seen

                seen = wait_for(arrived, timeout=60, interval=1.0, what=f"spans over {protocol}")
                assert "unknown_service:python" not in seen
            names = {(s, n) for s, n, _ in receiver.spans("grpc")}
            assert ("otlp-echo", "echo.work") in names
            # Ray's own span of the call, exported by the system actor's process.
            assert any(s == PROBE and "ping" in n for s, n in names), names
        finally:
            ray.kill(echo)
            ray.kill(probe)
