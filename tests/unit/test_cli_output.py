"""What the CLI prints, without a cluster: --format renderings and the stage lines of progress."""

from __future__ import annotations

import json

import yaml

from ray_enterprise.cli_common import chosen_format, render
from ray_enterprise.cli_progress import StageLog, service_stages
from tests.support import FakeClock

DOC = {"services": [{"name": "db", "since": 1767225600.5, "deps": ("a", "b")}], "note": "é"}


def test_json_and_yaml_print_the_same_document_and_only_a_table_draws_the_table() -> None:
    drawn: list[str] = []

    def table() -> str:
        drawn.append("table")
        return "SERVICE\ndb"

    as_json = json.loads(render(DOC, "json", table))
    as_yaml = yaml.safe_load(render(DOC, "yaml", table))
    assert (
        as_json
        == as_yaml
        == {
            "services": [{"name": "db", "since": 1767225600.5, "deps": ["a", "b"]}],
            "note": "é",
        }
    )
    assert drawn == []
    assert render(DOC, "table", table) == "SERVICE\ndb"
    assert chosen_format("table", as_json=True) == "json"  # --json stays an alias
    assert chosen_format("yaml", as_json=False) == "yaml"


def test_a_stage_is_the_state_plus_replicas_when_several_plus_the_upgrade_phase() -> None:
    services = [
        {"name": "db", "state": "healthy", "desired_replicas": 1, "replicas": 1},
        {"name": "api", "state": "healthy", "desired_replicas": 3, "replicas": 2},
        {"name": "cache", "state": "starting"},
    ]
    stages = service_stages(services, {"db": "baking", "api": "rolling_back"})
    assert stages == {
        "db": "upgrade baking; healthy",
        "api": "upgrade rolling back; healthy, 2/3 replicas",
        "cache": "starting",
    }


def test_the_stage_log_says_each_change_once_with_the_time_since_it_began() -> None:
    clock = FakeClock(100.0)
    log = StageLog(clock=clock)
    assert log.changes({"db": "pending", "api": "pending"}) == [
        "[   0.0s] db: pending",
        "[   0.0s] api: pending",
    ]
    clock.advance(1.5)
    assert log.changes({"db": "starting", "api": "pending"}) == [
        "[   1.5s] db: pending -> starting"
    ]
    assert log.changes({"db": "starting", "api": "pending"}) == []
    clock.advance(60.0)
    assert log.changes({"db": "upgrade baking; healthy"}) == [
        "[  61.5s] db: starting -> upgrade baking; healthy",
        "[  61.5s] api: removed",
    ]
