"""Alerting at parity with its anchors, end to end on the session's real Ray: a metric rule's
``for`` (pending, then firing), a route's ``repeat_interval`` and a PagerDuty-style escalation
policy with its acknowledgement timeout, each seen at real webhooks on 127.0.0.1; and the
handlers' jittered retries against a real endpoint that answers 503.

The pure rules behind them are tested on a fake clock in tests/unit/alerts; here only what the
actor adds (its timer, history, dispatch) is on trial. Waits are conditions with deadlines.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import pytest
import ray
import ray.cloudpickle
from click.testing import CliRunner

from ray_enterprise.alerts.cli import alerts as alerts_cli
from ray_enterprise.alerts.handlers import WebhookHandler
from tests.integration.alerts import alert_support
from tests.integration.alerts.alert_support import StaticWindows, Webhook
from tests.integration.alerts.test_handlers import Recorder, Sleeps, notification, run, serve
from tests.support import wait_for

ray.cloudpickle.register_pickle_by_value(alert_support)
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def bodies(hook: Webhook, kind: str) -> list[dict[str, Any]]:
    return [b for b in list(hook.bodies) if b["kind"] == kind]


def test_a_rule_pends_for_its_for_then_repeats_and_escalates_until_an_ack_times_out(
    start_alerts: Callable[..., Any],
) -> None:
    with Webhook() as hook, Webhook() as pager, Webhook() as lead:
        actor = start_alerts(
            route={
                "handlers": [],
                "group_wait": 0,
                "group_interval": "100ms",
                "routes": [
                    {
                        "match": 'alertname="ParitySlow"',
                        "handlers": ["hook"],
                        "group_by": ["alertname"],
                        "repeat_interval": "1s",
                        "escalation_policy": "oncall",
                    }
                ],
            },
            escalation_policies={
                "oncall": {
                    "levels": [
                        {"handlers": ["pager"], "delay": "2s"},
                        {"handlers": ["lead"], "delay": "1h"},
                    ],
                    "ack_timeout": "2s",
                }
            },
            handlers={
                name: {"type": "webhook", "url": h.url}
                for name, h in (("hook", hook), ("pager", pager), ("lead", lead))
            },
            rules=[{"name": "ParitySlow", "expr": "max(response_time_ms) > 500", "for": "1s"}],
            rule_interval="1h",  # evaluated by this test only, against its own windows
        )
        slow = StaticWindows({(("service", "api"),): [900.0]})
        assert ray.get(actor.evaluate_rules.remote(slow)) == []
        [pending] = ray.get(actor.rule_states.remote())
        assert (pending["rule"], pending["state"]) == ("ParitySlow", "pending")
        listed = CliRunner().invoke(alerts_cli, ["rules", "--json"])
        assert listed.exit_code == 0, listed.output
        assert [r["state"] for r in json.loads(listed.stdout)] == ["pending"]
        assert hook.alerts("ParitySlow") == []
        [fired] = wait_for(
            lambda: ray.get(actor.evaluate_rules.remote(slow)), timeout=30, what="`for` to pass"
        )
        assert fired["firing"] and ray.get(actor.rule_states.remote())[0]["state"] == "firing"
        # Level 1 is paged with the first notice; the group repeats every repeat_interval.
        [page] = wait_for(lambda: bodies(pager, "escalation"), timeout=30, what="level 1")
        assert page["escalationStep"] == 0
        wait_for(lambda: len(hook.alerts("ParitySlow")) >= 2, timeout=30, what="a repeat")
        [up] = wait_for(lambda: bodies(lead, "escalation"), timeout=30, what="level 2")
        assert up["escalationStep"] == 1 and up["alerts"][0]["labels"]["service"] == "api"
        alert_id = up["alerts"][0]["id"]
        ray.get(actor.acknowledge.remote(alert_id, "erin", "on it"))
        [again] = wait_for(lambda: bodies(lead, "ack_timeout"), timeout=30, what="ack timeout")
        assert again["alerts"][0]["acknowledged_by"] is None
        handed = [
            e
            for e in ray.get(actor.history.remote(alert_id=alert_id))
            if e["actor"] == "ack_timeout"
        ]
        assert [e["kind"] for e in handed] == ["unacknowledged"]


def test_webhook_retries_against_a_real_503_wait_jittered_delays() -> None:
    async def scenario() -> None:
        recorder, sleeps = Recorder(fail=2, status=503), Sleeps()
        async with serve(recorder) as url:
            handler = WebhookHandler(
                "a", url, attempts=3, backoff_s=0.5, sleep=sleeps, rng=lambda: 0.5
            )
            await handler.send(notification())
            await handler.close()
        assert recorder.attempts == 3 and len(recorder.requests) == 1
        assert sleeps.delays == pytest.approx([0.55, 1.1])  # default jitter 0.2, half used

    run(scenario())
