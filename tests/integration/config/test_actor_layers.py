"""The ConfigActor merges all five layers from real sources, each above the one below."""

from __future__ import annotations

from pathlib import Path

import ray
from actor_support import config_actor, eventually, section_value
from config_backends import BaoServer

from ray_enterprise.config.settings import ConfigSettings, VaultSettings
from ray_enterprise.config.sources import DatabaseConfigSource

KEY = "observability.cardinality_limit"


def test_each_layer_overrides_the_one_below_through_the_actor(
    ray_session: None, tmp_path: Path, bao: BaoServer
) -> None:
    app = tmp_path / "app.yaml"
    app.write_text(
        "observability:\n  cardinality_limit: 2\n  series_capacity: 2\n  trace_sample_rate: 0.2\n"
        "search:\n  index_name: from-file\n"
    )
    db_url = f"sqlite:///{tmp_path / 'state.db'}"
    settings = ConfigSettings(
        files=[str(app)],
        database_url=db_url,
        database_poll_interval=0.1,
        history_url=f"sqlite:///{tmp_path / 'history.db'}",
        vault=VaultSettings(url=bao.url, token="root", poll_interval=0.2),
    )
    # The environment layer is the actor's own process environment.
    env = {"RAY_ENTERPRISE__OBSERVABILITY__CARDINALITY_LIMIT": "5"}
    with config_actor(settings, env_vars=env) as handle:
        assert section_value(handle, KEY) == 5  # environment beats everything
        assert section_value(handle, "observability.series_capacity") == 2  # files
        assert section_value(handle, "observability.flush_interval_seconds") == 1.0  # defaults
        assert section_value(handle, "search.index_name") == "from-file"

        database = DatabaseConfigSource(db_url)
        database.set_sync("observability.series_capacity", 3)
        database.set_sync("observability.trace_sample_rate", 0.3)
        eventually(
            lambda: section_value(handle, "observability.series_capacity") == 3, what="database"
        )
        bao.client().secrets.kv.v2.create_or_update_secret(
            path="ray_enterprise/observability",
            secret={"trace_sample_rate": 0.4, "cardinality_limit": 4},
            mount_point="secret",
        )
        eventually(
            lambda: section_value(handle, "observability.trace_sample_rate") == 0.4, what="vault"
        )
        assert section_value(handle, KEY) == 5  # vault is still below the environment
        assert section_value(handle, "observability.series_capacity") == 3  # database
        history = ray.get(handle.history.remote())
        assert [r["version"] for r in history] == list(range(1, len(history) + 1))
        sources = {s["layer"]: s for s in ray.get(handle.sources.remote())}
        assert set(sources) == {"files", "database", "vault", "environment"}
        assert all(s["ok"] for s in sources.values()), sources
