"""Which sources the ConfigActor reads: settings given at boot, from YAML or the environment.

These are settings *about* configuration (where the files are, which database, which Vault),
so they cannot come from the configuration itself. The defaults need nothing installed: no
files, the SQLite file of :func:`ray_enterprise.storage.default_db_url`, no Vault, and the
``RAY_ENTERPRISE_<SECTION>__...`` environment variables.

Environment variables (all optional)::

    RAY_ENTERPRISE_CONFIG_FILES        paths separated by ':' (os.pathsep), later files win
    RAY_ENTERPRISE_DB_URL              database source and history (SQLAlchemy URL)
    RAY_ENTERPRISE_CONFIG_HISTORY_URL  history elsewhere than the database source
    RAY_ENTERPRISE_VAULT_ADDR          enables the Vault source (else Vault's own VAULT_ADDR)
    RAY_ENTERPRISE_VAULT_TOKEN         or RAY_ENTERPRISE_VAULT_ROLE_ID + _SECRET_ID (AppRole),
                                       or RAY_ENTERPRISE_VAULT_KUBERNETES_ROLE (Kubernetes auth,
                                       with _KUBERNETES_JWT_PATH and _KUBERNETES_MOUNT);
                                       else Vault's own VAULT_TOKEN
    RAY_ENTERPRISE_VAULT_CACERT        CA bundle for Vault's TLS (else VAULT_CACERT)
    RAY_ENTERPRISE_VAULT_MOUNT, RAY_ENTERPRISE_VAULT_PATH_PREFIX
    RAY_ENTERPRISE_CONFIG_ENV_PREFIX   default RAY_ENTERPRISE__ (its one-underscore form,
                                       RAY_ENTERPRISE_, is the documented spelling)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ray_enterprise.config.errors import ConfigError, ConfigParseError
from ray_enterprise.config.sources import (
    ENV_PREFIX,
    SERVICE_ACCOUNT_TOKEN,
    ConfigSource,
    DatabaseConfigSource,
    EnvironmentConfigSource,
    FileConfigSource,
    VaultConfigSource,
)
from ray_enterprise.safe_load import DocumentError, read_document
from ray_enterprise.storage import DB_URL_ENV, default_db_url

SETTINGS_ENV = "RAY_ENTERPRISE_CONFIG_"
VAULT_ENV = "RAY_ENTERPRISE_VAULT_"


#: Where each setting comes from in :meth:`ConfigSettings.from_env`, to name it in errors.
#: The Vault settings read from ``RAY_ENTERPRISE_VAULT_<KEY>`` (besides ``_ADDR``); ``cacert``
#: last, as it is named apart in the settings' error messages.
_VAULT_KEYS = (
    "token",
    "role_id",
    "secret_id",
    "kubernetes_role",
    "kubernetes_jwt_path",
    "kubernetes_mount",
    "mount",
    "path_prefix",
    "cacert",
)
_ENV_NAMES = {
    "files": SETTINGS_ENV + "FILES",
    "database_url": DB_URL_ENV,
    "history_url": SETTINGS_ENV + "HISTORY_URL",
    "env_prefix": SETTINGS_ENV + "ENV_PREFIX",
    "vault": (
        f"{VAULT_ENV}TOKEN (or {VAULT_ENV}ROLE_ID and {VAULT_ENV}SECRET_ID,"
        f" or {VAULT_ENV}KUBERNETES_ROLE)"
    ),
    **{
        f"vault.{key}": VAULT_ENV + ("ADDR" if key == "url" else key.upper())
        for key in ("url", *_VAULT_KEYS[:-1])
    },
    "vault.ca_cert": f"{VAULT_ENV}CACERT (or VAULT_CACERT)",
}


def _dotted(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


class ConfigSettingsError(ConfigError):
    """The settings that say where configuration comes from are wrong; nothing was started.

    ``problems`` pairs the setting (the environment variable) with what is wrong with it;
    the values given are never shown, since some are credentials.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        listed = "; ".join(f"{name}: {message}" for name, message in problems)
        super().__init__(f"config settings refused: {listed}. Fix them and start again.")


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VaultSettings(_Settings):
    """A Vault (or OpenBao) KV v2 mount; a token, AppRole ``role_id`` + ``secret_id``, or a
    Kubernetes auth ``kubernetes_role`` that logs in with the pod's service-account token."""

    url: str
    token: SecretStr | None = None
    role_id: str | None = None
    secret_id: SecretStr | None = None
    approle_mount: str = "approle"
    kubernetes_role: str | None = None
    #: Read at every login, not once: the kubelet rotates a projected token in this file.
    kubernetes_jwt_path: str = SERVICE_ACCOUNT_TOKEN
    kubernetes_mount: str = "kubernetes"
    #: A CA bundle to verify the server's TLS certificate with (``VAULT_CACERT``).
    ca_cert: str | None = None
    mount: str = "secret"
    path_prefix: str = "ray_enterprise"
    poll_interval: float = Field(1.0, gt=0)
    timeout: float = Field(3.0, gt=0)

    @model_validator(mode="after")
    def _has_credentials(self) -> VaultSettings:
        if self.token is None and not self.role_id and not self.kubernetes_role:
            raise ValueError(
                "vault needs a token, an AppRole role_id and secret_id, or a kubernetes_role"
            )
        if self.role_id and self.kubernetes_role:
            raise ValueError("give AppRole (role_id) or Kubernetes (kubernetes_role), not both")
        if self.role_id and self.token is None and self.secret_id is None:
            raise ValueError("AppRole needs a secret_id with its role_id")
        return self


class ConfigSettings(_Settings):
    """Where the ConfigActor finds its sources; everything optional on a laptop."""

    files: tuple[str, ...] = ()
    files_missing_ok: bool = False
    file_poll_interval: float = Field(0.1, gt=0)
    database_url: str | None = None
    database_poll_interval: float = Field(0.5, gt=0)
    #: With PostgreSQL NOTIFY, the poll that catches writes made without a NOTIFY.
    database_fallback_interval: float = Field(5.0, gt=0)
    database_channel: str = "ray_enterprise_config"
    history_url: str | None = None
    vault: VaultSettings | None = None
    env_prefix: str = ENV_PREFIX
    env_poll_interval: float = Field(1.0, gt=0)
    #: consul-template's ``wait``: apply once writes have paused this long ... (a change
    #: that comes when nothing was applied for this long is applied at once: ``BurstWindow``)
    wait_min_s: float = Field(0.02, ge=0)
    #: ... or once the first unapplied write is this old, whichever comes first.
    wait_max_s: float = Field(0.5, ge=0)

    @field_validator("files", mode="before")
    @classmethod
    def _absolute(cls, value: Any) -> Any:
        # The actor runs in another working directory: resolve relative paths where given.
        if isinstance(value, (str, os.PathLike)):
            value = [value]
        return tuple(str(Path(p).expanduser().absolute()) for p in value or ())

    @property
    def database(self) -> str:
        return self.database_url or default_db_url()

    @property
    def history(self) -> str:
        return self.history_url or self.database

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConfigSettings:
        """Settings from ``RAY_ENTERPRISE_CONFIG_*``/``RAY_ENTERPRISE_VAULT_*`` variables."""
        env = os.environ if environ is None else environ
        data: dict[str, Any] = {}
        files = env.get(SETTINGS_ENV + "FILES")
        if files:
            data["files"] = [p for p in files.split(os.pathsep) if p]
        if env.get(DB_URL_ENV):
            data["database_url"] = env[DB_URL_ENV]
        if env.get(SETTINGS_ENV + "HISTORY_URL"):
            data["history_url"] = env[SETTINGS_ENV + "HISTORY_URL"]
        if env.get(SETTINGS_ENV + "ENV_PREFIX"):
            data["env_prefix"] = env[SETTINGS_ENV + "ENV_PREFIX"]
        address = env.get(VAULT_ENV + "ADDR") or env.get("VAULT_ADDR")
        if address:
            vault = {"url": address}
            for key in _VAULT_KEYS:
                if env.get(VAULT_ENV + key.upper()):
                    vault[key] = env[VAULT_ENV + key.upper()]
            # Vault's own variables, as its CLI and hvac users already set them, come second.
            logs_in = "role_id" in vault or "kubernetes_role" in vault
            if "token" not in vault and not logs_in and env.get("VAULT_TOKEN"):
                vault["token"] = env["VAULT_TOKEN"]
            if "cacert" not in vault and env.get("VAULT_CACERT"):
                vault["cacert"] = env["VAULT_CACERT"]
            if "cacert" in vault:
                vault["ca_cert"] = vault.pop("cacert")
            data["vault"] = vault
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            # Not a ValueError: a caller that skips the ConfigActor on ValueError ran with no
            # config at all. pydantic's own text shows the inputs (a secret id): messages only.
            raise ConfigSettingsError(
                [
                    (_ENV_NAMES.get(_dotted(e["loc"]), _dotted(e["loc"])), e["msg"])
                    for e in exc.errors()
                ]
            ) from None

    @classmethod
    def from_yaml(cls, path: str | Path, *, section: str = "config") -> ConfigSettings:
        """Settings from the ``section`` mapping of a YAML file; relative files from its dir."""
        path = Path(path)
        try:
            raw = read_document(path) or {}
        except DocumentError as exc:
            raise ConfigParseError(str(path), exc.reason, line=exc.line) from None
        if not isinstance(raw, dict):
            raise ConfigParseError(str(path), "top level must be a mapping")
        data = dict(raw.get(section) or {})
        data["files"] = [str(path.parent / f) for f in data.get("files") or ()]
        return cls.model_validate(data)

    def build_sources(self) -> list[ConfigSource]:
        """One source per layer, lowest priority first (files, database, vault, environment)."""
        sources: list[ConfigSource] = [
            FileConfigSource(
                self.files, missing_ok=self.files_missing_ok, poll_interval=self.file_poll_interval
            ),
            DatabaseConfigSource(
                self.database,
                channel=self.database_channel,
                poll_interval=self.database_poll_interval,
                notify_fallback_interval=self.database_fallback_interval,
            ),
        ]
        if self.vault is not None:
            v = self.vault
            sources.append(
                VaultConfigSource(
                    v.url,
                    token=v.token.get_secret_value() if v.token else None,
                    role_id=v.role_id,
                    secret_id=v.secret_id.get_secret_value() if v.secret_id else None,
                    approle_mount=v.approle_mount,
                    kubernetes_role=v.kubernetes_role,
                    kubernetes_jwt_path=v.kubernetes_jwt_path,
                    kubernetes_mount=v.kubernetes_mount,
                    mount=v.mount,
                    path_prefix=v.path_prefix,
                    poll_interval=v.poll_interval,
                    timeout=v.timeout,
                    verify=v.ca_cert or True,
                )
            )
        sources.append(
            EnvironmentConfigSource(prefix=self.env_prefix, poll_interval=self.env_poll_interval)
        )
        return sources
