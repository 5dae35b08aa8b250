"""All five layers from real sources, merged and validated; a planted secret never leaks."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from config_backends import BaoServer

from ray_enterprise.config.compliance import check_compliance
from ray_enterprise.config.errors import ConfigError
from ray_enterprise.config.history import ConfigHistory
from ray_enterprise.config.merge import (
    LAYER_ORDER,
    MergedConfig,
    diff_documents,
    merge_layers,
    redact,
)
from ray_enterprise.config.schema import default_document, validate_config
from ray_enterprise.config.sources import (
    DatabaseConfigSource,
    EnvironmentConfigSource,
    FileConfigSource,
    VaultConfigSource,
)
from ray_enterprise.storage import make_engine

PLANTED = "planted-e2e-secret-b7d2c"
KEY = "observability.cardinality_limit"


Sources = tuple[FileConfigSource, DatabaseConfigSource, VaultConfigSource, EnvironmentConfigSource]


def build(tmp_path: Path, bao: BaoServer, env: dict[str, str]) -> Sources:
    (tmp_path / "app.yaml").write_text(
        "observability:\n  cardinality_limit: 2\n  series_capacity: 2\n"
        "search:\n  index_name: from-file\n"
    )
    return (
        FileConfigSource([tmp_path / "app.yaml"]),
        DatabaseConfigSource(f"sqlite:///{tmp_path / 'state.db'}"),
        VaultConfigSource(bao.url, token="root"),
        EnvironmentConfigSource(environ=env),
    )


async def merged_from(sources: Sources) -> MergedConfig:
    layers: list[tuple[str, dict[str, Any]]] = [("defaults", default_document())]
    for source in sources:
        layers.append((source.layer, await source.load()))
    return merge_layers(layers)


def test_each_layer_overrides_the_one_below(tmp_path: Path, bao: BaoServer) -> None:
    env: dict[str, str] = {}
    sources = build(tmp_path, bao, env)
    db = sources[1]
    assert [s.layer for s in sources] == list(LAYER_ORDER[1:])
    kv = bao.client().secrets.kv.v2

    async def run() -> None:
        merged = await merged_from(sources)
        assert (
            validate_config(merged.document).observability.cardinality_limit,
            merged.provenance[KEY],
        ) == (2, "files")
        assert merged.provenance["observability.flush_interval_seconds"] == "defaults"
        await db.set(KEY, 3)
        merged = await merged_from(sources)
        assert (merged.document["observability"]["cardinality_limit"], merged.provenance[KEY]) == (
            3,
            "database",
        )
        kv.create_or_update_secret(
            path="ray_enterprise/observability",
            secret={"cardinality_limit": 4},
            mount_point="secret",
        )
        merged = await merged_from(sources)
        assert (merged.document["observability"]["cardinality_limit"], merged.provenance[KEY]) == (
            4,
            "vault",
        )
        env["RAY_ENTERPRISE__OBSERVABILITY__CARDINALITY_LIMIT"] = "5"
        merged = await merged_from(sources)
        config = validate_config(merged.document, merged=merged)
        assert config.observability.cardinality_limit == 5
        assert merged.provenance[KEY] == "environment"
        # Layers below still supply what no higher layer set.
        assert config.observability.series_capacity == 2
        assert config.search.index_name == "from-file"

    asyncio.run(run())


def test_a_bad_value_is_rejected_naming_field_and_source(tmp_path: Path, bao: BaoServer) -> None:
    env = {"RAY_ENTERPRISE__SEARCH__DEFAULT_LIMITT": "5"}
    sources = build(tmp_path, bao, env)
    merged = asyncio.run(merged_from(sources))
    with pytest.raises(ConfigError) as info:
        validate_config(merged.document, merged=merged)
    assert "search.default_limitt" in str(info.value) and "environment" in str(info.value)


def test_a_planted_secret_never_appears_in_output(
    tmp_path: Path, bao: BaoServer, caplog: pytest.LogCaptureFixture
) -> None:
    env = {
        "RAY_ENTERPRISE__SERVICES__BILLING__API_KEY": PLANTED,
        "RAY_ENTERPRISE__ENVIRONMENT": "production",
    }
    sources = build(tmp_path, bao, env)
    db = sources[1]
    bao.client().secrets.kv.v2.create_or_update_secret(
        path="ray_enterprise/security", secret={"jwt_secret": PLANTED}, mount_point="secret"
    )
    history = ConfigHistory(make_engine(f"sqlite:///{tmp_path / 'history.db'}"))
    seen: list[str] = []

    async def run() -> None:
        await db.set("services.billing.password", PLANTED)
        merged = await merged_from(sources)
        config = validate_config(merged.document, merged=merged)
        assert config.security.jwt_secret is not None
        assert config.security.jwt_secret.get_secret_value() == PLANTED
        diff = diff_documents(default_document(), config.model_dump())
        record = history.record(config.model_dump(), diff, "vault")
        report = check_compliance(config)
        seen.extend(
            [
                str(config),
                repr(config),
                config.model_dump_json(),
                str(config.model_dump()),
                str(diff),
                repr(diff),
                diff.to_json(),
                repr(record),
                json.dumps(record.to_dict()),
                json.dumps([r.to_dict() for r in history.history()]),
                str(report),
                report.to_json(),
                json.dumps(redact(merged.document)),
                repr(merged),
                *(repr(s) for s in sources),
                *(str(s.health()) for s in sources),
            ]
        )
        # A value of the wrong type next to the secret: the error must not echo it.
        env["RAY_ENTERPRISE__SECURITY__AUDIT_RETENTION_DAYS"] = PLANTED
        bad = await merged_from(sources)
        with pytest.raises(ConfigError) as info:
            validate_config(bad.document, merged=bad)
        seen.append(str(info.value))
        # Break the database and the file: failures are logged and reported, still without it.
        (tmp_path / "app.yaml").write_text(f"security: {{jwt_secret: {PLANTED}\n")
        (tmp_path / "state.db").write_bytes(b"not a database" * 100)
        for source in sources:
            await source.load()
            seen.append(str(source.health()))
        with pytest.raises(ConfigError) as write_error:
            await db.set("security.jwt_secret", PLANTED)
        seen.append(str(write_error.value))

    with caplog.at_level(logging.DEBUG):
        asyncio.run(run())
    seen.append(caplog.text)
    for text_ in seen:
        assert PLANTED not in text_, text_[:300]
    assert history.latest_version() == 1
    assert PLANTED not in str(history.get(1).to_dict())
    for stored in tmp_path.glob("history.db*"):
        assert PLANTED.encode() not in stored.read_bytes()
