"""The instrumentation decorator on a real Serve deployment, called over real HTTP: request
metrics reach the central store, and the replica's span joins the caller's trace."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
import ray.cloudpickle
import requests
from ray import serve

from ray_enterprise.config.actor import get_config_handle
from ray_enterprise.observability.platform import EnterpriseObservabilityPlatform, flush_all
from ray_enterprise.observability.tracing import start_trace
from ray_enterprise.security.apikeys import Scope
from ray_enterprise.serve.instrument import ERRORS, LATENCY, REQUESTS, instrument_deployment
from tests.integration.serve import sample_app
from tests.integration.serve.conftest import Api
from tests.support import wait_for

ray.cloudpickle.register_pickle_by_value(sample_app)
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

pytestmark = pytest.mark.timeout(300)
APP = "instrumented_sample"


@pytest.fixture(scope="module")
def greeter(api: Api) -> Iterator[str]:
    deployment: Any = sample_app.Greeter
    serve.run(deployment.bind(), name=APP, route_prefix="/greet")
    yield f"http://127.0.0.1:{api.port}/greet"
    serve.delete(APP)


def test_requests_errors_and_latency_are_recorded_per_deployment(greeter: str) -> None:
    answers = [requests.get(greeter, params={"name": str(i)}, timeout=60) for i in range(5)]
    assert [a.text for a in answers] == [f"hello {i}" for i in range(5)]
    failed = requests.get(greeter, params={"fail": "1"}, timeout=60)
    assert failed.status_code == 500
    labels = {"deployment": "Greeter", "operation": "Greeter.__call__", "service": "Greeter"}
    platform = EnterpriseObservabilityPlatform()

    def reached(name: str, field: str, at_least: float) -> bool:
        found = platform.get_metric_stats(name, labels)
        return found is not None and found[field] >= at_least

    # Counters arrive aggregated per flush (sum of increments); timers keep every duration.
    wait_for(lambda: reached(REQUESTS, "total_sum", 6), timeout=60, what="6 requests counted")
    wait_for(lambda: reached(ERRORS, "total_sum", 1), timeout=60, what="1 error counted")
    wait_for(lambda: reached(LATENCY, "total_count", 6), timeout=60, what="6 latencies")
    assert platform.get_metric_stats(ERRORS, labels)["total_sum"] == 1  # type: ignore[index]


def test_the_replica_span_joins_the_callers_trace_and_names_itself_back(
    greeter: str, api: Api
) -> None:
    caller = start_trace("checkout", "web-frontend")
    traceparent = f"00-{caller.trace_id}-{caller.span_id}-01"
    answer = requests.get(greeter, headers={"traceparent": traceparent}, timeout=60)
    caller.finish()
    flush_all()
    assert answer.text == "hello world"
    version, trace_id, span_id, flags = answer.headers["traceresponse"].split("-")
    assert (version, trace_id, flags) == ("00", caller.trace_id, "01")
    assert span_id != caller.span_id
    platform = EnterpriseObservabilityPlatform()

    def joined() -> list[object]:
        return [s for s in platform.get_trace(caller.trace_id) if s.span_id == span_id]

    [span] = wait_for(joined, timeout=60, interval=0.2, what="the replica's span")
    assert span.parent_id == caller.span_id  # type: ignore[attr-defined]
    assert (span.service, span.kind) == ("Greeter", "server")  # type: ignore[attr-defined]
    # The management API shows the same trace, both spans, to a key allowed to read status.
    key = api.key(Scope.STATUS_READ).secret
    shown = requests.get(
        f"{api.url}/traces/{caller.trace_id}", headers={"X-API-Key": key}, timeout=60
    ).json()
    assert {s["span_id"] for s in shown["spans"]} == {caller.span_id, span_id}


def test_with_a_scope_the_decorator_lets_only_keys_with_that_scope_through(api: Api) -> None:
    guarded = instrument_deployment(
        serve.deployment(name="GuardedGreeter", ray_actor_options={"num_cpus": 0})(
            sample_app.plain_greeter()
        ),
        scope=Scope.STATUS_READ,
        db_url=api.db_url,
    )
    serve.run(guarded.bind(), name="guarded", route_prefix="/guarded")
    url = f"http://127.0.0.1:{api.port}/guarded"
    try:
        before = len(api.audit.records())
        missing = requests.get(url, timeout=60)
        assert (missing.status_code, missing.json()) == (401, {"error": "unauthorized"})
        wrong = requests.get(
            url, headers={"X-API-Key": api.key(Scope.AUDIT_READ).secret}, timeout=60
        )
        assert (wrong.status_code, wrong.json()) == (403, {"error": "forbidden"})
        reader = api.key(Scope.STATUS_READ).secret
        allowed = requests.get(url, headers={"Authorization": f"Bearer {reader}"}, timeout=60)
        assert (allowed.status_code, allowed.text) == (200, "hello world")
        denials = [r for r in api.audit.records()[before:] if r.outcome == "denied"]
        assert [(r.target, r.to_dict()["details"]["reason"]) for r in denials][:1] == [
            ("GuardedGreeter", "missing")
        ]
        assert [r.to_dict()["details"]["reason"] for r in denials][1:] == ["scope"]
    finally:
        serve.delete("guarded")


def test_a_config_section_reaches_every_replica_and_follows_changes(api: Api) -> None:
    config = get_config_handle(create=False)
    ray.get(config.set_value.remote("services.greeter.greeting", "hi"))
    configured = instrument_deployment(
        serve.deployment(name="ConfigGreeter", ray_actor_options={"num_cpus": 0})(
            sample_app.config_greeter()
        ),
        config_section="services.greeter",
    )
    serve.run(configured.bind(), name="configured", route_prefix="/configured")
    url = f"http://127.0.0.1:{api.port}/configured"
    try:
        # The replica has the section from its start, and on_config saw each version.
        wait_for(lambda: requests.get(url, timeout=60).text == "hi 1", what="the section")
        ray.get(config.set_value.remote("services.greeter.greeting", "hey"))
        wait_for(lambda: requests.get(url, timeout=60).text == "hey 2", what="the change")
    finally:
        serve.delete("configured")
