from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from ray_enterprise.config.settings import ConfigSettings, ConfigSettingsError
from ray_enterprise.config.sources import (
    DatabaseConfigSource,
    EnvironmentConfigSource,
    FileConfigSource,
    VaultConfigSource,
)
from ray_enterprise.storage import default_db_url

PLANTED = "planted-settings-token-77"


def test_the_defaults_need_no_vault_and_no_server() -> None:
    settings = ConfigSettings()
    sources = settings.build_sources()
    assert [type(s) for s in sources] == [
        FileConfigSource,
        DatabaseConfigSource,
        EnvironmentConfigSource,
    ]
    assert settings.database == default_db_url() and settings.history == settings.database


def test_settings_from_environment_variables(tmp_path: Path) -> None:
    env = {
        "RAY_ENTERPRISE_CONFIG_FILES": os.pathsep.join(["a.yaml", str(tmp_path / "b.yaml")]),
        "RAY_ENTERPRISE_DB_URL": "postgresql://u:pw@db/ray",
        "RAY_ENTERPRISE_VAULT_ADDR": "http://127.0.0.1:8200",
        "RAY_ENTERPRISE_VAULT_TOKEN": PLANTED,
    }
    settings = ConfigSettings.from_env(env)
    assert settings.files == (str(Path("a.yaml").absolute()), str(tmp_path / "b.yaml"))
    assert settings.database == "postgresql://u:pw@db/ray"
    assert settings.vault is not None and settings.vault.url == "http://127.0.0.1:8200"
    assert PLANTED not in repr(settings) and PLANTED not in str(settings.model_dump())
    assert [s.layer for s in settings.build_sources()] == [
        "files",
        "database",
        "vault",
        "environment",
    ]
    assert any(isinstance(s, VaultConfigSource) for s in settings.build_sources())


def test_settings_from_a_yaml_section_resolve_files_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text("config:\n  files: [app.yaml]\n  wait_min_s: 0.1\n")
    settings = ConfigSettings.from_yaml(path)
    assert settings.files == (str(tmp_path / "app.yaml"),) and settings.wait_min_s == 0.1
    path.write_text("config:\n  vault: {url: 'http://x'}\n")
    with pytest.raises(ValidationError, match="a token, an AppRole role_id and secret_id, or a"):
        ConfigSettings.from_yaml(path)


def test_bad_vault_settings_name_the_variable_and_hide_the_values() -> None:
    env = {"RAY_ENTERPRISE_VAULT_ADDR": "http://127.0.0.1:8200"}
    with pytest.raises(ConfigSettingsError) as info:
        ConfigSettings.from_env({**env, "RAY_ENTERPRISE_VAULT_SECRET_ID": PLANTED})
    message = str(info.value)
    assert "RAY_ENTERPRISE_VAULT_ROLE_ID" in message and PLANTED not in message
    assert not isinstance(info.value, ValueError)  # runtime.connect skips on ValueError
    with pytest.raises(ConfigSettingsError, match="RAY_ENTERPRISE_VAULT_TOKEN") as info:
        ConfigSettings.from_env({**env, "RAY_ENTERPRISE_VAULT_ROLE_ID": PLANTED})
    assert PLANTED not in str(info.value) and "secret_id" in str(info.value)


def test_vaults_own_variables_are_read_after_ours() -> None:
    env = {"VAULT_ADDR": "https://vault:8200", "VAULT_TOKEN": PLANTED, "VAULT_CACERT": "/ca.pem"}
    vault = ConfigSettings.from_env(env).vault
    assert vault is not None and vault.url == "https://vault:8200" and vault.ca_cert == "/ca.pem"
    assert vault.token is not None and vault.token.get_secret_value() == PLANTED
    ours = ConfigSettings.from_env(
        {
            **env,
            "RAY_ENTERPRISE_VAULT_ADDR": "http://127.0.0.1:8200",
            "RAY_ENTERPRISE_VAULT_ROLE_ID": "r",
            "RAY_ENTERPRISE_VAULT_SECRET_ID": "s",
        }
    ).vault
    assert ours is not None and ours.url == "http://127.0.0.1:8200" and ours.token is None


def test_kubernetes_auth_from_the_environment_with_the_pods_token_by_default() -> None:
    env = {
        "RAY_ENTERPRISE_VAULT_ADDR": "https://vault:8200",
        "RAY_ENTERPRISE_VAULT_KUBERNETES_ROLE": "ray",
        "VAULT_TOKEN": PLANTED,
    }
    vault = ConfigSettings.from_env(env).vault
    assert vault is not None and vault.kubernetes_role == "ray" and vault.token is None
    assert vault.kubernetes_jwt_path == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert vault.kubernetes_mount == "kubernetes"
    moved = ConfigSettings.from_env(
        {
            **env,
            "RAY_ENTERPRISE_VAULT_KUBERNETES_JWT_PATH": "/var/run/secrets/tokens/vault",
            "RAY_ENTERPRISE_VAULT_KUBERNETES_MOUNT": "k8s-east",
        }
    )
    [source] = [s for s in moved.build_sources() if isinstance(s, VaultConfigSource)]
    assert source.kubernetes_role == "ray" and source.kubernetes_mount == "k8s-east"
    assert source.kubernetes_jwt_path == "/var/run/secrets/tokens/vault"


def test_approle_and_kubernetes_auth_together_are_refused_by_name() -> None:
    env = {
        "RAY_ENTERPRISE_VAULT_ADDR": "https://vault:8200",
        "RAY_ENTERPRISE_VAULT_KUBERNETES_ROLE": "ray",
        "RAY_ENTERPRISE_VAULT_ROLE_ID": "r",
        "RAY_ENTERPRISE_VAULT_SECRET_ID": PLANTED,
    }
    with pytest.raises(ConfigSettingsError, match="RAY_ENTERPRISE_VAULT_KUBERNETES_ROLE") as info:
        ConfigSettings.from_env(env)
    assert "not both" in str(info.value) and PLANTED not in str(info.value)
