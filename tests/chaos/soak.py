"""The chaos soak: the demo application on a multi-node cluster, faults injected while calls
flow, and the system's promises checked at the end.

One engine for the ~2 minute run in CI (tests/chaos/test_soak.py: every kind of fault once, in
a seeded random order) and the long one (benchmarks/soak.py --minutes N: then random faults
until the time is up). Faults are injected one at a time and each is followed to its recovery,
so every alert, failed call and memory sample can be laid against the fault that caused it.

What runs: the six demo services (cache and search subscribe to their config sections), the
ConfigActor reading a YAML file, a database (PostgreSQL behind a TCP proxy when a DSN is given,
else SQLite), a real OpenBao dev server and the environment; the observability actor with a
collector and an anomaly shard per node; the alert manager.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import psutil
import ray
import yaml

from ray_enterprise import _kv
from ray_enterprise.alerts.actor import ACTOR_NAME as ALERTS_NAME
from ray_enterprise.alerts.actor import get_alert_handle
from ray_enterprise.config.actor import ACTOR_NAME as CONFIG_NAME
from ray_enterprise.config.actor import get_config_handle
from ray_enterprise.config.settings import ConfigSettings, VaultSettings
from ray_enterprise.config.sources import DatabaseConfigSource
from ray_enterprise.observability.collector import CENTRAL_NAME, COLLECTOR_PREFIX
from ray_enterprise.observability.platform import boot_observability
from ray_enterprise.registry.actor import SERVICE_PREFIX
from ray_enterprise.runtime import connect
from ray_enterprise.spec import load_app_spec
from ray_enterprise.testing import kill_node
from tests.integration.config.config_backends import BaoServer, TcpProxy, free_port, pg_url

NAMESPACE = _kv.NAMESPACE
SHARD_PREFIX = "anomaly:"
_S = TypeVar("_S", bound="Soak")
REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "cluster" / "demo.yaml"

#: The secret planted in Vault; it must never show up in a log line or in stored history.
SECRET = "chaos-" + uuid.uuid4().hex
#: Calls that fail within this long after a disruptive fault recovered still count as its own
#: (callers re-read a service's replica list every 0.5 s and drop a dead handle on failure;
#: on a loaded 2-core machine that takes a few seconds more).
CALL_GRACE_S = 5.0
#: A system actor's peak RSS may exceed its first sample by at most this much.
MEMORY_BOUND_MB = 256.0
#: Alerts that record a moment rather than a state: they expire on their own.
EVENT_ALERTS = frozenset({"AnomalyDetected", "SecurityEvent", "DeploymentRolledBack"})
#: The alerts each kind of fault must raise (and see resolved), by alertname.
EXPECTED_ALERT = {
    "service_kill": "ServiceRestarting",
    "system_actor_kill": "SystemActorRestarted",
    "node_loss": "NodeLost",
    "config_invalid": "ConfigRejected",
    "vault_outage": "ConfigSourceFailing",
    "database_outage": "ConfigSourceFailing",
    "metrics_flood": "MetricsRefused",
}
#: Faults during which calls to the demo's api may fail (a service on the call path is down).
DISRUPTIVE = frozenset({"service_kill", "node_loss"})
CONFIG_SOURCES = ("file", "database", "vault")


def _pid(actor: Any) -> int:
    return int(os.getpid())


def actor_pid(name: str, timeout_s: float = 30.0) -> int:
    """The process id of a named actor (any actor answers ``__ray_call__``)."""
    handle = ray.get_actor(name, namespace=NAMESPACE)
    return int(ray.get(handle.__ray_call__.remote(_pid), timeout=timeout_s))


def live_actor_table() -> list[dict[str, Any]]:
    """Every actor of the cluster that is not dead (alive, pending or restarting), read from
    the GCS (no dashboard needed).

    ``ray._private.state`` is private API; it is used here alone, for the actor census.
    """
    from ray._private import state

    table: dict[str, Any] = state.actors()
    return [a for a in table.values() if a.get("State") != "DEAD"]


def wait_for(
    predicate: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.2
) -> float:
    """Poll ``predicate`` until true; the time it took (raises after ``timeout_s``)."""
    began = time.monotonic()
    while True:
        try:
            if predicate():
                return time.monotonic() - began
        except Exception:  # a restarting actor: try again
            pass
        if time.monotonic() - began > timeout_s:
            raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)


class Outcome(NamedTuple):
    """One call to the api: when it was sent and answered (wall clock), and how it went."""

    began: float
    ended: float
    ok: bool
    error: str


@dataclass
class Fault:
    kind: str
    target: str
    injected_at: float  # wall clock, seconds
    recovered_at: float | None = None
    alert_labels: dict[str, str] = field(default_factory=dict)
    detail: str = ""
    error: str | None = None

    @property
    def recovery_s(self) -> float | None:
        return None if self.recovered_at is None else self.recovered_at - self.injected_at


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class SoakReport:
    duration_s: float
    faults: list[Fault]
    checks: list[Check]
    calls: int
    failed_calls: int
    failed_outside_faults: int
    alerts_fired: int
    alerts_resolved: int
    memory: dict[str, dict[str, float]]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def recoveries(self) -> list[float]:
        return sorted(f.recovery_s for f in self.faults if f.recovery_s is not None)

    def summary(self) -> dict[str, Any]:
        rec = self.recoveries()
        p99 = rec[min(len(rec) - 1, math.ceil(0.99 * len(rec)) - 1)] if rec else None
        by_kind: dict[str, int] = {}
        for f in self.faults:
            by_kind[f.kind] = by_kind.get(f.kind, 0) + 1
        return {
            "duration_s": round(self.duration_s, 1),
            "faults_injected": len(self.faults),
            "faults_by_kind": by_kind,
            "recoveries": len(rec),
            "recovery_median_s": round(statistics.median(rec), 2) if rec else None,
            "recovery_p99_s": round(p99, 2) if p99 is not None else None,
            "alerts_fired": self.alerts_fired,
            "alerts_resolved": self.alerts_resolved,
            "calls": self.calls,
            "calls_failed": self.failed_calls,
            "calls_failed_outside_faults": self.failed_outside_faults,
            "ok": self.ok,
        }

    def table(self) -> str:
        width = max(len(c.name) for c in self.checks)
        lines = [f"{'check':<{width}}  result  detail", "-" * (width + 40)]
        lines += [
            f"{c.name:<{width}}  {'ok' if c.ok else 'FAIL':<6}  {c.detail}" for c in self.checks
        ]
        lines.append("")
        lines.append(f"{'fault':<18} {'target':<44} {'recovery':>9}  alert")
        for f in self.faults:
            rec = "-" if f.recovery_s is None else f"{f.recovery_s:.2f} s"
            lines.append(
                f"{f.kind:<18} {f.target[:44]:<44} {rec:>9}  {EXPECTED_ALERT[f.kind]}"
                + (f"  ERROR {f.error}" if f.error else "")
            )
        lines.append("")
        lines.append(f"{'system actor':<44} {'first':>8} {'peak':>8} {'last':>8}  (MB RSS)")
        for name, mb in self.memory.items():
            first, peak, last = mb["first_mb"], mb["peak_mb"], mb["last_mb"]
            lines.append(f"{name[:44]:<44} {first:>8.0f} {peak:>8.0f} {last:>8.0f}")
        lines.append("")
        lines += [f"{k}: {v}" for k, v in self.summary().items()]
        return "\n".join(lines)


class CallLoad:
    """Callers sending requests to the demo's api while the faults happen."""

    def __init__(self, registry: Any, threads: int = 2, pause_s: float = 0.05) -> None:
        self._registry = registry
        self._pause_s = pause_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.outcomes: list[Outcome] = []
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]

    def start(self) -> CallLoad:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self, index: int) -> None:
        api = self._registry.get_service_sync("api", wait_s=30)
        n = 0
        while not self._stop.is_set():
            n += 1
            request = {"op": "search", "q": f"doc {n % 50}"} if n % 2 else {"op": "get", "key": "k"}
            began = time.time()
            try:
                result = ray.get(api.handle.remote(request), timeout=15)
                ok, error = bool(result.get("ok")), str(result.get("error", ""))
            except Exception as exc:  # the api itself down: count it, go on
                ok, error = False, f"{type(exc).__name__}: {str(exc)[:120]}"
            with self._lock:
                self.outcomes.append(Outcome(began, time.time(), ok, error))
            self._stop.wait(self._pause_s)


def _alerted_as(actor: str) -> str:
    """The ``service`` label of a system actor's SystemActorRestarted alert."""
    if actor.startswith(SHARD_PREFIX):
        return "anomaly-shard:" + actor[len(SHARD_PREFIX) :]
    if actor.startswith(COLLECTOR_PREFIX):
        return "collector:" + actor[len(COLLECTOR_PREFIX) :]
    return actor


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class MemorySampler:
    """RSS of every system actor's process, every ``interval_s``; follows restarts by name."""

    def __init__(self, names: Callable[[], list[str]], interval_s: float = 2.0) -> None:
        self._names = names
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._pids: dict[str, int] = {}
        self.samples: dict[str, list[tuple[float, int, float]]] = {}  # name -> (t, pid, MB)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> MemorySampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def sample_once(self) -> None:
        for name in self._names():
            pid = self._pids.get(name)
            if pid is None or not _running(pid):
                try:
                    pid = actor_pid(name, timeout_s=5)
                except Exception:
                    continue  # restarting: next round
                self._pids[name] = pid
            try:
                rss = psutil.Process(pid).memory_info().rss / 2**20
            except psutil.Error:
                continue
            if rss == 0:  # a zombie: the killed process, not yet reaped
                continue
            self.samples.setdefault(name, []).append((time.time(), pid, rss))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample_once()
            self._stop.wait(self._interval_s)

    def verdict(self) -> tuple[bool, dict[str, dict[str, float]], list[str]]:
        """Per actor name: first sample, peak and last (MB); over the bound when peak - first
        exceeds :data:`MEMORY_BOUND_MB`."""
        table: dict[str, dict[str, float]] = {}
        over: list[str] = []
        for name, samples in sorted(self.samples.items()):
            first, peak, last = samples[0][2], max(s[2] for s in samples), samples[-1][2]
            table[name] = {"first_mb": first, "peak_mb": peak, "last_mb": last}
            if peak - first > MEMORY_BOUND_MB:
                over.append(f"{name} {first:.0f} -> {peak:.0f} MB")
        return not over, table, over


class Soak:
    """The system under faults. Use as a context manager around :meth:`run`."""

    def __init__(
        self,
        cluster: Any,
        workdir: Path,
        *,
        seed: int = 0,
        pg_dsn: str | None = None,
        callers: int = 2,
        pause_s: tuple[float, float] = (0.5, 1.5),
        log: Callable[[str], None] = print,
    ) -> None:
        self.cluster = cluster
        self.workdir = workdir
        self.rng = random.Random(seed)
        self.pg_dsn = pg_dsn
        self.callers = callers
        self.pause_s = pause_s
        self.log = log
        self.faults: list[Fault] = []
        self.invalid_writes: list[tuple[str, float, bool]] = []  # (source, at, rejected)
        self.step_errors: list[str] = []  # steps that failed before injecting their fault
        self._valid: dict[str, Any] = {}  # the value each source last wrote and had applied
        self._stack = contextlib.ExitStack()

    # -- setup ------------------------------------------------------------------------------

    def __enter__(self: _S) -> _S:
        try:
            self._setup()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _setup(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.vault = BaoServer(free_port(pair=True)).start()
        self._stack.callback(self.vault.stop)
        self._write_vault(5.0)
        self.config_file = self.workdir / "chaos.yaml"
        self._write_file(300.0)
        self.channel = f"chaos_{uuid.uuid4().hex[:8]}"
        self.proxy: TcpProxy | None = None
        if self.pg_dsn:
            db_url, direct_url = self._postgres_schema()
        else:
            db_url = direct_url = f"sqlite:///{self.workdir / 'config.db'}"
        self.direct = DatabaseConfigSource(direct_url, channel=self.channel)
        self._write_database(10)
        settings = ConfigSettings(
            files=[str(self.config_file)],
            file_poll_interval=0.1,
            database_url=db_url,
            database_channel=self.channel,
            database_poll_interval=0.25,
            database_fallback_interval=1.0,
            history_url=f"sqlite:///{self.workdir / 'history.db'}",
            vault=VaultSettings(url=self.vault.url, token="root", poll_interval=0.25, timeout=1.0),
        )
        env = {"RAY_ENTERPRISE__SEARCH__HYBRID": "false"}
        self.config = get_config_handle(create=True, settings=settings, env_vars=env)
        boot_observability(anomaly_shards="auto")
        self.alerts = get_alert_handle(
            create=True,
            settings={
                "db_url": f"sqlite:///{self.workdir / 'alerts.db'}",
                "max_sleep": "200ms",
                "metrics_refused_quiet": "5s",
            },
        )
        self.registry = connect().registry
        specs = []
        for spec in load_app_spec(DEMO).services:
            section = {"cache": "cache", "search": "search"}.get(spec.name)
            specs.append(spec.model_copy(update={"config_section": section}))
        self.registry.register_app_sync(specs)
        status = self.registry.start_all_sync(timeout_s=240)
        if status["status"] != "healthy":
            raise RuntimeError(f"the demo did not come up: {status['reasons']}")
        wait_for(self._subscribers_current, 60, "cache and search at the config's version")

    def _postgres_schema(self) -> tuple[str, str]:
        import sqlalchemy as sa
        from sqlalchemy.engine import make_url

        schema = self.channel
        engine = sa.create_engine(self.pg_dsn or "")
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

        def drop() -> None:
            with engine.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            engine.dispose()

        self._stack.callback(drop)
        target = make_url(self.pg_dsn or "")
        self.proxy = TcpProxy((target.host or "127.0.0.1", target.port or 5432)).start()
        self._stack.callback(lambda: self.proxy.stop() if self.proxy else None)
        dsn = self.pg_dsn or ""
        return pg_url(dsn, schema, port=self.proxy.port), pg_url(dsn, schema)

    # -- the sources ------------------------------------------------------------------------

    def _write_vault(self, timeout_seconds: float) -> None:
        kv = self.vault.client().secrets.kv.v2
        # The planted secret where a secret lives (security.jwt_secret); search has none.
        kv.create_or_update_secret(
            path="ray_enterprise/security", secret={"jwt_secret": SECRET}, mount_point="secret"
        )
        kv.create_or_update_secret(
            path="ray_enterprise/search",
            secret={"timeout_seconds": timeout_seconds},
            mount_point="secret",
        )

    def _write_file(self, ttl: float) -> None:
        tmp = self.config_file.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump({"cache": {"default_ttl_seconds": ttl}}), encoding="utf-8")
        tmp.replace(self.config_file)

    def _write_database(self, limit: int) -> None:
        self.direct.set_sync("search.default_limit", limit)

    def _write(self, source: str, value: Any) -> None:
        {"file": self._write_file, "database": self._write_database, "vault": self._write_vault}[
            source
        ](value)

    @staticmethod
    def _field(source: str) -> tuple[str, str]:
        return {
            "file": ("cache", "default_ttl_seconds"),
            "database": ("search", "default_limit"),
            "vault": ("search", "timeout_seconds"),
        }[source]

    def _applied(self, source: str) -> Any:
        section, name = self._field(source)
        return getattr(ray.get(self.config.get.remote(section), timeout=10), name)

    def _source_ok(self, layer: str) -> bool:
        rows = ray.get(self.config.sources.remote(), timeout=10)
        return bool(next(s for s in rows if s["layer"] == layer)["ok"])

    def _subscribers_current(self) -> bool:
        for service, section in (("cache", "cache"), ("search", "search")):
            if self._service_config_version(service, section) != self._section_version(section):
                return False
        return True

    def _section_version(self, section: str) -> int:
        reply = ray.get(self.config.wait_changes.remote({section: -1}, 0.0), timeout=10)
        return int(reply["baseline"][section])

    def _service_config_version(self, service: str, section: str) -> int:
        status = {s["name"]: s for s in self.registry.list_services_sync()}[service]
        handle = ray.get_actor(status["actor_name"], namespace=NAMESPACE)
        versions = ray.get(
            handle.__ray_call__.remote(lambda self: dict(self._re_config_versions)), timeout=10
        )
        return int(versions.get(section, 0))

    # -- faults -----------------------------------------------------------------------------

    def system_actor_names(self) -> list[str]:
        names = ray.util.list_named_actors()
        fixed = {"registry", CONFIG_NAME, ALERTS_NAME, CENTRAL_NAME}
        return sorted(
            n
            for n in names
            if n in fixed or n.startswith(COLLECTOR_PREFIX) or n.startswith(SHARD_PREFIX)
        )

    def _all_healthy(self) -> bool:
        status = self.registry.get_system_status_sync()
        return status["status"] == "healthy" and all(
            s["state"] == "healthy" for s in status["services"]
        )

    def _begin(self, kind: str, target: str, **labels: str) -> Fault:
        fault = Fault(kind, target, time.time(), alert_labels=labels)
        self.faults.append(fault)
        self.log(f"[soak] {kind} {target}")
        return fault

    def kill_service(self) -> Fault:
        services = self.registry.list_services_sync()
        victim = self.rng.choice(services)
        pid = actor_pid(victim["actor_name"])
        fault = self._begin("service_kill", f"{victim['name']} (pid {pid})", service=victim["name"])
        os.kill(pid, signal.SIGKILL)
        restarts = victim["restarts"]

        def back() -> bool:
            now = {s["name"]: s for s in self.registry.list_services_sync()}[victim["name"]]
            return now["restarts"] > restarts and self._all_healthy()

        wait_for(back, 120, f"{victim['name']} restarted and every service healthy")
        fault.recovered_at = time.time()
        return fault

    def kill_system_actor(self, name: str | None = None) -> Fault:
        name = name or self.rng.choice(self.system_actor_names())
        pid = actor_pid(name)
        fault = self._begin("system_actor_kill", f"{name} (pid {pid})", service=_alerted_as(name))
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: actor_pid(name, timeout_s=5) != pid, 120, f"{name} back in a new process")
        if name == "registry":
            wait_for(self._all_healthy, 120, "every service healthy under the new registry")
        fault.recovered_at = time.time()
        return fault

    def lose_node(self) -> Fault:
        victim = self.rng.choice(list(self.cluster.worker_nodes))
        fault = self._begin("node_loss", f"node {victim.node_id[:12]}", node=victim.node_id)
        kill_node(self.cluster, victim)

        def moved() -> bool:
            status = self.registry.get_system_status_sync()
            return self._all_healthy() and all(
                s["node_id"] != victim.node_id for s in status["services"]
            )

        wait_for(moved, 180, "every service healthy off the lost node")
        fault.recovered_at = time.time()
        self.cluster.add_node(num_cpus=1)
        self.cluster.wait_for_nodes()
        fault.detail = "node re-added"
        return fault

    def invalid_config(self, source: str | None = None) -> Fault:
        """An invalid value written at a source; rejected, then repaired with a valid one."""
        source = source or self.rng.choice(self._config_sources())
        section, name = self._field(source)
        bad: Any = {"file": -5.0, "database": 1000, "vault": -1.0}[source]
        before = ray.get(self.config.events.remote(), timeout=10)
        last_seq = before[-1]["seq"] if before else 0
        fault = self._begin("config_invalid", f"{source}: {section}.{name}={bad}")
        written = time.time()
        self._write(source, bad)

        def rejected() -> bool:
            events = ray.get(self.config.events.remote(), timeout=10)
            return any(e["kind"] == "rejected" and e["seq"] > last_seq for e in events)

        try:
            wait_for(rejected, 30, f"the invalid {source} value rejected")
            seen = True
        except TimeoutError:
            seen = False
        self.invalid_writes.append((source, written, seen and self._applied(source) != bad))
        good = self._good_value(source)
        self._write(source, good)
        wait_for(lambda: self._applied(source) == good, 60, f"the repaired {source} value applied")
        fault.recovered_at = time.time()
        wait_for(self._subscribers_current, 60, "subscribers at the repaired version")
        return fault

    def valid_config(self, source: str | None = None) -> None:
        """A valid change (not a fault): applied and pushed to the subscribers."""
        source = source or self.rng.choice(self._config_sources())
        value = self._good_value(source)
        self._write(source, value)
        wait_for(lambda: self._applied(source) == value, 60, f"the {source} change applied")

    def _good_value(self, source: str) -> Any:
        return {
            "file": float(self.rng.randint(60, 900)),
            "database": self.rng.randint(1, 50),
            "vault": float(self.rng.randint(1, 30)),
        }[source]

    def _config_sources(self) -> list[str]:
        return list(CONFIG_SOURCES)

    def vault_outage(self) -> Fault:
        fault = self._begin("vault_outage", "bao dev server stopped", config_source="vault")
        self.vault.stop()
        wait_for(lambda: not self._source_ok("vault"), 30, "the vault source reported failing")
        time.sleep(self.rng.uniform(*self.pause_s))
        self.vault.start()  # a dev server keeps nothing: seed it again, as a restore would
        value = self._good_value("vault")
        self._write_vault(value)
        wait_for(lambda: self._source_ok("vault"), 60, "the vault source healthy again")
        wait_for(lambda: self._applied("vault") == value, 60, "vault's values applied again")
        fault.recovered_at = time.time()
        return fault

    def database_outage(self) -> Fault:
        assert self.proxy is not None
        fault = self._begin("database_outage", "PostgreSQL unreachable", config_source="database")
        self.proxy.stop()
        wait_for(lambda: not self._source_ok("database"), 30, "the database reported failing")
        value = self._good_value("database")
        self._write_database(value)  # written during the outage, straight to the server
        time.sleep(self.rng.uniform(*self.pause_s))
        self.proxy.start()
        wait_for(lambda: self._source_ok("database"), 60, "the database source healthy again")
        wait_for(lambda: self._applied("database") == value, 60, "the outage's write applied")
        fault.recovered_at = time.time()
        return fault

    def flood_metrics(self) -> Fault:
        """Bad names, a label-cardinality explosion and NaN values, from a task on some node."""
        central = ray.get_actor(CENTRAL_NAME, namespace=NAMESPACE)

        def refused_total() -> int:
            counts = ray.get(central.refusals.remote(), timeout=10)["counts"]
            return int(sum(counts.values()))

        before = refused_total()
        fault = self._begin("metrics_flood", "bad names, 5,000 label values, NaN")
        ray.get(_flood.remote(5000), timeout=120)
        wait_for(lambda: refused_total() > before, 60, "the flood's refusals counted")
        fault.recovered_at = time.time()
        return fault

    # -- the run ------------------------------------------------------------------------------

    def plan(self) -> list[Callable[[], Any]]:
        """Every kind of fault once (each system actor kind once), in a seeded random order."""
        steps: list[Callable[[], Any]] = [self.kill_service, self.kill_service]
        kinds = {"registry", CONFIG_NAME, ALERTS_NAME, CENTRAL_NAME}
        names = self.system_actor_names()
        collectors = [n for n in names if n.startswith(COLLECTOR_PREFIX)]
        shards = [n for n in names if n.startswith(SHARD_PREFIX)]
        targets = [*sorted(kinds), self.rng.choice(collectors), self.rng.choice(shards)]
        steps += [lambda n=n: self.kill_system_actor(n) for n in targets]  # type: ignore[misc]
        steps.append(self.lose_node)
        steps += [lambda s=s: self.invalid_config(s) for s in CONFIG_SOURCES]  # type: ignore[misc]
        steps += [lambda s=s: self.valid_config(s) for s in CONFIG_SOURCES]  # type: ignore[misc]
        steps.append(self.vault_outage)
        if self.proxy is not None:
            steps.append(self.database_outage)
        steps.append(self.flood_metrics)
        self.rng.shuffle(steps)
        return steps

    def random_step(self) -> Callable[[], Any]:
        choices: list[tuple[float, Callable[[], Any]]] = [
            (3, self.kill_service),
            (3, self.kill_system_actor),
            (0.5, self.lose_node),
            (2, self.invalid_config),
            (2, self.valid_config),
            (0.7, self.vault_outage),
            (1, self.flood_metrics),
        ]
        if self.proxy is not None:
            choices.append((0.7, self.database_outage))
        weights, steps = zip(*choices, strict=True)
        return self.rng.choices(steps, weights=weights)[0]

    def run(self, duration_s: float = 0.0, settle_s: float = 90.0) -> SoakReport:
        """Every kind of fault once, then random faults until ``duration_s`` has passed."""
        began = time.time()
        load = CallLoad(self.registry, threads=self.callers).start()
        memory = MemorySampler(self.system_actor_names).start()
        try:
            for step in self.plan():
                self._step(step)
            while time.time() - began < duration_s:
                self._step(self.random_step())
        finally:
            load.stop()
            memory.stop()
        checks = self._checks(load, memory, settle_s)
        fired, resolved = self._alert_counts(began)
        failed = [o for o in load.outcomes if not o.ok]
        _, table, _ = memory.verdict()
        return SoakReport(
            duration_s=time.time() - began,
            faults=self.faults,
            checks=checks,
            calls=len(load.outcomes),
            failed_calls=len(failed),
            failed_outside_faults=len(self._failed_outside(failed)),
            alerts_fired=fired,
            alerts_resolved=resolved,
            memory=table,
        )

    def _step(self, step: Callable[[], Any]) -> None:
        """Run one step; a failure is the report's to show, never the end of the soak."""
        began = len(self.faults)
        try:
            step()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if len(self.faults) > began:  # the fault was injected: it did not recover
                self.faults[-1].error = error
                self.log(f"[soak] fault did not recover: {error}")
            else:  # failed before injecting (e.g. a victim still restarting)
                self.step_errors.append(error)
                self.log(f"[soak] step failed before its fault: {error}")
        time.sleep(self.rng.uniform(*self.pause_s))

    # -- the checks ---------------------------------------------------------------------------

    def _failed_outside(self, failed: list[Outcome]) -> list[Outcome]:
        windows = [
            (f.injected_at, (f.recovered_at or time.time()) + CALL_GRACE_S)
            for f in self.faults
            if f.kind in DISRUPTIVE
        ]
        # A call counts as the fault's when it was in flight during the window.
        return [o for o in failed if not any(o.began <= b and o.ended >= a for a, b in windows)]

    def _place(self, outcome: Outcome) -> str:
        """Where a failed call falls among the faults, for the report."""
        before = [f for f in self.faults if f.injected_at <= outcome.began]
        if not before:
            return f"before any fault: {outcome.error[:160]}"
        last = before[-1]
        end = last.recovered_at or last.injected_at
        return (
            f"{outcome.began - end:+.1f} s after {last.kind} {last.target} recovered "
            f"(took {outcome.ended - outcome.began:.1f} s): {outcome.error[:160]}"
        )

    def _history(self, since: float) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = ray.get(
            self.alerts.history.remote(days=1.0, limit=100_000), timeout=60
        )
        return [r for r in rows if r["at"] >= since * 1000 - 1000]

    def _alert_counts(self, since: float) -> tuple[int, int]:
        rows = self._history(since)
        return (
            sum(r["kind"] == "fired" for r in rows),
            sum(r["kind"] == "resolved" for r in rows),
        )

    def _alert_for(self, fault: Fault, rows: list[dict[str, Any]]) -> str | None:
        """Why ``fault`` has no fired-then-resolved alert, or ``None`` when it has one."""
        name = EXPECTED_ALERT[fault.kind]
        start = fault.injected_at * 1000 - 1000
        fired = [
            r
            for r in rows
            if r["alertname"] == name
            and r["kind"] == "fired"
            and r["at"] >= start
            and all(r.get("labels", {}).get(k, v) == v for k, v in fault.alert_labels.items())
            and (fault.alert_labels.get("service") in (None, r["service"]))
        ]
        if not fired:
            return f"{fault.kind} {fault.target}: no {name} fired"
        ids = {r["alert_id"] for r in fired}
        if not any(r["kind"] == "resolved" and r["alert_id"] in ids for r in rows):
            return f"{fault.kind} {fault.target}: {name} fired, never resolved"
        return None

    def _checks(self, load: CallLoad, memory: MemorySampler, settle_s: float) -> list[Check]:
        checks: list[Check] = []
        began = self.faults[0].injected_at if self.faults else time.time()

        # Services: all healthy, one live actor each, no actor nobody owns.
        try:
            wait_for(self._all_healthy, settle_s, "every service healthy")
            healthy = True
        except TimeoutError:
            healthy = False
        status = self.registry.get_system_status_sync()
        bad = [f"{s['name']} {s['state']}" for s in status["services"] if s["state"] != "healthy"]
        checks.append(Check("every service healthy", healthy and not bad, ", ".join(bad) or "6/6"))
        census: tuple[list[str], list[str], list[str]] = ([], [], [])

        def counted() -> bool:
            nonlocal census
            census = self._actor_census()
            return not any(census)

        with contextlib.suppress(TimeoutError):  # collectors follow nodes within a period
            wait_for(counted, 30, "a clean actor census", interval_s=1.0)
        dupes, orphans, unobserved = census
        checks.append(Check("no duplicate service actor", not dupes, ", ".join(dupes) or "none"))
        checks.append(Check("no orphaned actor", not orphans, ", ".join(orphans) or "none"))
        checks.append(
            Check(
                "a collector on every node",
                not unobserved,
                ", ".join(unobserved) or f"{len(ray.nodes())} nodes known",
            )
        )

        # Config: subscribers current, invalid changes rejected, last good values in force.
        try:
            wait_for(self._subscribers_current, 60, "subscribers at the latest version")
            current = True
        except TimeoutError:
            current = False
        version = ray.get(self.config.current_version.remote(), timeout=10)
        checks.append(
            Check("subscribers at latest config", current, f"cache, search at v{version}")
        )
        refused = [w for w in self.invalid_writes if not w[2]]
        checks.append(
            Check(
                "every invalid change rejected",
                bool(self.invalid_writes) and not refused,
                f"{len(self.invalid_writes) - len(refused)}/{len(self.invalid_writes)} rejected",
            )
        )

        # Alerts: each fault fired one that resolved; nothing left firing.
        stuck: list[str] = []

        def settled() -> bool:
            nonlocal stuck
            open_ = ray.get(self.alerts.alerts.remote(), timeout=30)
            stuck = [
                f"{a['name']}({a.get('service', '')})"
                for a in open_
                if a["name"] not in EVENT_ALERTS
            ]
            return not stuck

        with contextlib.suppress(TimeoutError):
            wait_for(settled, settle_s, "every state alert resolved", interval_s=1.0)
        rows = self._history(began)
        missing = [m for f in self.faults if (m := self._alert_for(f, rows))]
        checks.append(
            Check(
                "every fault alerted and resolved",
                not missing,
                "; ".join(missing) or f"{len(self.faults)} faults",
            )
        )
        checks.append(Check("no alert stuck", not stuck, ", ".join(stuck) or "none firing"))

        # Memory.
        memory.sample_once()
        mem_ok, table, over = memory.verdict()
        growth = max((v["peak_mb"] - v["first_mb"] for v in table.values()), default=0.0)
        checks.append(
            Check(
                f"system actor memory (peak - first <= {MEMORY_BOUND_MB:.0f} MB)",
                mem_ok and bool(table),
                "; ".join(over) or f"{len(table)} actors, largest growth {growth:.0f} MB",
            )
        )

        # Audit chain, secrets.
        checks.append(self._audit_check())
        checks.append(self._secret_check())

        # Calls.
        failed = [o for o in load.outcomes if not o.ok]
        outside = self._failed_outside(failed)
        checks.append(
            Check(
                "calls failed only while a service was down",
                bool(load.outcomes) and not outside,
                f"{len(failed)} of {len(load.outcomes)} failed, {len(outside)} outside a fault"
                + "".join(f"; {self._place(o)}" for o in outside[:3]),
            )
        )
        unrecovered = [f"{f.kind} {f.target}: {f.error}" for f in self.faults if f.error]
        checks.append(
            Check(
                "every fault recovered",
                not unrecovered and not self.step_errors,
                "; ".join(unrecovered + self.step_errors) or f"{len(self.faults)} recovered",
            )
        )
        return checks

    def _actor_census(self) -> tuple[list[str], list[str], list[str]]:
        """Duplicates: two actors for one service; orphans: an actor of ours (alive, or
        waiting to be placed or restarted) that no service or live node owns; and the live
        nodes without a collector."""
        status = self.registry.get_system_status_sync()
        owned = {s["actor_name"] for s in status["services"] if s.get("actor_name")}
        for s in status["services"]:
            owned.update(s.get("replica_ids") or [])
        alive_nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        per_service: dict[str, int] = {}
        orphans: list[str] = []
        collectors: set[str] = set()
        for actor in live_actor_table():
            name = actor.get("Name") or ""
            if actor.get("RayNamespace", NAMESPACE) != NAMESPACE or not name:
                continue
            if name.startswith(SERVICE_PREFIX):
                service = name[len(SERVICE_PREFIX) :].split(":", 1)[0]
                per_service[service] = per_service.get(service, 0) + 1
                if name not in owned:
                    orphans.append(f"{name} ({actor.get('State')})")
            elif name.startswith(COLLECTOR_PREFIX):
                node = name[len(COLLECTOR_PREFIX) :]
                collectors.add(node)
                if node not in alive_nodes:
                    orphans.append(f"collector of lost node {node[:12]} ({actor.get('State')})")
        dupes = [f"{s} x{n}" for s, n in per_service.items() if n > 1]
        unobserved = [node[:12] for node in sorted(alive_nodes - collectors)]
        return dupes, orphans, unobserved

    def _audit_check(self) -> Check:
        import sqlalchemy as sa

        from ray_enterprise.security.audit import AuditLog

        engine = sa.create_engine(f"sqlite:///{self.workdir / 'history.db'}")
        try:
            report = AuditLog(engine, create=False).verify()
        finally:
            engine.dispose()
        detail = f"{report.checked} records" + (
            f"; {report.problems[0].message}" if report.problems else ""
        )
        return Check("audit chain verifies", report.ok and report.checked > 0, detail)

    def _secret_check(self) -> Check:
        """The planted Vault secret in no log file of the session, nor in stored history."""
        node: Any = ray._private.worker._global_node
        logs = Path(node.get_logs_dir_path())
        places = [p for p in logs.rglob("*") if p.is_file()]
        places += [p for p in self.workdir.iterdir() if p.suffix == ".db"]
        needle = SECRET.encode()
        hits = []
        for path in places:
            with contextlib.suppress(OSError):
                if needle in path.read_bytes():
                    hits.append(str(path))
        return Check(
            "no secret in any log or history",
            not hits and bool(places),
            ", ".join(hits[:3]) or f"{len(places)} files scanned",
        )


@ray.remote(num_cpus=0)
def _flood(values: int) -> int:
    """Metrics no store should take: every one is refused and counted, none stored."""
    from ray_enterprise.observability import metrics
    from ray_enterprise.observability.platform import flush_all

    for i in range(values):
        metrics.record_metric("chaos_flood_total", 1.0, "counter", {"user": f"u{i}"})
    for bad in ("bad name!", "9starts_with_digit", ""):
        metrics.record_metric(bad, 1.0)
    for _ in range(100):
        metrics.record_metric("chaos_nan", float("nan"))
    flush_all()
    return values


@contextlib.contextmanager
def soak(cluster: Any, workdir: Path, **kwargs: Any) -> Iterator[Soak]:
    with Soak(cluster, workdir, **kwargs) as running:
        yield running
