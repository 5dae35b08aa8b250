"""Anomaly detection throughput, side by side in one process.

1. The vectorised monitor a shard holds (numpy detector, baselines and rate limits as arrays)
   over 10,000 series, frame by frame: points per second. Target >= 1,000,000.
2. A river model inside our per-series path (RiverDetector.score_and_learn + baseline + rate
   limit, i.e. AnomalyMonitor.observe) vs a bare river ``score_one``/``learn_one`` loop of the
   same model on the same points: ratio. Target <= 1.2.

    python -m benchmarks.anomaly_throughput --series 10000 --frames 50 --warm 700 --rounds 3
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping

import numpy as np
from river import anomaly, preprocessing

from benchmarks._common import median, write_result
from ray_enterprise.anomaly.events import AnomalyMonitor
from ray_enterprise.anomaly.vector_monitor import VectorAnomalyMonitor


def vector_rate(series: int, frames: int, warm: int, config: Mapping[str, object]) -> float:
    """Points/s over ``frames`` frames after ``warm`` untimed ones.

    Detectors do the least work while they warm up (the default's sequence and seasonal parts
    only start counting after 600 points), so the timed frames come after that.
    """
    monitor = VectorAnomalyMonitor(config, capacity=series, min_samples=30)
    names = [f"s{i}" for i in range(series)]
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 1.0, (64, series))
    monitor.observe_points([(n, 0.0, 1.0) for n in names])  # assign slots once
    for t in range(1, warm + 1):
        monitor.observe_frame(float(t), 100.0 + noise[t % 64])
    began = time.perf_counter()
    for t in range(warm + 1, warm + frames + 1):
        monitor.observe_frame(float(t), 100.0 + noise[t % 64])
    return series * frames / (time.perf_counter() - began)


def river_ratio(points: int, rounds: int) -> tuple[float, float, float]:
    rng = np.random.default_rng(1)
    values = (100.0 + rng.normal(0.0, 1.0, points)).tolist()

    # Both sides build their model inside the timing: ours builds it at a series' first point.
    def bare() -> float:
        began = time.perf_counter()
        model = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=42)
        for v in values:
            x = {"x": v}
            model.score_one(x)
            model.learn_one(x)
        return time.perf_counter() - began

    def ours() -> float:
        began = time.perf_counter()
        monitor = AnomalyMonitor(
            {"name": "HalfSpaceTrees", "params": {"seed": 42}, "scaler": "MinMaxScaler"},
            min_samples=30,
        )
        for i, v in enumerate(values):
            monitor.observe("s", v, float(i))
        return time.perf_counter() - began

    bare_t, ours_t = [], []
    for _ in range(rounds):  # interleaved: machine noise falls on both
        bare_t.append(bare())
        ours_t.append(ours())
    return median(ours_t) / median(bare_t), median(ours_t), median(bare_t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--warm", type=int, default=700, help="untimed frames first")
    parser.add_argument("--river-points", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, object] = {}
    for name, config in {
        "ewm_zscore": {"name": "ewm_zscore"},
        "default": {"name": "default"},
        # The streaming ARTime the NAB protocol weighs against the default, alone and beside it.
        "art": {"name": "art"},
        "art+default": {"name": "max", "of": [{"name": "default"}, {"name": "art"}]},
    }.items():
        rates = [
            vector_rate(args.series, args.frames, args.warm, config) for _ in range(args.rounds)
        ]
        rate = median(rates)
        results[f"vector_{name}_points_per_s"] = rate
        print(
            f"vectorised {name}: {rate / 1e6:.2f} M points/s over {args.series} series after "
            f"{args.warm} warm-up frames (target >= 1 M/s per shard)"
        )
    ratio, ours_s, bare_s = river_ratio(args.river_points, args.rounds)
    results.update({"river_ratio": ratio, "river_ours_s": ours_s, "river_bare_s": bare_s})
    print(
        f"river HalfSpaceTrees, {args.river_points} points: ours {ours_s:.3f} s, bare "
        f"score_one/learn_one {bare_s:.3f} s, ratio = {ratio:.2f} (target <= 1.2)"
    )
    write_result("anomaly_throughput", results)


if __name__ == "__main__":
    main()
