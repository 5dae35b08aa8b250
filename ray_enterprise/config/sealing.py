"""Sealing each version's real document, so a rollback runs that version's real secrets.

History shows documents redacted; a rollback that took its secrets from the redacted copy put
masks into live values (a URL's password became ``**********``). So every version is also kept
whole, encrypted with Fernet (AES-128-CBC and HMAC-SHA256, from ``cryptography``) under a key
that never goes into the database: a dump of the database alone reveals nothing.

The key is ``$RAY_ENTERPRISE_CONFIG_KEY`` (a Fernet key: 32 url-safe base64 bytes; on a cluster,
set it from a secret on every node that may run the ConfigActor), else a file
``config-history.key`` under the ray_enterprise home, made on first use with mode 0600. A
version sealed under another key cannot be opened, and a rollback to it is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from ray_enterprise.config.errors import ConfigError
from ray_enterprise.config.merge import reveal
from ray_enterprise.storage import home_dir

KEY_ENV = "RAY_ENTERPRISE_CONFIG_KEY"
KEY_FILE = "config-history.key"


class SealError(ConfigError):
    """A sealed version cannot be opened (other key, damaged), or the key is unusable."""


class DocumentSealer:
    """Encrypts and decrypts whole documents with one Fernet key."""

    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise SealError(
                f"{KEY_ENV} is not a Fernet key (32 url-safe base64-encoded bytes); make one "
                "with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`"
            ) from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DocumentSealer:
        """The key from ``$RAY_ENTERPRISE_CONFIG_KEY``, else the home's key file (made once)."""
        env = os.environ if environ is None else environ
        if env.get(KEY_ENV):
            return cls(env[KEY_ENV].encode())
        path = home_dir(env) / KEY_FILE
        return cls(_key_file(path))

    def seal(self, document: Mapping[str, Any]) -> str:
        """The real values of ``document`` (``SecretStr`` unwrapped), encrypted."""
        plain = json.dumps(reveal(document), sort_keys=True, default=str).encode()
        return self._fernet.encrypt(plain).decode()

    def open(self, sealed: str, version: int) -> dict[str, Any]:
        try:
            plain = self._fernet.decrypt(sealed.encode())
        except InvalidToken:
            raise SealError(
                f"the secrets of version {version} were sealed under another key than "
                f"{KEY_ENV} (or the home's {KEY_FILE}) now gives; restore that key to roll "
                "back to it"
            ) from None
        document = json.loads(plain)
        assert isinstance(document, dict)
        return document


def _key_file(path: Path) -> bytes:
    """The key in ``path``; made there when missing, readable by this user only."""
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:  # O_EXCL: two processes making the key at once keep the first one's
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key
