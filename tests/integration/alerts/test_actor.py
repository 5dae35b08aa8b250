"""The alert actor on the session's real Ray: delivery, ack, silences, escalation, restart.

Webhooks are real aiohttp servers on 127.0.0.1 in a thread of this process; the Python callable
handler writes lines to a file the test reads (both in alert_support.py). Waits are conditions
with deadlines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray
import ray.cloudpickle
import yaml
from click.testing import CliRunner

from ray_enterprise.alerts.actor import (
    NAMESPACE,
    remove_alert_actor,
)
from ray_enterprise.alerts.cli import alerts as alerts_cli
from ray_enterprise.alerts.client import (
    flush_health_reports,
    report_health_transition,
)
from ray_enterprise.alerts.history import AlertHistory
from ray_enterprise.alerts.manager import wall_clock_ms
from ray_enterprise.alerts.model import Severity
from ray_enterprise.alerts.sources import HealthInput
from ray_enterprise.observability.metric_batch import MetricBatch, MetricType, SeriesPoints
from ray_enterprise.security.audit import AuditLog
from ray_enterprise.storage import make_engine
from tests.integration.alerts import alert_support
from tests.integration.alerts.alert_support import (
    StaticWindows,
    Webhook,
    fast_route,
    file_handler,
    lines,
    signal_of,
)
from tests.integration.helpers import faulty, states
from tests.support import wait_for

# Helpers from these modules run inside the alert actor's process, which cannot import them.
ray.cloudpickle.register_pickle_by_value(alert_support)
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

REPO = Path(__file__).resolve().parents[3]


def named(actor: Any, alertname: str) -> list[dict[str, Any]]:
    """The open alerts of one name: the session is shared, and its other parts (the
    observability actor's fault watches, the registry) may tell this actor of their own."""
    return [a for a in ray.get(actor.alerts.remote()) if a["labels"]["alertname"] == alertname]


def test_an_alert_reaches_a_real_webhook_and_a_python_callable(
    start_alerts: Callable[..., Any], tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox.jsonl"
    with Webhook() as hook:
        actor = start_alerts(
            route=fast_route("hook", "inbox"),
            handlers={"hook": {"type": "webhook", "url": hook.url}, "inbox": {"type": "callable"}},
        )
        ray.get(actor.add_handler.remote("inbox", file_handler(inbox)))
        assert ray.get(actor.ingest.remote([signal_of("HighLatency", "api")])) == 1
        [sent] = wait_for(lambda: hook.alerts("HighLatency"), timeout=60, what="the webhook")
        assert sent["labels"]["service"] == "api" and sent["status"] == "firing"
        [called] = wait_for(lambda: lines(inbox), timeout=60, what="the callable")
        assert called["id"] == sent["id"] and called["kind"] == "group"
        stats = wait_for(
            lambda: (s := ray.get(actor.handler_stats.remote()))["inbox"]["sent"] and s,
            what="counters",
        )
        assert stats["hook"]["sent"] == 1 and stats["hook"]["failed"] == 0


def test_ack_and_unack_through_the_actor_and_the_cli(
    start_alerts: Callable[..., Any], tmp_path: Path
) -> None:
    actor = start_alerts(route=fast_route())
    ray.get(actor.ingest.remote([signal_of("DiskFull", "db", "critical")]))
    [alert] = named(actor, "DiskFull")
    runner = CliRunner()
    acked = runner.invoke(alerts_cli, ["ack", alert["id"], "--by", "alice", "--reason", "on it"])
    assert acked.exit_code == 0, acked.output
    assert ray.get(actor.get.remote(alert["id"]))["acknowledged_by"] == "alice"
    listed = runner.invoke(alerts_cli, ["list", "--json", "--state", "acknowledged"])
    assert [a["id"] for a in json.loads(listed.stdout)] == [alert["id"]]
    as_yaml = runner.invoke(alerts_cli, ["list", "--format", "yaml", "--state", "acknowledged"])
    assert yaml.safe_load(as_yaml.stdout) == json.loads(listed.stdout)
    back = ray.get(actor.unacknowledge.remote(alert["id"], "alice", "wrong team"))
    assert back["state"] == "firing" and back["acknowledged_by"] is None
    firing = runner.invoke(alerts_cli, ["list", "--state", "firing"])
    assert alert["id"] in firing.stdout and "DiskFull" in firing.stdout
    unknown = runner.invoke(alerts_cli, ["ack", "nosuchid"])
    assert unknown.exit_code == 1 and "no open alert with id 'nosuchid'" in unknown.stderr
    # The module is a command of its own in a fresh process too, as an operator runs it.
    address = ray.get_runtime_context().gcs_address
    cli = [sys.executable, "-m", "ray_enterprise.alerts.cli"]
    again = subprocess.run(
        [*cli, "ack", alert["id"], "--by", "bob", "--address", address],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
    )
    assert again.returncode == 0, again.stderr
    assert ray.get(actor.get.remote(alert["id"]))["acknowledged_by"] == "bob"
    changes = ray.get(actor.history.remote(alert_id=alert["id"]))
    kinds = [e["kind"] for e in changes if e["kind"] != "notified"]  # its tick may come later
    assert kinds == ["fired", "acknowledged", "unacknowledged", "acknowledged"]
    assert [e["actor"] for e in changes if e["kind"] != "notified"][1:] == ["alice"] * 2 + ["bob"]
    # Each operator action is in the audit trail of the same database, who and why included.
    trail = AuditLog(make_engine(f"sqlite:///{tmp_path / 'alerts.db'}", create=False))
    assert [(r.actor, r.action, r.target) for r in trail.records()] == [
        ("alice", "alert.acknowledge", alert["id"]),
        ("alice", "alert.unacknowledge", alert["id"]),
        ("bob", "alert.acknowledge", alert["id"]),
    ]
    assert json.loads(trail.records()[1].details) == {"reason": "wrong team"}
    assert trail.verify().ok


def test_a_silence_holds_notifications_back_until_it_expires(
    start_alerts: Callable[..., Any],
) -> None:
    with Webhook() as hook:
        actor = start_alerts(
            route=fast_route("hook"), handlers={"hook": {"type": "webhook", "url": hook.url}}
        )
        made = CliRunner().invoke(
            alerts_cli, ["silence", 'service="api"', "--for", "1h", "--comment", "deploy"]
        )
        assert made.exit_code == 0, made.output
        [silence] = ray.get(actor.silences.remote())
        assert silence["matchers"] == ['service="api"'] and silence["active"]
        assert silence["id"] in CliRunner().invoke(alerts_cli, ["silences"]).stdout
        ray.get(actor.ingest.remote([signal_of("Errors", "api"), signal_of("Errors", "db")]))
        wait_for(lambda: hook.alerts("Errors"), timeout=60, what="the unsilenced alert")
        # Both alerts flushed in the same tick, so the api one was held back, not late.
        assert [a["labels"]["service"] for a in hook.alerts()] == ["db"]
        expired = CliRunner().invoke(alerts_cli, ["expire", silence["id"]])
        assert expired.exit_code == 0, expired.output
        wait_for(lambda: len(hook.alerts()) == 2, timeout=60, what="the alert after the silence")
        assert hook.alerts()[1]["labels"]["service"] == "api"


def test_an_unacknowledged_alert_escalates_and_an_acknowledged_one_does_not(
    start_alerts: Callable[..., Any],
) -> None:
    with Webhook() as hook, Webhook() as pager:
        steps = [{"after": "2s", "handlers": ["pager"], "raise_severity": True}]
        actor = start_alerts(
            route=fast_route("hook", escalation=steps, group_by=["alertname"]),
            handlers={
                "hook": {"type": "webhook", "url": hook.url},
                "pager": {"type": "webhook", "url": pager.url},
            },
        )
        ray.get(actor.ingest.remote([signal_of("Slow", "api"), signal_of("Slow", "db")]))
        # Acknowledged at once (well within the step's 2 s, however loaded the machine).
        db_id = next(a["id"] for a in ray.get(actor.alerts.remote(service="db")))
        ray.get(actor.acknowledge.remote(db_id, "carol"))
        notified = wait_for(lambda: hook.alerts() if len(hook.alerts()) == 2 else [], what="both")
        assert {a["labels"]["service"] for a in notified} == {"api", "db"}
        [escalated] = wait_for(lambda: pager.alerts(), timeout=60, what="the escalation")
        assert escalated["labels"]["service"] == "api"
        assert escalated["severity"] == "critical" and escalated["escalation_step"] == 1
        assert pager.bodies[0]["kind"] == "escalation"
        assert [a["labels"]["service"] for a in pager.alerts()] == ["api"]


def test_sigkill_restores_alerts_and_silences_without_paging_twice(
    start_alerts: Callable[..., Any],
) -> None:
    with Webhook() as hook:
        route = fast_route("hook", routes=[{"match": 'service="late"', "group_wait": "500ms"}])
        actor = start_alerts(route=route, handlers={"hook": {"type": "webhook", "url": hook.url}})
        ray.get(actor.ingest.remote([signal_of("Down", "api")]))
        [paged] = wait_for(lambda: hook.alerts("Down"), timeout=60, what="the first page")
        ray.get(actor.acknowledge.remote(paged["id"], "dave", "looking"))
        silence = ray.get(actor.silence.remote('service="quiet"', "1h", "dave"))
        ray.get(actor.ingest.remote([signal_of("Noise", "quiet")]))
        before = ray.get(actor.history.remote())
        pid = ray.get(actor.__ray_call__.remote(lambda self: os.getpid()))
        os.kill(pid, signal.SIGKILL)
        wait_for(
            lambda: ray.get(actor.__ray_call__.remote(lambda self: os.getpid())) != pid,
            timeout=60,
            what="the restarted alert actor",
        )
        by_name = {a["labels"]["alertname"]: a for a in ray.get(actor.alerts.remote())}
        assert set(by_name) == {"Down", "Noise"}
        assert by_name["Down"]["id"] == paged["id"]
        assert by_name["Down"]["acknowledged_by"] == "dave"
        assert by_name["Noise"]["suppressed"]
        assert [s["id"] for s in ray.get(actor.silences.remote())] == [silence["id"]]
        assert ray.get(actor.history.remote())[: len(before)] == before
        # A later group flushes after the restored ones had their turn: by the time it arrives,
        # a duplicate page of the restored alert would have arrived too.
        ray.get(actor.ingest.remote([signal_of("Late", "late")]))
        wait_for(lambda: hook.alerts("Late"), timeout=60, what="the later alert")
        assert len(hook.alerts("Down")) == 1
        assert hook.alerts("Noise") == []


def test_a_hanging_webhook_does_not_block_another_handler_or_the_actor(
    start_alerts: Callable[..., Any],
) -> None:
    with Webhook(hang=True) as stuck, Webhook() as hook:
        hanging = {"type": "webhook", "url": stuck.url, "attempts": 1}
        actor = start_alerts(
            route=fast_route("stuck", "impatient", "hook"),
            handlers={
                "stuck": {**hanging, "timeout": "300s"},  # still hanging when the test ends
                "impatient": {**hanging, "timeout": "1s"},
                "hook": {"type": "webhook", "url": hook.url},
            },
            dispatch_timeout="300s",
        )
        ray.get(actor.ingest.remote([signal_of("First", "api")]))
        wait_for(lambda: hook.alerts("First"), timeout=60, what="the healthy handler")
        ray.get(actor.ingest.remote([signal_of("Second", "api")]))
        wait_for(lambda: hook.alerts("Second"), timeout=60, what="a second alert meanwhile")
        stats = wait_for(
            lambda: (s := ray.get(actor.handler_stats.remote()))["impatient"]["failed"] and s,
            timeout=60,
            what="the impatient handler's failure to be counted",
        )
        assert stats["stuck"] == {**stats["stuck"], "sent": 0, "failed": 0}  # still waiting
        assert "TimeoutError" in stats["impatient"]["last_error"]
        assert stats["hook"]["sent"] == 2 and stats["hook"]["failed"] == 0


def test_history_on_sqlite_and_trend_queries(
    start_alerts: Callable[..., Any], tmp_path: Path
) -> None:
    actor = start_alerts(route=fast_route())
    fired = [
        signal_of("Slow", "api"),
        signal_of("Errors", "api"),
        signal_of("Down", "db", "critical"),
    ]
    ray.get(actor.ingest.remote(fired))
    ids = {a["labels"]["alertname"]: a["id"] for a in ray.get(actor.alerts.remote())}
    ray.get(actor.acknowledge.remote(ids["Slow"], "erin"))
    ray.get(actor.ingest.remote([signal_of("Errors", "api", firing=False)]))
    trends = ray.get(actor.trends.remote(days=1))
    counts = {(r["service"], r["severity"]): r["count"] for r in trends["by_day"]}
    assert counts == {("api", "high"): 2, ("db", "critical"): 1}
    assert trends["mean_time_to_acknowledge_ms"] is not None
    assert trends["mean_time_to_resolve_ms"] is not None
    [resolved] = ray.get(actor.alerts.remote("resolved"))
    assert resolved["id"] == ids["Errors"]
    # The file outlives the actor: another process reads the same history from it.
    history = AlertHistory(make_engine(f"sqlite:///{tmp_path / 'alerts.db'}", create=False))
    assert {a.id for a in history.open_alerts()} == {ids["Slow"], ids["Down"]}
    shown = CliRunner().invoke(alerts_cli, ["history", "--json", "--days", "1"])
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.stdout)
    table = CliRunner().invoke(alerts_cli, ["history", "--days", "1"]).stdout
    assert "DiskFull" not in table and "Errors" in table and "mean time to resolve" in table
    assert {"fired", "acknowledged", "resolved"} <= {e["kind"] for e in doc["events"]}
    assert doc["trends"]["by_day"] == trends["by_day"]


def test_health_transitions_fire_and_recovery_resolves(start_alerts: Callable[..., Any]) -> None:
    actor = start_alerts(route=fast_route())
    assert report_health_transition("search", "failed", "critical", "restart intensity exceeded")
    assert flush_health_reports(60)
    [failed] = ray.get(actor.alerts.remote(service="search"))
    assert failed["labels"]["alertname"] == "ServiceFailed" and failed["severity"] == "critical"
    assert report_health_transition("search", "healthy", "critical")
    assert flush_health_reports(60)
    assert ray.get(actor.alerts.remote(service="search")) == []
    assert not report_health_transition("search", "failed", "urgent-ish")  # refused, no raise


def test_a_restarted_alert_actor_catches_up_with_the_registry(
    start_alerts: Callable[..., Any], registry: Any
) -> None:
    actor = start_alerts(route=fast_route())
    ray.get(actor.ingest.remote([HealthInput("db", "failed", Severity.HIGH, "lost")]))
    remove_alert_actor()  # down while db recovers and "gone" fails: both reports are missed
    registry.register_app_sync([faulty("db"), faulty("gone", restart={"policy": "temporary"})])
    registry.start_all_sync(timeout_s=60)
    registry.get_service_sync("gone").crash.remote()
    wait_for(lambda: states(registry)["gone"] == "failed", timeout=60, what="gone to fail")
    actor = start_alerts(route=fast_route())  # same history file: db's alert is restored
    open_now = wait_for(
        lambda: [a for a in ray.get(actor.alerts.remote()) if a["labels"]["service"] != "db"],
        timeout=60,
        what="the missed failure",
    )
    assert [(a["labels"]["alertname"], a["labels"]["service"]) for a in open_now] == [
        ("ServiceFailed", "gone")
    ]
    assert ray.get(actor.alerts.remote(service="db")) == []  # its recovery was caught up too


SLOW_SEARCH = {"name": "SlowSearch", "expr": 'p95(response_time_ms{endpoint="/search"}) > 500'}


def test_metric_rules_read_windows_passed_in(
    start_alerts: Callable[..., Any],
) -> None:
    # No periodic pull here: it would read the session's real observability actor (which has
    # no such series) and resolve the alert between the two calls below.
    actor = start_alerts(route=fast_route(), rules=[SLOW_SEARCH], rule_interval="1h")
    slow = StaticWindows({(("endpoint", "/search"),): [100.0] * 10 + [900.0] * 5})
    [result] = ray.get(actor.evaluate_rules.remote(slow))
    assert result["firing"] and result["value"] > 500
    [alert] = named(actor, "SlowSearch")
    assert alert["labels"] == {
        "alertname": "SlowSearch",
        "endpoint": "/search",
        "metric": "response_time_ms",
    }
    ray.get(actor.evaluate_rules.remote(StaticWindows({(("endpoint", "/search"),): [10.0]})))
    assert named(actor, "SlowSearch") == []


def test_metric_rules_are_pulled_periodically_from_the_observability_actor(
    start_alerts: Callable[..., Any],
) -> None:
    """The rule loop reads the named observability actor: the session's real one when an
    earlier test booted it (fed a slow batch here), else a stand-in that serves windows."""
    actor = start_alerts(route=fast_route(), rules=[SLOW_SEARCH], rule_interval="100ms")
    started = None
    try:
        real = ray.get_actor("observability", namespace=NAMESPACE)
        labels = (("endpoint", "/search"), ("service", "search"))
        slow = SeriesPoints("response_time_ms", MetricType.TIMER, labels, np.full(20, 800.0))
        ray.get(real.ingest.remote(MetricBatch(ts_ms=wall_clock_ms(), series=[slow])))
    except ValueError:
        source: Any = ray.remote(StaticWindows).options(
            name="observability", namespace=NAMESPACE, num_cpus=0
        )
        started = source.remote({(("endpoint", "/search"),): [800.0]})
    try:
        [alert] = wait_for(lambda: named(actor, "SlowSearch"), timeout=60, what="the periodic pull")
        assert alert["labels"]["alertname"] == "SlowSearch"
    finally:
        if started is not None:
            ray.kill(started)


def test_a_burst_of_ten_thousand_inputs_loses_no_state_change(
    start_alerts: Callable[..., Any], tmp_path: Path
) -> None:
    actor = start_alerts(route=fast_route(group_by=["alertname"]))  # no handlers: history only
    fire = [
        {"labels": {"alertname": "Burst", "instance": str(i)}, "severity": "low"}
        for i in range(5_000)
    ]
    resolve = [{**item, "firing": False} for item in fire]
    burst = fire + resolve
    # One batch after another: Ray does not run an async actor's calls in the order they were
    # sent, and a resolve that overtook its fire would touch nothing.
    touched = [
        ray.get(actor.ingest.remote(burst[i : i + 1_000]), timeout=180)
        for i in range(0, len(burst), 1_000)
    ]
    assert sum(touched) == 10_000
    history = AlertHistory(make_engine(f"sqlite:///{tmp_path / 'alerts.db'}", create=False))
    # Only this test's alerts: the session's other parts (the observability actor's fault
    # watches, the registry) may tell this actor about their own meanwhile.
    kinds = [c.kind.value for c in history.events(limit=100_000) if c.alert.name == "Burst"]
    assert kinds.count("fired") == 5_000 and kinds.count("resolved") == 5_000
    assert named(actor, "Burst") == []


def test_set_policy_refuses_a_bad_config_whole_and_swaps_a_good_one_in(
    start_alerts: Callable[..., Any],
) -> None:
    actor = start_alerts(route=fast_route())
    with Webhook() as hook:
        bad = {"route": fast_route("hook")}  # names a handler nobody configured
        with pytest.raises(ValueError, match=r"handlers \['hook'\] that are not configured"):
            ray.get(actor.set_policy.remote(bad))
        assert ray.get(actor.settings.remote())["route"]["handlers"] == []
        good = {**bad, "handlers": {"hook": {"type": "webhook", "url": hook.url}}}
        assert ray.get(actor.set_policy.remote(good))["route"]["handlers"] == ["hook"]
        ray.get(actor.ingest.remote([signal_of("AfterSwap", "api")]))
        wait_for(lambda: hook.alerts("AfterSwap"), timeout=60, what="the new route's webhook")


def test_the_registry_raises_and_resolves_service_alerts_itself(
    start_alerts: Callable[..., Any], registry: Any
) -> None:
    actor = start_alerts(route=fast_route())
    registry.register_app_sync(
        [faulty("db", restart={"max_restarts": 0}, criticality="critical"), faulty("api", "db")]
    )
    registry.start_all_sync(timeout_s=60)
    registry.get_service_sync("db").crash.remote()

    def open_alerts() -> list[tuple[str, str]]:  # this test's services only: the session
        return sorted(  # is shared, and other parts may have alerts of their own open
            (a["labels"]["alertname"], a["labels"]["service"])
            for a in ray.get(actor.alerts.remote())
            if a["labels"].get("service") in ("db", "api")
        )

    wait_for(
        lambda: open_alerts() == [("ServiceDegraded", "api"), ("ServiceFailed", "db")],
        timeout=60,
        what="the registry's FAILED and DEGRADED alerts",
    )
    registry.restart_sync("db")
    wait_for(lambda: open_alerts() == [], timeout=60, what="both alerts resolved on recovery")
