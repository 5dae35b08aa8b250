"""Metrics and tracing overhead, side by side with prometheus-client and the bare OTel SDK.

Three figures, each printed with its anchor and the ratio (interleaved blocks, medians, so that
noise on a shared machine falls on both sides):

1. ``record_metric`` (and a ``counter().inc()`` handle) vs prometheus-client's
   ``Counter.labels(...).inc()`` and ``Histogram.labels(...).observe()`` in the same process.
   Target <= 1.0x: recording only appends to a buffer. The recorder's flush thread runs with a
   discarding sink, so its aggregation work counts against us.
2. A span through ``start_trace``/``finish_span`` vs a bare OpenTelemetry SDK span (made current
   the same way) handed to a no-op exporter by ``SimpleSpanProcessor``, and vs the SDK's
   ``BatchSpanProcessor`` with the same exporter. Each block ends with its side's flush inside
   the clock: our processor's conversion to ``SpanRecord`` (which its flush thread does) and the
   batch processor's ``force_flush`` count, so neither side hides work on a thread. Target
   <= 1.2x against both.
3. With ``--ingest``: cluster-wide ingestion in points/s from 4 processes through the node
   collector into the central store, vs the same batches sent to a bare Ray actor that only
   counts them. Printed twice: with the recording loop inside the clock (bounded by 4 Python
   loops on 2 cores), and the pipeline alone (batches recorded beforehand, as a flush hands
   them over). The pipeline alone has a second peer, the same two hops and nothing else: a
   bare relay actor that passes each batch on to a bare counting actor. ``--ingest-blocks``
   blocks per figure after one untimed run per side, the side that runs first rotating.
   Target >= 1,000,000 points/s; ratio >= 0.8 to the bare relay, >= 0.5 to the bare actor
   (one hop fewer: see benchmarks/README.md, issue 25).

    python -m benchmarks.metrics_overhead --ops 200000 --blocks 7 [--ingest]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram as PromHistogram

from benchmarks._common import median, write_result
from ray_enterprise.observability import tracing
from ray_enterprise.observability.metric_batch import MetricBatch, MetricType
from ray_enterprise.observability.recorder import Recorder
from ray_enterprise.observability.tracing import ShippingSpanProcessor, TraceStatus

TAGS = {"endpoint": "/search"}


def per_op_ns(fn: Callable[[int], None], ops: int) -> float:
    began = time.perf_counter()
    fn(ops)
    return (time.perf_counter() - began) / ops * 1e9


def interleave(cases: dict[str, Callable[[int], None]], ops: int, blocks: int) -> dict[str, float]:
    for fn in cases.values():
        fn(ops // 10)  # warm up
    samples: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for block in range(blocks):  # each side leads in turn: drift and warm-up fall on all
        for name in names[block % len(names) :] + names[: block % len(names)]:
            samples[name].append(per_op_ns(cases[name], ops))
    return {name: median(values) for name, values in samples.items()}


def metric_cases() -> dict[str, Callable[[int], None]]:
    recorder = Recorder(sink=lambda batch: True, capacity=10_000_000)
    handle = recorder.counter("bench_hits", TAGS, "bench")
    registry = CollectorRegistry()
    prom_counter = PromCounter("bench_hits", "", ["endpoint", "service"], registry=registry)
    prom_hist = PromHistogram("bench_ms", "", ["endpoint", "service"], registry=registry)

    def ours_record(n: int) -> None:
        record = recorder.record
        for _ in range(n):
            record("response_time_ms", 125.0, MetricType.TIMER, TAGS, "enterprise_search")

    def ours_handle(n: int) -> None:
        inc = handle.inc
        for _ in range(n):
            inc()

    def prom_inc(n: int) -> None:
        for _ in range(n):
            prom_counter.labels(endpoint="/search", service="enterprise_search").inc()

    def prom_observe(n: int) -> None:
        for _ in range(n):
            prom_hist.labels(endpoint="/search", service="enterprise_search").observe(125.0)

    return {
        "record_metric": ours_record,
        "counter().inc()": ours_handle,
        "prom Counter.labels().inc()": prom_inc,
        "prom Histogram.labels().observe()": prom_observe,
    }


class NoOpExporter(SpanExporter):
    def export(self, spans: Sequence[object]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def span_cases() -> dict[str, Callable[[int], None]]:
    bare_provider = TracerProvider()
    bare_provider.add_span_processor(SimpleSpanProcessor(NoOpExporter()))
    bare = bare_provider.get_tracer("bench")
    batch_provider = TracerProvider()
    batch_processor = BatchSpanProcessor(NoOpExporter(), max_queue_size=1_000_000)
    batch_provider.add_span_processor(batch_processor)
    batched = batch_provider.get_tracer("bench")
    ours_provider = TracerProvider()
    processor = ShippingSpanProcessor(lambda spans: True)
    ours_provider.add_span_processor(processor)
    tracing._tracer = ours_provider.get_tracer("bench")  # this process ships nowhere

    def ours(n: int) -> None:
        for _ in range(n):
            span = tracing.start_trace("search_request", "enterprise_search")
            tracing.finish_span(span, TraceStatus.SUCCESS)
        processor.flush()  # what the flush thread would do later: converting every span

    def bare_sdk(n: int) -> None:
        for _ in range(n):
            with bare.start_as_current_span(
                "search_request", attributes={"service.name": "enterprise_search"}
            ):
                pass

    def batch_sdk(n: int) -> None:
        for _ in range(n):
            with batched.start_as_current_span(
                "search_request", attributes={"service.name": "enterprise_search"}
            ):
                pass
        batch_processor.force_flush()

    return {
        "start_trace+finish_span": ours,
        "bare OTel SDK span": bare_sdk,
        "OTel BatchSpanProcessor": batch_sdk,
    }


def ingest(points_per_process: int, processes: int, num_cpus: int, blocks: int) -> dict[str, Any]:
    import ray

    from benchmarks._common import start_ray
    from ray_enterprise.observability.platform import boot_observability

    start_ray(num_cpus)
    try:
        return _ingest(boot_observability(), points_per_process, processes, blocks)
    finally:
        from ray_enterprise.observability.collector import CENTRAL_NAME, NAMESPACE

        for name in ray.util.list_named_actors():
            if name == CENTRAL_NAME or name.startswith("observability_collector:"):
                ray.kill(ray.get_actor(name, namespace=NAMESPACE))
        ray.shutdown()


def rotate(
    sides: dict[str, Callable[[], float]], blocks: int, label: str
) -> dict[str, list[float]]:
    """``blocks`` rates per side after one untimed run of each (first calls to a new actor
    pay for its handle lookups and first object-store allocations); the side that leads
    rotates from block to block, so that drift falls on every side."""
    for side in sides.values():
        side()
    rates: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for block in range(blocks):
        for name in names[block % len(names) :] + names[: block % len(names)]:
            rates[name].append(sides[name]())
        shown = ", ".join(f"{name} {rates[name][-1]:,.0f}" for name in names)
        print(f"{label} block {block + 1} (points/s): {shown}", flush=True)
    return rates


def alternate(
    ours: Callable[[], float], bare: Callable[[], float], blocks: int, label: str
) -> tuple[list[float], list[float]]:
    """``blocks`` rates per side; ours leads in even blocks, bare in odd ones."""
    rates = rotate({"ours": ours, "bare": bare}, blocks, label)
    return rates["ours"], rates["bare"]


def _until(count: Callable[[], int], total: int, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (seen := count()) < total:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{seen} of {total} points arrived in {timeout_s} s")
        time.sleep(0.002)


def _central_points(central: Any) -> int:
    import ray

    return int(ray.get(central.summary.remote())["points"])


def _ingest(central: Any, points: int, processes: int, blocks: int) -> dict[str, Any]:
    import ray

    @ray.remote(num_cpus=0)
    class Sink:
        def __init__(self) -> None:
            self.points = 0

        def ingest(self, batch: MetricBatch) -> None:
            self.points += batch.point_count

        def count(self) -> int:
            return self.points

    @ray.remote(num_cpus=0)
    class Producer:
        def ready(self) -> bool:
            return True

        def ours(self, n: int) -> None:
            from ray_enterprise.observability.collector import ship_metrics

            # The default recorder's path with room for the whole burst (its default bound,
            # 100,000 points, would drop what a 1 s flush cannot take at this rate).
            recorder = Recorder(sink=ship_metrics, capacity=n + 1)
            for i in range(n):
                recorder.record("ingest_ms", 1.0, MetricType.TIMER, {"s": str(i % 8)})
            recorder.stop()  # the last flush

        def bare(self, sink: object, n: int, chunk: int) -> None:
            local = Recorder(sink=None, capacity=n + 1)
            refs = []
            for start in range(0, n, chunk):
                for i in range(start, min(start + chunk, n)):
                    local.record("ingest_ms", 1.0, MetricType.TIMER, {"s": str(i % 8)})
                refs.append(sink.ingest.remote(local.drain()))  # type: ignore[attr-defined]
            ray.get(refs)

    total = points * processes
    producers = [Producer.remote() for _ in range(processes)]  # type: ignore[attr-defined]
    sink = Sink.remote()  # type: ignore[attr-defined]
    ray.get([p.ready.remote() for p in producers] + [sink.count.remote()])  # outside the clock

    def ours() -> float:
        base = _central_points(central)
        began = time.perf_counter()
        ray.get([p.ours.remote(points) for p in producers])
        _until(lambda: _central_points(central) - base, total)
        return total / (time.perf_counter() - began)

    def bare() -> float:
        base = int(ray.get(sink.count.remote()))
        began = time.perf_counter()
        chunk = 100_000  # about what one 1 s flush carries at this rate
        ray.get([p.bare.remote(sink, points, chunk) for p in producers])
        _until(lambda: int(ray.get(sink.count.remote())) - base, total)
        return total / (time.perf_counter() - began)

    pipeline = _pipeline(central, Sink, processes, points, blocks)
    ours_rates, bare_rates = alternate(ours, bare, blocks, "recording included")
    for actor in (*producers, sink):
        ray.kill(actor)
    return {
        "ours_points_per_s": median(ours_rates),
        "bare_points_per_s": median(bare_rates),
        "ours_blocks": ours_rates,
        "bare_blocks": bare_rates,
        **pipeline,
    }


def _pipeline(
    central: Any, sink_class: Any, processes: int, points: int, blocks: int
) -> dict[str, Any]:
    """The pipeline alone: each producer has already recorded and drained its points into
    flush-sized batches (recording's cost is figure 1); the clock runs from the first ship
    until the central store (or the bare sink) counts every point."""
    import ray

    from ray_enterprise.observability.collector import flush_node_collector

    @ray.remote(num_cpus=0)
    class Shipper:
        def __init__(self, points: int, per_batch: int) -> None:
            local = Recorder(sink=None, capacity=per_batch + 1)
            self.batches = []
            for start in range(0, points, per_batch):
                for i in range(start, min(start + per_batch, points)):
                    local.record("pipe_ms", 1.0, MetricType.TIMER, {"s": str(i % 8)})
                self.batches.append(local.drain())

        def ready(self) -> bool:
            return True

        def ours(self) -> int:
            from ray_enterprise.observability.collector import ship_metrics

            for batch in self.batches:
                if not ship_metrics(batch):
                    raise RuntimeError("no collector on this node")
            return sum(b.point_count for b in self.batches)

        def bare(self, sink: Any) -> int:
            ray.get([sink.ingest.remote(b) for b in self.batches])
            return sum(b.point_count for b in self.batches)

    @ray.remote(num_cpus=0)
    class Relay:
        """The second hop and nothing else: each batch goes on to its sink as it came."""

        def __init__(self, sink: Any) -> None:
            self.sink = sink

        def ingest(self, batch: MetricBatch) -> None:
            self.sink.ingest.remote(batch)

    per_batch = 100_000  # the recorder's default bound: the most one flush carries
    shippers = [Shipper.remote(points, per_batch) for _ in range(processes)]  # type: ignore[attr-defined]
    sink, relayed = sink_class.remote(), sink_class.remote()
    relay = Relay.remote(relayed)  # type: ignore[attr-defined]
    ray.get([s.ready.remote() for s in shippers] + [sink.count.remote()])  # outside the clock
    ray.get([relay.ingest.remote(MetricBatch(ts_ms=0)), relayed.count.remote()])
    total = points * len(shippers)

    def ours() -> float:
        base = _central_points(central)
        began = time.perf_counter()
        ray.get([s.ours.remote() for s in shippers])
        # A remainder below the collector's forward size would wait for its 0.5 s timer.
        flush_node_collector()
        _until(lambda: _central_points(central) - base, total)
        return total / (time.perf_counter() - began)

    def through(first: Any, counter: Any) -> Callable[[], float]:
        def side() -> float:
            base = int(ray.get(counter.count.remote()))
            began = time.perf_counter()
            ray.get([s.bare.remote(first) for s in shippers])
            _until(lambda: int(ray.get(counter.count.remote())) - base, total)
            return total / (time.perf_counter() - began)

        return side

    rates = rotate(
        {"ours": ours, "bare": through(sink, sink), "bare relay": through(relay, relayed)},
        blocks,
        "pipeline alone",
    )
    for actor in (*shippers, sink, relay, relayed):
        ray.kill(actor)
    return {
        "pipeline_points_per_s": median(rates["ours"]),
        "pipeline_bare_points_per_s": median(rates["bare"]),
        "pipeline_relay_points_per_s": median(rates["bare relay"]),
        "pipeline_ours_blocks": rates["ours"],
        "pipeline_bare_blocks": rates["bare"],
        "pipeline_relay_blocks": rates["bare relay"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument("--blocks", type=int, default=7)
    parser.add_argument("--ingest", action="store_true", help="also measure cluster ingestion")
    parser.add_argument("--points", type=int, default=500_000, help="per recording process")
    parser.add_argument("--ingest-blocks", type=int, default=4, help="per side and figure")
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()

    m = interleave(metric_cases(), args.ops, args.blocks)
    rec, handle = m["record_metric"], m["counter().inc()"]
    inc, obs = m["prom Counter.labels().inc()"], m["prom Histogram.labels().observe()"]
    print(
        f"record_metric {rec:.0f} ns vs prometheus Counter.labels().inc() {inc:.0f} ns: "
        f"ratio = {rec / inc:.2f} (target <= 1.0)"
    )
    print(
        f"record_metric {rec:.0f} ns vs Histogram.labels().observe() {obs:.0f} ns: "
        f"ratio = {rec / obs:.2f}"
    )
    print(
        f"counter().inc() {handle:.0f} ns vs Counter.labels().inc() {inc:.0f} ns: "
        f"ratio = {handle / inc:.2f}"
    )
    s = interleave(span_cases(), args.ops // 10, args.blocks)
    ours, bare = s["start_trace+finish_span"], s["bare OTel SDK span"]
    batch = s["OTel BatchSpanProcessor"]
    print(
        f"span, flush inside the clock: start_trace+finish_span {ours / 1000:.2f} us vs bare "
        f"OTel SDK span {bare / 1000:.2f} us: ratio = {ours / bare:.2f}; vs OTel "
        f"BatchSpanProcessor {batch / 1000:.2f} us: ratio = {ours / batch:.2f} (target <= 1.2)"
    )
    result: dict[str, object] = {"metrics_ns": m, "span_ns": s}
    if args.ingest:
        rates = ingest(args.points, 4, args.num_cpus, args.ingest_blocks)
        ratio = rates["ours_points_per_s"] / rates["bare_points_per_s"]
        print(
            f"ingestion, 4 processes: {rates['ours_points_per_s']:,.0f} points/s through the "
            f"collector vs {rates['bare_points_per_s']:,.0f} points/s to a bare actor: "
            f"ratio = {ratio:.2f} (recording included)"
        )
        pipe = rates["pipeline_points_per_s"] / rates["pipeline_bare_points_per_s"]
        relay = rates["pipeline_points_per_s"] / rates["pipeline_relay_points_per_s"]
        print(
            f"pipeline alone (batches recorded beforehand): "
            f"{rates['pipeline_points_per_s']:,.0f} points/s through collector and central vs "
            f"{rates['pipeline_bare_points_per_s']:,.0f} points/s to a bare actor: "
            f"ratio = {pipe:.2f}; vs {rates['pipeline_relay_points_per_s']:,.0f} points/s "
            f"through a bare relay actor to a bare actor: ratio = {relay:.2f} "
            f"(target >= 1,000,000 points/s; ratio >= 0.8 to the relay, >= 0.5 to the bare actor)"
        )
        result["ingest"] = {
            **rates,
            "ratio": ratio,
            "pipeline_ratio": pipe,
            "pipeline_relay_ratio": relay,
        }
    write_result("metrics_overhead", result)


if __name__ == "__main__":
    main()
