"""Hot reload end to end: a file edit reaches a running Service's on_config, and keeps doing
so after the ConfigActor's own SIGKILL, which it survives with the same version."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import ray
from actor_support import config_actor, eventually
from config_services import RECORDER, TYPED

import ray_enterprise
from ray_enterprise.config.client import ConfigOrchestrator
from ray_enterprise.config.settings import ConfigSettings
from ray_enterprise.spec import ServiceSpec


def write(path: Path, text: str) -> None:
    """Replace the file atomically, as editors and config management tools do."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def settings_for(tmp_path: Path, app: Path) -> ConfigSettings:
    return ConfigSettings(
        files=[str(app)],
        database_url=f"sqlite:///{tmp_path / 'state.db'}",
        database_poll_interval=0.2,
    )


def recorder(registry: ray_enterprise.EnterpriseServiceRegistry) -> Any:
    spec = ServiceSpec.model_validate(
        {
            "name": "recorder",
            "class": RECORDER,
            "config_section": "cache",
            "health": {"period_s": 0.5},
        }
    )
    registry.register_app_sync([spec])
    registry.start_all_sync(timeout_s=60)
    return registry.get_service_sync("recorder")


def ttls(service: Any) -> list[tuple[float, int]]:
    return [(value.default_ttl_seconds, v) for _, value, v in ray.get(service.calls.remote())]


def test_a_file_edit_reaches_a_running_services_on_config(
    registry: ray_enterprise.EnterpriseServiceRegistry, tmp_path: Path
) -> None:
    app = tmp_path / "app.yaml"
    write(app, "cache:\n  default_ttl_seconds: 10\n")
    with config_actor(settings_for(tmp_path, app)) as config:
        service = recorder(registry)
        first = eventually(lambda: ttls(service), what="the value at start")
        assert first == [(10.0, 1)]
        write(app, "cache:\n  default_ttl_seconds: 20\n")
        eventually(lambda: len(ttls(service)) == 2, what="the edit to reach on_config")
        assert ttls(service) == [(10.0, 1), (20.0, 2)]
        # Another section's change is not pushed to a cache subscriber.
        write(app, "cache:\n  default_ttl_seconds: 20\nsearch:\n  index_name: other\n")
        eventually(lambda: ray.get(config.current_version.remote()) == 3, what="version 3")
        write(app, "cache:\n  default_ttl_seconds: 30\nsearch:\n  index_name: other\n")
        eventually(lambda: len(ttls(service)) == 3, what="version 4 on the service")
        assert ttls(service)[-1] == (30.0, 4)


def test_a_pushed_version_has_its_propagation_stages_in_order(
    registry: ray_enterprise.EnterpriseServiceRegistry, tmp_path: Path
) -> None:
    app = tmp_path / "app.yaml"
    write(app, "cache:\n  default_ttl_seconds: 10\n")
    with config_actor(settings_for(tmp_path, app)) as config:
        service = recorder(registry)
        eventually(lambda: ttls(service) == [(10.0, 1)], what="the value at start")
        write(app, "cache:\n  default_ttl_seconds: 20\n")
        eventually(lambda: len(ttls(service)) == 2, what="the edit to reach on_config")
        stages = ray.get(config.stage_times.remote(2))
        order = ["woke", "detected", "apply_start", "applied", "first_push", "last_push"]
        times = [stages[stage] for stage in order]
        assert times == sorted(times)
        assert ray.get(config.stage_times.remote(99)) == {}


def test_after_its_own_sigkill_the_config_actor_has_the_same_version_and_still_pushes(
    registry: ray_enterprise.EnterpriseServiceRegistry, tmp_path: Path
) -> None:
    app = tmp_path / "app.yaml"
    write(app, "cache:\n  default_ttl_seconds: 10\n")
    with config_actor(settings_for(tmp_path, app)) as config:
        service = recorder(registry)
        write(app, "cache:\n  default_ttl_seconds: 11\n")
        eventually(lambda: ttls(service) == [(10.0, 1), (11.0, 2)], what="version 2")
        seen: list[tuple[float, int]] = []
        driver = ConfigOrchestrator(config)

        def on_cache(_section: str, value: Any, version: int) -> None:
            seen.append((value.default_ttl_seconds, version))

        driver.add_change_handler("cache", on_cache, last_version=0)
        driver.start_watching_sync()
        try:
            eventually(lambda: seen == [(11.0, 2)], what="the driver handler's first call")
            pid = ray.get(config.pid.remote())
            os.kill(pid, signal.SIGKILL)
            # Calls are retried on the restarted actor: this waits for it.
            assert ray.get(config.ready.remote(), timeout=60) == 2
            assert ray.get(config.pid.remote()) != pid
            assert [r["version"] for r in ray.get(config.history.remote())] == [1, 2]
            write(app, "cache:\n  default_ttl_seconds: 12\n")
            eventually(lambda: ttls(service)[-1:] == [(12.0, 3)], what="a push after restart")
            eventually(lambda: seen[-1:] == [(12.0, 3)], what="the driver handler after restart")
            assert [v for _, v in ttls(service)] == [1, 2, 3]  # nothing twice, nothing skipped
            assert [v for _, v in seen] == [2, 3]
        finally:
            driver.stop_watching_sync()


def test_a_service_model_validates_its_own_section_and_fills_its_defaults(
    registry: ray_enterprise.EnterpriseServiceRegistry, tmp_path: Path
) -> None:
    app = tmp_path / "app.yaml"
    write(app, "services:\n  indexer:\n    batch_size: 50\n")
    with config_actor(settings_for(tmp_path, app)) as config:
        spec = ServiceSpec.model_validate(
            {"name": "indexer", "class": TYPED, "config_section": "services.indexer"}
        )
        registry.register_app_sync([spec])
        registry.start_all_sync(timeout_s=60)
        service = registry.get_service_sync("indexer")

        def seen() -> list[Any]:
            return [value for _, value, _ in ray.get(service.calls.remote())]

        # The model's defaults are filled in before the service sees its section.
        eventually(lambda: {"batch_size": 50, "language": "en"} in seen(), what="the model")
        # A value the model refuses is rejected naming the field and the file; the service
        # keeps what it had.
        write(app, "services:\n  indexer:\n    batch_size: -3\n")
        refused = eventually(lambda: ray.get(config.rejections.remote()), what="a rejection")
        assert refused[-1]["field"] == "services.indexer.batch_size"
        assert str(app) in refused[-1]["source"]
        write(app, "services:\n  indexer:\n    batch_size: 80\n    language: de\n")
        eventually(lambda: seen()[-1] == {"batch_size": 80, "language": "de"}, what="80/de")
        assert all(value["batch_size"] > 0 for value in seen())


def test_a_typed_section_set_nowhere_reaches_the_service_as_the_models_defaults(
    registry: ray_enterprise.EnterpriseServiceRegistry, tmp_path: Path
) -> None:
    app = tmp_path / "app.yaml"
    write(app, "cache:\n  default_ttl_seconds: 5\n")  # nothing about the indexer anywhere
    with config_actor(settings_for(tmp_path, app)):
        spec = ServiceSpec.model_validate(
            {"name": "indexer", "class": TYPED, "config_section": "services.indexer"}
        )
        registry.register_app_sync([spec])
        registry.start_all_sync(timeout_s=60)
        service = registry.get_service_sync("indexer")
        calls = eventually(lambda: ray.get(service.calls.remote()), what="the first on_config")
        assert calls[0][1] == {"batch_size": 100, "language": "en"}
