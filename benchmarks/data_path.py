"""Data path: calls through the handle from get_service() vs a bare actor handle.

Ours calls ``echo`` on a registered ``Service`` (whose public methods are traced: a span per
call, continuing the caller's trace); bare calls the same ``echo`` on a plain Ray actor class.
Blocks are interleaved, and the side that runs first alternates from block to block, so that
noise and warm-up on a shared machine fall on both. Target ratio 1.00 +/- 0.05: the registry
is not on the path, only the span is.

    python benchmarks/data_path.py --calls 2000 --blocks 10
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import ray

from benchmarks._common import median, start_ray, write_result
from ray_enterprise.spec import ServiceSpec


class BareEcho:
    """The same method on a plain actor: no service base class, no tracing."""

    async def echo(self, value: Any) -> Any:
        return value


def block(handle: object, calls: int, batch: int) -> float:
    began = time.perf_counter()
    for _ in range(calls // batch):
        ray.get([handle.echo.remote(1) for _ in range(batch)])  # type: ignore[attr-defined]
    return (time.perf_counter() - began) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1, help="calls in flight at once")
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()
    start_ray(args.num_cpus)
    import ray_enterprise

    registry = ray_enterprise.connect().registry
    registry.register_app_sync(
        [
            ServiceSpec.model_validate(
                {"name": "echo", "class": "ray_enterprise.examples.faulty:FaultyService"}
            )
        ]
    )
    registry.start_all_sync(timeout_s=120)
    ours = registry.get_service_sync("echo")
    bare = ray.remote(BareEcho).options(num_cpus=0).remote()
    block(ours, 200, args.batch)  # warm both up
    block(bare, 200, args.batch)
    ours_t, bare_t = [], []
    for index in range(args.blocks):
        sides = [(ours, ours_t), (bare, bare_t)]
        for handle, times in sides if index % 2 == 0 else sides[::-1]:
            times.append(block(handle, args.calls, args.batch))
    ratio = median(ours_t) / median(bare_t)
    print(
        f"per call (batch {args.batch}): via get_service {median(ours_t) * 1e6:.1f} us, "
        f"bare actor {median(bare_t) * 1e6:.1f} us, ratio = {ratio:.3f} (target 1.00 +/- 0.05)"
    )
    write_result(
        "data_path", {"ours_s": ours_t, "bare_s": bare_t, "batch": args.batch, "ratio": ratio}
    )
    ray.kill(bare)
    ray_enterprise.shutdown_system()
    ray.shutdown()


if __name__ == "__main__":
    main()
