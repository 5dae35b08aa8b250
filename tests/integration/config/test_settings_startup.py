"""Bad settings about where configuration comes from stop the start, loudly and secret-free."""

from __future__ import annotations

import pytest
import ray

import ray_enterprise
from ray_enterprise.config.actor import ACTOR_NAME, remove_config_actor
from ray_enterprise.config.settings import ConfigSettingsError

PLANTED = "planted-startup-secret-id-5a1f"


def test_connect_refuses_a_vault_secret_id_without_role_id_and_starts_no_config(
    ray_session: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    remove_config_actor()
    monkeypatch.setenv("RAY_ENTERPRISE_VAULT_ADDR", "http://127.0.0.1:1")
    monkeypatch.setenv("RAY_ENTERPRISE_VAULT_SECRET_ID", PLANTED)
    with pytest.raises(ConfigSettingsError, match="RAY_ENTERPRISE_VAULT_ROLE_ID") as info:
        ray_enterprise.connect()
    assert PLANTED not in str(info.value)
    assert ACTOR_NAME not in ray.util.list_named_actors()
