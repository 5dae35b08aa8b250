"""Serve instrumentation: requests/s through an instrumented deployment vs the same one bare.

Two Serve applications of the same class body on one Serve instance on 127.0.0.1, one with
``@instrument_deployment`` (a span per request continuing the caller's ``traceparent``, request
and error counters and a latency timer through the metrics pipeline, which is running), the
other bare. An aiohttp client keeps ``--concurrency`` requests in flight, every request carries
the same ``traceparent`` header on both sides, and blocks alternate between the two so that
noise on the shared machine falls on both. Target ratio >= 0.9. Then the same two classes are
called directly in-process, which shows what the wrapper itself adds to each request.

    python -m benchmarks.serve_api --requests 1000 --blocks 6 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import tempfile
import time
from typing import Any

import aiohttp

from benchmarks._common import median, start_ray, write_result

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def make_hello() -> type:
    """A fresh class each time: instrumenting one must not touch the other."""
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse

    class Hello:
        async def __call__(self, request: Request) -> PlainTextResponse:
            return PlainTextResponse("hello " + request.query_params.get("name", "world"))

    return Hello


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def block(url: str, requests: int, concurrency: int) -> float:
    """Requests per second for ``requests`` GETs with ``concurrency`` in flight."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"traceparent": TRACEPARENT}
    remaining = requests
    failures = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal remaining, failures
        while remaining > 0:
            remaining -= 1
            async with session.get(url, params={"name": "bench"}, headers=headers) as answer:
                await answer.read()
                failures += answer.status != 200

    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    if failures:
        raise RuntimeError(f"{failures} of {requests} requests to {url} failed")
    return requests / elapsed


async def per_call(instance: Any, calls: int) -> float:
    """Seconds per direct call of ``__call__`` with a real Starlette request, no HTTP."""
    from starlette.requests import Request

    raw = [(b"traceparent", TRACEPARENT.encode())]
    scope = {"type": "http", "method": "GET", "path": "/", "query_string": b"", "headers": raw}
    request = Request(scope)
    began = time.perf_counter()
    for _ in range(calls):
        await instance(request)
    return (time.perf_counter() - began) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000, help="requests per block")
    parser.add_argument("--blocks", type=int, default=6, help="blocks per side, alternating")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--direct-calls", type=int, default=5000, help="per in-process block")
    args = parser.parse_args()
    # Durable state of a throwaway home: a shared ~/.ray_enterprise could hold another run's
    # config, which the ConfigActor would load.
    os.environ.setdefault("RAY_ENTERPRISE_HOME", tempfile.mkdtemp(prefix="bench-serve-api-"))
    start_ray(args.num_cpus)
    from ray import serve

    import ray_enterprise
    from ray_enterprise.serve.instrument import instrument_deployment

    ray_enterprise.connect()  # the metrics and span pipeline the instrumented side ships to
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    options: dict[str, Any] = {"ray_actor_options": {"num_cpus": 0}, "max_ongoing_requests": 64}
    bare = serve.deployment(name="bare", **options)(make_hello())
    instrumented = instrument_deployment(
        serve.deployment(name="instrumented", **options)(make_hello())
    )
    serve.run(bare.bind(), name="bare", route_prefix="/bare")
    serve.run(instrumented.bind(), name="instrumented", route_prefix="/instrumented")
    urls = {side: f"http://127.0.0.1:{port}/{side}" for side in ("bare", "instrumented")}
    try:
        for url in urls.values():  # warm up: connections, replicas' first-call setup
            asyncio.run(block(url, 200, args.concurrency))
        rates: dict[str, list[float]] = {"bare": [], "instrumented": []}
        for index in range(args.blocks):
            order = ("bare", "instrumented") if index % 2 == 0 else ("instrumented", "bare")
            for side in order:
                rates[side].append(asyncio.run(block(urls[side], args.requests, args.concurrency)))
        # The same wrapper in this process, without HTTP or Serve, shipping to the same
        # pipeline: what it adds to each request.
        direct = {"bare": make_hello()(), "instrumented": instrument_deployment(make_hello())()}
        costs: dict[str, list[float]] = {"bare": [], "instrumented": []}
        for _ in range(5):
            for side, instance in direct.items():
                costs[side].append(asyncio.run(per_call(instance, args.direct_calls)))
    finally:
        serve.shutdown()
        ray_enterprise.shutdown_system()
    ours, base = median(rates["instrumented"]), median(rates["bare"])
    ratio = ours / base
    added_us = (median(costs["instrumented"]) - median(costs["bare"])) * 1e6
    print(
        f"requests/s (median of {args.blocks} blocks of {args.requests}, "
        f"{args.concurrency} in flight): instrumented {ours:.0f}, bare {base:.0f}, "
        f"ratio {ratio:.3f} (target >= 0.9)"
    )
    print(
        "blocks: instrumented "
        + " ".join(f"{r:.0f}" for r in rates["instrumented"])
        + " | bare "
        + " ".join(f"{r:.0f}" for r in rates["bare"])
    )
    print(
        f"in-process per call: instrumented {median(costs['instrumented']) * 1e6:.1f} us, "
        f"bare {median(costs['bare']) * 1e6:.1f} us: {added_us:.1f} us added, "
        f"{added_us * base / 1e4:.2f} % of a request's {1e6 / base:.0f} us through Serve here"
    )
    path = write_result(
        "serve_api",
        {
            "requests_per_block": args.requests,
            "blocks": args.blocks,
            "concurrency": args.concurrency,
            "instrumented_rps": rates["instrumented"],
            "bare_rps": rates["bare"],
            "median_instrumented_rps": ours,
            "median_bare_rps": base,
            "ratio": ratio,
            "direct_instrumented_s": costs["instrumented"],
            "direct_bare_s": costs["bare"],
            "added_us_per_request": added_us,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
