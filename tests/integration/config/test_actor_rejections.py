"""A bad change (unparsable file, schema violation, compliance failure, refused `set`) is
rejected with the field and the source named; the running version stays until a good one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import ray
from actor_support import config_actor, eventually

from ray_enterprise.config.settings import ConfigSettings
from ray_enterprise.security.audit import AuditLog
from ray_enterprise.storage import make_engine

GOOD = "cache:\n  default_ttl_seconds: 10\n"


def write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def files_health(config: Any) -> dict[str, Any]:
    return next(s for s in ray.get(config.sources.remote()) if s["layer"] == "files")


def rejections(config: Any) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = ray.get(config.rejections.remote())
    return result


def test_bad_changes_are_rejected_naming_field_and_source_and_the_version_stays(
    ray_session: None, tmp_path: Path
) -> None:
    app = tmp_path / "app.yaml"
    write(app, GOOD)
    settings = ConfigSettings(files=[str(app)], database_url=f"sqlite:///{tmp_path / 's.db'}")
    with config_actor(settings) as config:
        assert ray.get(config.current_version.remote()) == 1

        def ttl() -> float:
            return float(ray.get(config.get.remote("cache")).default_ttl_seconds)

        # Unparsable YAML: the source fails, says file and line, and keeps its values.
        write(app, "cache:\n  default_ttl_seconds: 20\n  tiers: [unclosed\n")
        health = eventually(lambda: (h := files_health(config)) and not h["ok"] and h)
        assert str(app) in health["last_error"] and "line" in health["last_error"]
        kinds = [e["kind"] for e in ray.get(config.events.remote())]
        assert "source_failed" in kinds

        # A schema violation: rejected with the field and the file that set it.
        write(app, "cache:\n  default_ttl_seconds: -1\n")
        found = eventually(lambda: rejections(config), what="a rejection")
        assert found[0]["field"] == "cache.default_ttl_seconds"
        assert found[0]["kind"] == "validation" and found[0]["kept_version"] == 1
        assert str(app) in found[0]["source"] and "files" in found[0]["trigger"]
        assert files_health(config)["ok"]  # the file parses; the document is what was refused

        # A compliance failure: production needs API keys, audit, an encryption key ...
        write(app, GOOD + "environment: production\n")
        eventually(lambda: len(rejections(config)) == 2, what="a compliance rejection")
        refused = rejections(config)[1]
        assert refused["kind"] == "compliance"
        assert refused["field"] == "security.api_keys_enabled"
        assert "api-keys-required" in refused["message"]

        # `set` checks before it writes: a bad value names the field and is not stored.
        with pytest.raises(Exception, match=r"cache\.default_ttl_seconds"):
            ray.get(config.set_value.remote("cache.default_ttl_seconds", "soon"))

        assert ray.get(config.current_version.remote()) == 1
        assert ttl() == 10.0
        events = ray.get(config.events.remote())
        assert [e["field"] for e in events if e["kind"] == "rejected"] == [
            "cache.default_ttl_seconds",
            "security.api_keys_enabled",
            "cache.default_ttl_seconds",
        ]

        # The next good change applies as version 2, and the log keeps what was refused.
        write(app, "cache:\n  default_ttl_seconds: 15\n")
        eventually(lambda: ray.get(config.current_version.remote()) == 2, what="version 2")
        assert ttl() == 15.0
        assert len(rejections(config)) == 3

    # Each refusal and each applied version left an audit record in the history's database,
    # and the chain verifies.
    trail = AuditLog(make_engine(settings.history), create=False)
    assert trail.verify().ok
    done = [(r.action, r.outcome, json.loads(r.details)["field"]) for r in trail.records()]
    assert done == [
        ("config.applied", "success", None),
        ("config.rejected", "rejected", "cache.default_ttl_seconds"),
        ("config.rejected", "rejected", "security.api_keys_enabled"),
        ("config.rejected", "rejected", "cache.default_ttl_seconds"),
        ("config.applied", "success", None),
    ]
