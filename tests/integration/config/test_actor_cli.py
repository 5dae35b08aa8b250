"""`ray-enterprise config ...` against a running ConfigActor, in this process's Ray session."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from actor_support import config_actor
from click.testing import CliRunner, Result

from ray_enterprise.config.cli import config as config_cli
from ray_enterprise.config.settings import ConfigSettings
from ray_enterprise.security.audit_key import load_audit_key

#: A line Ray echoes from a worker's log into this driver's stdout, e.g. "(ConfigActor pid=7) ...":
#: it lands in whatever a command prints at that moment, and is no part of the command's output.
_ECHOED = re.compile(r"^(\x1b\[[0-9;]*m)?\(\w+ pid=\d+")


@dataclass
class Ran:
    exit_code: int
    output: str


def run(*args: str) -> Ran:
    result: Result = CliRunner().invoke(config_cli, list(args), catch_exceptions=False)
    lines = result.output.splitlines(keepends=True)
    return Ran(result.exit_code, "".join(line for line in lines if not _ECHOED.match(line)))


def test_show_set_history_diff_rollback_and_compliance(ray_session: None, tmp_path: Path) -> None:
    # The audit key exists before the actor writes its first record: otherwise its one-time
    # "generated an audit key" warning, echoed by Ray into this driver's stdout, lands inside
    # the output a command here parses.
    load_audit_key()
    settings = ConfigSettings(database_url=f"sqlite:///{tmp_path / 's.db'}")
    with config_actor(settings):
        shown = run("show", "cache")
        assert shown.exit_code == 0 and "# version 1, section cache" in shown.output
        assert "default_ttl_seconds: 300.0" in shown.output

        assert run("set", "cache.default_ttl_seconds", "42").output.endswith("now version 2\n")
        assert (
            json.loads(run("show", "--json").output)["value"]["cache"]["default_ttl_seconds"] == 42
        )
        refused = run("set", "--", "cache.default_ttl_seconds", "-3")
        assert refused.exit_code == 1
        assert "cache.default_ttl_seconds" in refused.output and "version stays" in refused.output

        as_yaml = yaml.safe_load(run("show", "cache", "--format", "yaml").output)
        assert as_yaml == json.loads(run("show", "cache", "--format", "json").output)
        assert as_yaml["version"] == 2 and as_yaml["value"]["default_ttl_seconds"] == 42
        versions = json.loads(run("history", "--format", "json").output)
        assert [v["version"] for v in versions][-2:] == [1, 2]
        listed = run("history").output.splitlines()
        assert listed[0].split() == ["VERSION", "TIME", "SOURCE", "CHANGED"]
        assert listed[-1].split()[0] == "2" and "config set cache.default_ttl_seconds" in listed[-1]
        assert "~ cache.default_ttl_seconds: 300.0 -> 42.0" in run("diff", "1", "2").output

        assert "now version 3" in run("rollback", "1").output
        assert "default_ttl_seconds: 300.0" in run("show", "cache").output
        missing = run("rollback", "9")
        assert missing.exit_code == 1 and "no configuration version 9" in missing.output

        assert run("compliance").exit_code == 0  # development: no rule binds
        production = run("compliance", "--json", "--environment", "production")
        report = json.loads(production.output)
        assert production.exit_code == 1 and report["passed"] is False
        failed = {r["rule"] for r in report["results"] if not r["passed"]}
        assert failed == {"api-keys-required"}  # the defaults break only this production rule

        layers = run("sources").output
        assert "files" in layers and "database" in layers and "environment" in layers
