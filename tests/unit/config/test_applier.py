from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from ray_enterprise.config.applier import ConfigApplier
from ray_enterprise.config.errors import ComplianceError, ConfigValidationError
from ray_enterprise.config.events import EventLog
from ray_enterprise.config.history import ConfigHistory
from ray_enterprise.config.merge import MergedConfig, merge_layers
from ray_enterprise.config.schema import default_document
from ray_enterprise.config.sealing import DocumentSealer
from ray_enterprise.storage import make_engine

PLANTED = "planted-applier-secret-31"


def merged(*layers: tuple[str, dict[str, Any]]) -> MergedConfig:
    return merge_layers([("defaults", default_document()), *layers])


@pytest.fixture
def history(tmp_path: Path) -> ConfigHistory:
    sealer = DocumentSealer(Fernet.generate_key())
    return ConfigHistory(make_engine(f"sqlite:///{tmp_path / 'h.db'}"), sealer=sealer)


def applier(history: ConfigHistory) -> tuple[ConfigApplier, EventLog]:
    events = EventLog()
    return ConfigApplier(history, events), events


def test_first_boot_records_version_one_against_the_defaults(history: ConfigHistory) -> None:
    app, _ = applier(history)
    first = app.boot(merged(("files", {"cache": {"default_ttl_seconds": 5}})))
    assert first is not None and first.version == 1 and app.version == 1
    assert first.changed_sections == ("cache",)
    assert app.config.cache.default_ttl_seconds == 5
    # Every section counts as delivered at version 1, so a new subscriber gets it once.
    assert app.section_version("search") == 1


def test_a_change_gets_the_next_version_and_only_its_sections_move(
    history: ConfigHistory,
) -> None:
    app, events = applier(history)
    app.boot(merged())
    applied = app.apply(merged(("database", {"search": {"index_name": "x"}})), "database")
    assert applied is not None and applied.version == 2
    assert applied.changed_sections == ("search",)
    assert (app.section_version("search"), app.section_version("cache")) == (2, 1)
    assert app.apply(merged(("database", {"search": {"index_name": "x"}})), "database") is None
    assert [e.kind for e in events.events()] == ["applied", "applied"]


def test_a_refused_document_keeps_the_running_version_and_is_logged(
    history: ConfigHistory,
) -> None:
    app, events = applier(history)
    app.boot(merged())
    with pytest.raises(ConfigValidationError) as info:
        app.apply(merged(("files", {"cache": {"default_ttl_seconds": -1}})), "files")
    assert info.value.field == "cache.default_ttl_seconds" and info.value.source == "files"
    with pytest.raises(ComplianceError):
        app.apply(merged(("environment", {"environment": "production"})), "environment")
    assert app.version == 1 and app.config.cache.default_ttl_seconds == 300.0
    refused = events.rejections()
    assert [(r.kind, r.field, r.kept_version) for r in refused] == [
        ("validation", "cache.default_ttl_seconds", 1),
        ("compliance", "security.api_keys_enabled", 1),
    ]
    assert [e.kind for e in events.events()][-2:] == ["rejected", "rejected"]


def test_a_restart_resumes_the_same_version_and_section_versions(
    history: ConfigHistory,
) -> None:
    app, _ = applier(history)
    layer = ("vault", {"security": {"jwt_secret": PLANTED}, "search": {"index_name": "y"}})
    app.boot(merged(layer))
    app.apply(merged(layer, ("files", {"cache": {"enabled": False}})), "files")
    again, _ = applier(history)
    assert again.boot(merged(layer, ("files", {"cache": {"enabled": False}}))) is None
    assert again.version == 2
    assert (again.section_version("cache"), again.section_version("search")) == (2, 1)
    secret = again.config.security.jwt_secret
    assert isinstance(secret, SecretStr) and secret.get_secret_value() == PLANTED
    # Sources that moved while nobody ran make one new version at boot.
    third, _ = applier(history)
    assert third.boot(merged(layer)) is not None and third.version == 3


def test_a_rollback_is_a_new_version_with_the_old_document_and_its_secrets(
    history: ConfigHistory,
) -> None:
    app, events = applier(history)
    secret = ("vault", {"security": {"jwt_secret": PLANTED}})
    app.boot(merged(secret, ("files", {"cache": {"default_ttl_seconds": 10}})))
    app.apply(merged(secret, ("files", {"cache": {"default_ttl_seconds": 20}})), "files")
    back = app.rollback(1)
    assert back is not None and back.version == 3 and back.record.source == "rollback to 1"
    assert app.config.cache.default_ttl_seconds == 10
    jwt = app.config.security.jwt_secret
    assert jwt is not None and jwt.get_secret_value() == PLANTED
    assert events.events()[-1].kind == "rolled_back"
    assert PLANTED not in str(history.get(3).to_dict())
