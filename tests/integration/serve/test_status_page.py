"""The status page in a real headless Chromium (Debian's package, driven by Playwright) against
the management API on real Serve: the graph follows a SIGKILL, alerts are acknowledged and
refused from the page, and a screenshot of the page under the demo is kept as an artefact."""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
import requests

from ray_enterprise.alerts.actor import get_alert_handle
from ray_enterprise.anomaly.feed import series_text
from ray_enterprise.anomaly.shard import get_shard_handles, remove_shards
from ray_enterprise.config.actor import get_config_handle
from ray_enterprise.observability.metric_batch import MetricType
from ray_enterprise.observability.platform import EnterpriseObservabilityPlatform, flush_all
from ray_enterprise.observability.tracing import TraceStatus
from ray_enterprise.security.apikeys import Scope
from ray_enterprise.spec import load_app_spec
from tests.integration.helpers import faulty, service
from tests.integration.serve.conftest import Api
from tests.support import wait_for

pytestmark = pytest.mark.timeout(300)

CHROMIUM = "chromium"
DEMO = Path(__file__).resolve().parents[3] / "cluster" / "demo.yaml"
GREEN = "rgb(46, 125, 50)"  # --healthy in style.css
RED = "rgb(211, 47, 47)"  # --restarting
WAIT_MS = 60_000
DETECTOR = {"name": "ewm_zscore", "params": {"alpha": 0.05, "warmup": 30}}


def chromium_binary() -> str:
    found = shutil.which(CHROMIUM) or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
    )
    if found is None:
        message = f"{CHROMIUM} is not on PATH; install the Debian package chromium"
        if os.environ.get("CI"):
            pytest.fail(message + ", but CI is set: the status page tests must run")
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    binary = chromium_binary()
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(
            executable_path=binary, headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("RAY_ENTERPRISE_ARTEFACTS")
    folder = Path(where) if where else Path(tempfile.gettempdir()) / "ray-enterprise-artefacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_page(browser: Any, api: Api, key: str) -> Any:
    """A fresh tab (its own sessionStorage) on /ui, signed in with ``key``."""
    page = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(api.url + "/ui")
    page.fill("#key", key)
    page.click("#login button[type=submit]")
    return page


def node(name: str, phase: str | None = None) -> str:
    selector = f'#graph g.node[data-service="{name}"]'
    return selector + (f'[data-phase="{phase}"]' if phase else "")


def wait_coloured(page: Any, name: str, phase: str, colour: str) -> None:
    """Until the node shows ``phase`` painted ``colour``, read in one go in the page (the
    graph is redrawn when the status changes, so two separate reads could see two drawings)."""
    page.wait_for_function(
        """([selector, colour]) => {
            const rect = document.querySelector(selector);
            return rect !== null && getComputedStyle(rect).fill === colour;
        }""",
        arg=[node(name, phase) + " rect", colour],
    )


def columns(page: Any, names: list[str]) -> list[float]:
    return list(
        page.evaluate(
            """(selectors) => selectors.map(
                (s) => document.querySelector(s).getBoundingClientRect().x)""",
            [node(n) for n in names],
        )
    )


def test_the_page_and_its_files_need_no_key_and_forbid_foreign_code(api: Api) -> None:
    page = requests.get(api.url + "/ui", timeout=60)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "https://" not in page.text  # nothing from a CDN
    script = requests.get(api.url + "/ui/app.js", timeout=60)
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "sessionStorage" in script.text
    # A path outside the page's files is no public route: without a key, the bare 401.
    assert requests.get(api.url + "/ui/..%2Fapi.py", timeout=60).status_code == 401
    assert requests.get(api.url + "/ui/nothing.js", timeout=60).status_code == 404
    assert requests.get(api.url + "/status", timeout=60).status_code == 401  # data still gated


def test_the_key_stays_for_the_tab_and_a_refused_one_is_forgotten(api: Api, browser: Any) -> None:
    page = open_page(browser, api, api.key(Scope.STATUS_READ).secret)
    page.wait_for_selector("#verdict.verdict:not(:has-text('…'))")
    page.reload()  # sessionStorage survives a reload of the tab: no second prompt
    page.wait_for_selector("#board", state="visible")
    assert page.is_hidden("#login")
    page.click("#forget")
    page.wait_for_selector("#login", state="visible")
    assert page.evaluate("sessionStorage.length") == 0
    page.fill("#key", "rek_not-a-real-key")
    page.click("#login button[type=submit]")
    page.wait_for_selector("#login-error:has-text('401')")
    assert page.is_hidden("#board")
    assert page.evaluate("sessionStorage.length") == 0
    page.context.close()


def test_graph_shows_every_service_and_a_killed_one_turns_red_then_green(
    api: Api, registry: Any, browser: Any
) -> None:
    # The victim takes 3 s to start, so its way back is long enough for a 1 s poll to see.
    specs = [
        faulty("page-db", criticality="critical"),
        faulty("page-cache", "page-db", config={"start_delay_s": 3.0}),
        faulty("page-api", "page-cache"),
    ]
    registry.register_app_sync(specs)
    registry.start_all_sync()
    page = open_page(browser, api, api.key(Scope.STATUS_READ).secret)
    for spec in specs:
        wait_coloured(page, spec.name, "healthy", GREEN)
    # One column per dependency level, dependencies to the left of their dependents.
    db, cache, api_x = columns(page, ["page-db", "page-cache", "page-api"])
    assert db < cache < api_x
    assert "criticality: critical" in page.text_content(node("page-db") + " title")

    handle = registry.get_service_sync("page-cache")
    os.kill(ray.get(handle.pid.remote(), timeout=60), signal.SIGKILL)
    wait_coloured(page, "page-cache", "restarting", RED)
    wait_coloured(page, "page-cache", "healthy", GREEN)
    assert service(registry, "page-cache")["restarts"] == 1
    page.click(node("page-cache"))
    detail = page.text_content("#node-detail")
    assert "restarts: 1" in detail and "page-cache: healthy" in detail
    assert "last error:" in detail
    page.context.close()


def _raise_alert(name: str) -> tuple[Any, dict[str, Any]]:
    actor = get_alert_handle(create=True)
    signal_ = {
        "labels": {"alertname": name, "service": "page-test"},
        "severity": "high",
        "firing": True,
        "annotations": {"summary": f"raised by {name}"},
    }
    ray.get(actor.ingest.remote([signal_]), timeout=60)
    alert = wait_for(
        lambda: next(
            (a for a in ray.get(actor.alerts.remote()) if a["labels"]["alertname"] == name), None
        ),
        what=f"alert {name}",
    )
    return actor, {**signal_, "id": alert["id"]}


def _resolve(actor: Any, alert: dict[str, Any]) -> None:
    signal_ = {k: v for k, v in alert.items() if k != "id"}
    ray.get(actor.ingest.remote([{**signal_, "firing": False}]), timeout=60)


def test_an_alert_acknowledged_and_silenced_on_the_page_is_so_at_the_alert_actor(
    api: Api, browser: Any
) -> None:
    actor, alert = _raise_alert("PageAckTest")
    acker = api.key(Scope.STATUS_READ, Scope.ALERTS_ACK)
    page = open_page(browser, api, acker.secret)
    row = f'#alerts tr[data-alert-id="{alert["id"]}"]'
    page.wait_for_selector(row + '[data-state="firing"]')
    page.click(row + " button.ack")
    page.wait_for_selector(row + '[data-state="acknowledged"]')
    seen = ray.get(actor.get.remote(alert["id"]), timeout=60)
    assert (seen["state"], seen["acknowledged_by"]) == ("acknowledged", f"key:{acker.key.key_id}")
    assert seen["ack_reason"] == "from the status page"
    assert "Acknowledged PageAckTest" in page.text_content("#alerts-message")

    page.click(row + " button.silence")
    page.wait_for_selector("#alerts-message:has-text('Silenced PageAckTest')")
    silences = ray.get(actor.silences.remote(), timeout=60)
    mine = [s for s in silences if s["created_by"] == f"key:{acker.key.key_id}" and s["active"]]
    assert mine, silences
    assert any("PageAckTest" in str(s["matchers"]) for s in mine)
    for s in mine:
        ray.get(actor.expire_silence.remote(s["id"]), timeout=60)
    bad = requests.post(
        f"{api.url}/alerts/{alert['id']}/silence",
        json={"duration": "until friday"},
        headers={"Authorization": f"Bearer {acker.secret}"},
        timeout=60,
    )
    assert bad.status_code == 422 and "duration" in bad.json()["error"], bad.text
    _resolve(actor, alert)
    page.context.close()


def test_a_key_without_the_scope_sees_acknowledge_and_rollback_refused(
    api: Api, browser: Any
) -> None:
    actor, alert = _raise_alert("PageRefusalTest")
    writer = api.key(Scope.CONFIG_WRITE).secret
    put = requests.put(
        api.url + "/config/services.pagetest.enabled",
        json={"value": True},
        headers={"Authorization": f"Bearer {writer}"},
        timeout=60,
    )
    assert put.status_code == 200, put.text
    written = put.json()["version"]
    reader = api.key(Scope.STATUS_READ, Scope.CONFIG_READ).secret
    page = open_page(browser, api, reader)
    row = f'#alerts tr[data-alert-id="{alert["id"]}"]'
    page.click(row + " button.ack")
    page.wait_for_selector("#alerts-message:has-text('403')")
    assert "alerts:ack" in page.text_content("#alerts-message")
    assert ray.get(actor.get.remote(alert["id"]), timeout=60)["state"] == "firing"

    page.wait_for_selector(f"#config-version:has-text('running version {written}')")
    page.click(f'#config-history li[data-version="{written - 1}"] button.rollback')
    page.wait_for_selector("#config-message:has-text('403')")
    assert "config:write" in page.text_content("#config-message")
    config = get_config_handle(create=False)
    assert ray.get(config.current_version.remote(), timeout=60) == written
    _resolve(actor, alert)
    page.context.close()


def test_a_rollback_from_the_page_runs_the_old_version_again(api: Api, browser: Any) -> None:
    writer = api.key(Scope.CONFIG_READ, Scope.CONFIG_WRITE).secret
    headers = {"Authorization": f"Bearer {writer}"}
    before = requests.get(api.url + "/config", headers=headers, timeout=60).json()
    put = requests.put(
        api.url + "/config/services.pagerollback.enabled",
        json={"value": True},
        headers=headers,
        timeout=60,
    )
    assert put.status_code == 200, put.text
    page = open_page(
        browser, api, api.key(Scope.STATUS_READ, Scope.CONFIG_READ, Scope.CONFIG_WRITE).secret
    )
    page.wait_for_selector(f"#config-version:has-text('running version {put.json()['version']}')")
    page.click(f'#config-history li[data-version="{before["version"]}"] button.rollback')
    page.wait_for_selector(
        f"#config-message:has-text('Rolled back to version {before['version']}')"
    )
    after = requests.get(api.url + "/config", headers=headers, timeout=60).json()
    assert after["version"] == put.json()["version"] + 1
    assert after["value"] == before["value"]  # the old document, secrets still redacted
    assert "pagerollback" not in str(after["value"])
    trail = [r for r in api.audit.records() if r.action == "config.rollback"]
    assert trail and trail[-1].target == str(before["version"])
    page.context.close()


def test_under_the_demo_the_page_shows_every_service_series_anomalies_and_a_trace(
    api: Api, registry: Any, browser: Any, artefacts: Path
) -> None:
    app = load_app_spec(DEMO)
    registry.register_app_sync(app)
    registry.start_all_sync()
    # One shard with a detector that learns fast, fed a series the store also holds, so the
    # plot of that series carries the shard's anomaly events.
    remove_shards()
    shard = get_shard_handles(1, create=True, detector=DETECTOR, min_samples=60)[0]
    platform = EnterpriseObservabilityPlatform()
    tags = {"endpoint": "/search"}
    rnd = random.Random(7)
    values = [120.0 + 5.0 * math.sin(t / 10.0) + rnd.gauss(0.0, 1.0) for t in range(150)]
    values[140] += 80.0
    for value in values:  # one plotted point per flush
        platform.record_metric("page_latency_ms", value, MetricType.GAUGE, tags, "api")
        flush_all()
    key = series_text("page_latency_ms", (("endpoint", "/search"), ("service", "api")))
    # The shard learns the same values over the time the plot spans (the collector may merge
    # flushes, so the plotted points can be fewer), as the central actor's feed would send them.
    plotted = ray.get(platform.handle.plot.remote(600.0, 1000), timeout=60)
    [mine] = [s for s in plotted if s["series"] == key]
    first, last = mine["points"][0][0], mine["points"][-1][0]
    step = (last - first) / (len(values) - 1)
    points = [(key, first + i * step, v) for i, v in enumerate(values)]
    assert ray.get(shard.ingest.remote(points), timeout=60) >= 1
    span = platform.start_trace("search_request", "api")
    child = platform.start_trace("query_index", "search")  # under the current span
    platform.finish_span(child, TraceStatus.SUCCESS)
    platform.finish_span(span, TraceStatus.SUCCESS)
    flush_all()
    actor, alert = _raise_alert("DemoLatencyHigh")
    try:
        page = open_page(browser, api, api.key(Scope.STATUS_READ, Scope.CONFIG_READ).secret)
        for spec in app.services:
            page.wait_for_selector(node(spec.name, "healthy"))
        plot = f"#series .plot[data-series={json.dumps(key)}]"  # a CSS string, quotes escaped
        page.wait_for_selector(plot + ':not([data-anomalies="0"]) circle.anomaly')
        # Axes with units: the y axis in the series' unit (its name ends in _ms) from its lowest
        # to its highest value, the x axis in UTC wall-clock time.
        assert page.text_content(plot + " .axis.y text.unit") == "ms"
        read = "els => els.map(e => e.textContent)"
        levels = [float(t) for t in page.eval_on_selector_all(plot + " .axis.y text.tick", read)]
        assert len(levels) == 3 and levels[0] < 120.0 < levels[2], levels
        times = page.eval_on_selector_all(plot + " .axis.x text.tick", read)
        assert len(times) == 3, times
        assert all(re.fullmatch(r"\d\d:\d\d:\d\d", t) for t in times), times
        assert page.text_content(plot + " .axis.x text.unit") == "time (UTC)"
        assert "detector:" in page.text_content("#detector")
        page.wait_for_selector(f'#alerts tr[data-alert-id="{alert["id"]}"]')
        page.wait_for_selector("#waterfall g.span")
        page.wait_for_selector("#config-history li")
        shot = artefacts / "status-page.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        page.context.close()
    finally:
        _resolve(actor, alert)
        remove_shards()
