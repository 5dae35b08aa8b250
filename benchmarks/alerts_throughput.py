"""Alerts: inputs per second through the actor vs in-process, and time to the webhook.

1. Throughput: the same inputs (``--distinct`` problems, repeated: a burst is mostly duplicates)
   ingested by the AlertManagerActor, in batches, with its history on SQLite, vs the pure
   AlertManager in this process with no history, and with the same SQLite history written per
   batch: the first ratio is the price of the actor and of durability, the second of the
   actor shell alone. Three blocks per side, the side that leads rotating.
2. Latency to a local aiohttp webhook: ``ingest()`` -> the webhook has the notification, vs a
   bare aiohttp POST of the same kind of body to the same server (p50, p99).
3. A metric crossing a rule's threshold -> the webhook has the alert, with the rule's hold time
   beside it: the rule is read from a named ``observability`` actor every ``--rule-interval``.

With ``--parity`` it measures instead, in this process and without Ray, the hidden cost of the
timing features (rules' ``for``/``keep_firing_for``, routes' time intervals, an escalation
policy with loops and an acknowledgement timeout): the same workload through the pure
AlertManager and RuleEngine with every feature on, then off, rounds interleaved.

    python -m benchmarks.alerts_throughput --inputs 20000 --batch 500 --rounds 20
    python -m benchmarks.alerts_throughput --parity --distinct 1000 --ticks 600 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import ray
import ray.cloudpickle
from aiohttp import web

from benchmarks._common import median, start_ray, write_result
from ray_enterprise.alerts.actor import NAMESPACE, get_alert_handle
from ray_enterprise.alerts.manager import AlertManager
from ray_enterprise.alerts.routing import policy_from_config
from ray_enterprise.alerts.rules import RuleEngine, parse_rule
from ray_enterprise.alerts.views import to_input

if __name__ != "__main__":  # classes below run in actors that cannot import this module
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class Webhook:
    """A loopback HTTP server in a thread that notes when each alert name arrived."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.arrived: dict[str, float] = {}
        self.event = threading.Event()
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), daemon=True).start()
        ready.wait(10)

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        ready.set()
        self._loop.run_forever()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        now = time.time()
        for alert in body.get("alerts", []):
            if alert.get("status") == "firing":  # keyed by host for rule alerts
                labels = alert["labels"]
                self.arrived.setdefault(labels.get("host", labels["alertname"]), now)
        self.event.set()
        return web.Response(text="ok")

    def wait(self, name: str, timeout: float = 30.0) -> float:
        deadline = time.monotonic() + timeout
        while name not in self.arrived:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} never reached the webhook")
            self.event.wait(0.05)
            self.event.clear()
        return self.arrived[name]


class MetricSource:
    """Stands in for the observability actor: one series whose value the benchmark sets."""

    def __init__(self) -> None:
        self.value = 0.0
        self.host = "bench"

    def set(self, value: float, host: str) -> None:
        self.value, self.host = value, host

    def window_values(self, metric: str, matchers: Any, start_ms: int, end_ms: int) -> Any:
        return {(("host", self.host),): [self.value]} if metric == "bench_latency_ms" else {}


def inputs(count: int, distinct: int) -> list[dict[str, Any]]:
    return [
        {"labels": {"alertname": "Burst", "instance": str(i % distinct)}, "severity": "low"}
        for i in range(count)
    ]


def in_process(items: list[dict[str, Any]], batch: int, history: Any = None) -> float:
    """The pure manager in this process; with ``history`` (an ``AlertHistory``) each batch's
    changes are written as the actor writes them, so only the actor shell differs."""
    am = AlertManager(policy_from_config({"route": {"handlers": [], "group_wait": 0}}))
    began = time.perf_counter()
    for i in range(0, len(items), batch):
        am.ingest_many(to_input(x) for x in items[i : i + batch])
        changes = am.take_changes()
        if history is not None:
            history.record(changes)
    am.tick()
    return len(items) / (time.perf_counter() - began)


def sqlite_history() -> Any:
    from ray_enterprise.alerts.history import AlertHistory
    from ray_enterprise.storage import make_engine

    history = AlertHistory(make_engine(f"sqlite:///{Path(tempfile.mkdtemp()) / 'inproc.db'}"))
    history.create_tables()
    return history


def through_actor(actor: Any, items: list[dict[str, Any]], batch: int, in_flight: int) -> float:
    began = time.perf_counter()
    pending: list[Any] = []
    for i in range(0, len(items), batch):
        pending.append(actor.ingest.remote(items[i : i + batch]))
        if len(pending) >= in_flight:
            ray.get(pending.pop(0))
    ray.get(pending)
    return len(items) / (time.perf_counter() - began)


def notify_latency(actor: Any, hook: Webhook, rounds: int, prefix: str) -> list[float]:
    """Seconds from sending one new alert to its arrival at the webhook, per round."""
    out = []
    for i in range(rounds):
        name = f"{prefix}{i}"
        began = time.time()
        ray.get(actor.ingest.remote([{"labels": {"alertname": name}, "severity": "high"}]))
        out.append(hook.wait(name) - began)
    return out


def bare_posts(url: str, rounds: int) -> list[float]:
    async def run() -> list[float]:
        out = []
        async with aiohttp.ClientSession() as session:
            for i in range(rounds):
                body = {"alerts": [{"labels": {"alertname": f"bare{i}"}, "status": "resolved"}]}
                began = time.perf_counter()
                async with session.post(url, json=body) as response:
                    await response.read()
                out.append(time.perf_counter() - began)
        return out

    return asyncio.run(run())


PARITY_T0 = 1_796_286_000_000  # a Thursday, 08:20 UTC: inside the active hours below


def parity_policy(features: bool) -> dict[str, Any]:
    """One group per problem (the worst case for per-flush interval checks); with ``features``
    the route has quiet hours, an active window and a looping policy with an ack timeout."""
    child: dict[str, Any] = {"match": 'alertname="Burst"', "group_by": ["alertname", "instance"]}
    config: dict[str, Any] = {}
    if features:
        child.update(
            mute_time_intervals=["weekend"],
            active_time_intervals=["days"],
            escalation_policy="oncall",
        )
        config["time_intervals"] = [
            {"name": "weekend", "time_intervals": [{"weekdays": ["saturday", "sunday"]}]},
            {
                "name": "days",
                "time_intervals": [
                    {
                        "weekdays": ["monday:friday"],
                        "times": [{"start_time": "06:00", "end_time": "22:00"}],
                        "location": "Europe/Berlin",
                    }
                ],
            },
        ]
        config["escalation_policies"] = {
            "oncall": {
                "levels": [
                    {"handlers": ["log"], "delay": "30s"},
                    {"handlers": ["log"], "delay": "60s", "raise_severity": True},
                ],
                "num_loops": 2,
                "ack_timeout": "120s",
            }
        }
    route = {"handlers": ["log"], "group_wait": "5s", "group_interval": "30s"}
    return {**config, "route": {**route, "repeat_interval": "5m", "routes": [child]}}


def parity_manager_round(items: list[dict[str, Any]], ticks: int, features: bool) -> dict[str, Any]:
    """Ingest ``items`` at t0, then tick once a simulated second, acknowledging a tenth of the
    alerts after 45 s; the clock is simulated, only the CPU time is real."""
    now = [PARITY_T0]
    am = AlertManager(policy_from_config(parity_policy(features)), clock=lambda: now[0])
    began = time.perf_counter()
    am.ingest_many(to_input(x) for x in items)
    am.take_changes()
    ingest_s = time.perf_counter() - began
    sent, tick_s, quiet = 0, 0.0, []  # quiet: ticks with nothing due, the pure overhead
    for second in range(1, ticks + 1):
        now[0] = PARITY_T0 + second * 1000
        if second == 45:
            for alert in am.alerts()[::10]:
                am.acknowledge(alert.id, "bench")
        began = time.perf_counter()
        out = am.tick(now[0])
        took = time.perf_counter() - began
        tick_s += took
        if not out:
            quiet.append(took)
        sent += len(out)
        am.take_changes()
    return {"ingest_s": ingest_s, "tick_s": tick_s, "quiet_tick_s": median(quiet), "sent": sent}


def parity_rules_round(series: int, ticks: int, features: bool) -> float:
    """Seconds to evaluate one rule over ``series`` series per simulated second, every fifth
    series flapping across the threshold (so pending and kept-firing states come and go)."""
    clause = " for 5s keep_firing_for 10s" if features else ""
    rule = parse_rule("BenchRule", f"max(bench_latency_ms) > 100{clause}")
    engine = RuleEngine([rule])
    keys = [(("instance", str(i)),) for i in range(series)]
    began = time.perf_counter()
    for second in range(ticks):
        high = 500.0 if (second // 7) % 2 == 0 else 50.0
        windows = {k: [high if i % 5 == 0 else 500.0] for i, k in enumerate(keys)}
        engine.evaluate_rule(rule, windows, PARITY_T0 + second * 1000)
    return time.perf_counter() - began


def parity(args: argparse.Namespace) -> None:
    items = inputs(args.inputs, args.distinct)
    rounds: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
    rules: dict[str, list[float]] = {"on": [], "off": []}
    parity_manager_round(items[: args.batch], 10, True)  # warm up
    for _ in range(args.rounds):  # interleaved, so noise on a shared machine falls on both
        for mode in ("on", "off"):
            rounds[mode].append(parity_manager_round(items, args.ticks, mode == "on"))
            rules[mode].append(parity_rules_round(args.distinct, args.ticks, mode == "on"))
    ingest = {m: median([len(items) / r["ingest_s"] for r in rounds[m]]) for m in rounds}
    tick_ms = {m: median([r["tick_s"] / args.ticks * 1000 for r in rounds[m]]) for m in rounds}
    evals = {m: median([args.distinct * args.ticks / s for s in rules[m]]) for m in rules}
    quiet_ms = {m: median([r["quiet_tick_s"] * 1000 for r in rounds[m]]) for m in rounds}
    print(
        f"parity features on vs off, in-process ({args.inputs} inputs over {args.distinct} "
        f"alerts, {args.ticks} ticks 1 s apart, medians of {args.rounds} interleaved rounds):\n"
        f"  ingest {ingest['on']:,.0f}/s vs {ingest['off']:,.0f}/s, "
        f"ratio = {ingest['on'] / ingest['off']:.2f}\n"
        f"  tick with {args.distinct} open {tick_ms['on']:.2f} ms vs {tick_ms['off']:.2f} ms, "
        f"ratio = {tick_ms['on'] / tick_ms['off']:.2f} "
        f"(notifications {rounds['on'][0]['sent']} vs {rounds['off'][0]['sent']}); "
        f"a tick with nothing due {quiet_ms['on']:.2f} ms vs {quiet_ms['off']:.2f} ms, "
        f"ratio = {quiet_ms['on'] / quiet_ms['off']:.2f}\n"
        f"  rule evaluation {evals['on']:,.0f} vs {evals['off']:,.0f} series/s, "
        f"ratio = {evals['on'] / evals['off']:.2f}"
    )
    write_result(
        "alerts_parity",
        {
            "inputs": args.inputs,
            "distinct": args.distinct,
            "ticks": args.ticks,
            "manager_on": rounds["on"],
            "manager_off": rounds["off"],
            "rules_on_s": rules["on"],
            "rules_off_s": rules["off"],
            "ingest_ratio": ingest["on"] / ingest["off"],
            "tick_ratio": tick_ms["on"] / tick_ms["off"],
            "quiet_tick_ratio": quiet_ms["on"] / quiet_ms["off"],
            "rules_ratio": evals["on"] / evals["off"],
        },
    )


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inputs", type=int, default=20_000)
    parser.add_argument("--distinct", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--hold", default="1s", help="hold time of the metric rule")
    parser.add_argument("--rule-interval", default="100ms")
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument(
        "--parity",
        action="store_true",
        help="only measure the timing features on vs off, in-process (no Ray)",
    )
    parser.add_argument("--ticks", type=int, default=600, help="simulated seconds (--parity)")
    args = parser.parse_args()
    if args.parity:
        parity(args)
        return
    start_ray(args.num_cpus)
    hook = Webhook()
    db = Path(tempfile.mkdtemp()) / "alerts.db"
    rule = {"name": "BenchSlow", "expr": f"max(bench_latency_ms) > 100 for {args.hold}"}
    source: Any = ray.remote(MetricSource)
    metric = source.options(name="observability", namespace=NAMESPACE, num_cpus=0).remote()
    actor = get_alert_handle(
        create=True,
        settings={
            "db_url": f"sqlite:///{db}",
            "route": {
                "handlers": [],
                "group_wait": 0,
                "routes": [
                    {
                        "match": 'alertname!="Burst"',
                        "handlers": ["hook"],
                        "group_by": ["alertname", "host"],
                    }
                ],
            },
            "handlers": {"hook": {"type": "webhook", "url": hook.url}},
            "rules": [rule],
            "rule_interval": args.rule_interval,
        },
    )
    quiet = notify_latency(actor, hook, args.rounds, "Quiet")  # no other alert open yet
    items = inputs(args.inputs, args.distinct)
    in_process(items[: args.batch * 2], args.batch)  # warm up every side
    through_actor(actor, items[: args.batch * 2], args.batch, args.in_flight)
    sides = {
        "actor": lambda: through_actor(actor, items, args.batch, args.in_flight),
        "in-process, no history": lambda: in_process(items, args.batch),
        # A fresh database per block, as the actor's history grows from empty only once.
        "in-process, SQLite history": lambda: in_process(items, args.batch, sqlite_history()),
    }
    rates: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for block in range(3):  # interleaved, the side that leads rotating
        for name in names[block:] + names[:block]:
            rates[name].append(sides[name]())
    ours, bare = rates["actor"], rates["in-process, no history"]
    durable = rates["in-process, SQLite history"]
    ratio = median(ours) / median(bare)
    print(
        f"throughput ({args.inputs} inputs, batches of {args.batch}): actor {median(ours):,.0f}/s "
        f"(history on SQLite), in-process {median(bare):,.0f}/s, ratio = {ratio:.2f}; "
        f"in-process with the same SQLite history {median(durable):,.0f}/s, "
        f"ratio = {median(ours) / median(durable):.2f} (the actor shell alone)"
    )
    notify = notify_latency(actor, hook, args.rounds, "Busy")
    posts = bare_posts(hook.url, args.rounds)
    print(
        f"ingest -> webhook, no other alert open: p50 {pct(quiet, 50):.1f} ms, "
        f"p99 {pct(quiet, 99):.1f} ms; with {args.distinct} open: "
        f"p50 {pct(notify, 50):.1f} ms, p99 {pct(notify, 99):.1f} ms; "
        f"bare aiohttp POST: p50 {pct(posts, 50):.1f} ms, p99 {pct(posts, 99):.1f} ms; "
        f"ratio of p50 (quiet) = {pct(quiet, 50) / pct(posts, 50):.1f}"
    )
    crossing = []
    for i in range(max(3, args.rounds // 4)):
        host = f"bench{i}"  # a new series per round: a new alert group, not a waiting one
        ray.get(metric.set.remote(500.0, host))
        began = time.time()
        crossing.append(hook.wait(host) - began)
        ray.get(metric.set.remote(0.0, host))
        while any(a["labels"]["alertname"] == "BenchSlow" for a in ray.get(actor.alerts.remote())):
            time.sleep(0.05)  # resolved at the next evaluation
    print(
        f"metric crosses rule (hold {args.hold}, evaluated every {args.rule_interval}) -> "
        f"webhook: p50 {pct(crossing, 50):.0f} ms, p99 {pct(crossing, 99):.0f} ms"
    )
    write_result(
        "alerts_throughput",
        {
            "inputs": args.inputs,
            "batch": args.batch,
            "actor_per_s": ours,
            "in_process_per_s": bare,
            "in_process_history_per_s": durable,
            "ratio": ratio,
            "ratio_same_history": median(ours) / median(durable),
            "notify_quiet_s": quiet,
            "notify_busy_s": notify,
            "bare_post_s": posts,
            "hold": args.hold,
            "rule_interval": args.rule_interval,
            "crossing_s": crossing,
        },
    )
    ray.kill(actor, no_restart=True)
    ray.kill(metric)
    ray.shutdown()


if __name__ == "__main__":
    main()
