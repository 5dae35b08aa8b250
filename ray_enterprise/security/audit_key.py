"""The audit key: the HMAC key of every audit record and checkpoint, kept outside the database.

Whoever can write the database can rewrite a plain hash chain from the first record on; with
every link an HMAC under a key the database never holds, they cannot. Where the key comes
from, first match wins:

1. ``RAY_ENTERPRISE_AUDIT_KEY``: the key itself (at least 32 characters), e.g. injected from a
   Kubernetes or Vault secret (Vault Agent's env template) into every node's environment;
2. ``RAY_ENTERPRISE_AUDIT_KEY_FILE``: a file holding it (a mounted secret, or a file Vault
   Agent renders), which must exist;
3. ``$RAY_ENTERPRISE_HOME/audit.key``, created at first use with 32 random bytes, mode 0600.

The third is per machine: a cluster whose audit writers run on several nodes must give them
all the same key through 1 or 2, or each node's records fail the others' verification.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from ray_enterprise.security.errors import AuditError
from ray_enterprise.storage import home_dir

KEY_ENV = "RAY_ENTERPRISE_AUDIT_KEY"
KEY_FILE_ENV = "RAY_ENTERPRISE_AUDIT_KEY_FILE"
KEY_FILE_NAME = "audit.key"
MIN_KEY_CHARS = 32
_logger = logging.getLogger("ray_enterprise.security.audit")


class AuditKeyError(AuditError):
    """The audit key is missing or too weak where it was configured; ``where`` names it."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        super().__init__(f"audit key from {where}: {problem}")


def default_key_file(environ: Mapping[str, str] | None = None) -> Path:
    return home_dir(environ) / KEY_FILE_NAME


def load_audit_key(environ: Mapping[str, str] | None = None) -> bytes:
    """The key, from the environment, the configured file, or the generated default file."""
    env = os.environ if environ is None else environ
    given = env.get(KEY_ENV)
    if given:
        return _checked(given.strip(), f"${KEY_ENV}")
    named = env.get(KEY_FILE_ENV)
    if named:
        path = Path(named).expanduser()
        try:
            text = path.read_text().strip()
        except OSError as exc:
            raise AuditKeyError(
                f"${KEY_FILE_ENV} ({path})", f"cannot be read ({type(exc).__name__})"
            ) from None
        if path.stat().st_mode & 0o077:
            _logger.warning("audit key file %s is readable by other users: chmod 600 it", path)
        return _checked(text, str(path))
    return _checked(_generated(default_key_file(env)), str(default_key_file(env)))


def _checked(text: str, where: str) -> bytes:
    if len(text) < MIN_KEY_CHARS:
        raise AuditKeyError(where, f"has {len(text)} characters, at least {MIN_KEY_CHARS} needed")
    return text.encode()


def _generated(path: Path) -> str:
    """Read the key file, creating it first (exclusively, 0600) when there is none yet."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Written whole under a private name, then linked into place: a reader never sees a
    # half-written key, and of two processes booting at once exactly one key wins.
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32) + "\n")
    try:
        os.link(draft, path)
    except FileExistsError:
        return path.read_text().strip()
    finally:
        draft.unlink()
    _logger.warning(
        "generated a new audit key in %s: back it up, and give every node the same key "
        "(%s or %s) on a multi-node cluster",
        path,
        KEY_ENV,
        KEY_FILE_ENV,
    )
    return path.read_text().strip()


__all__ = [
    "KEY_ENV",
    "KEY_FILE_ENV",
    "AuditKeyError",
    "default_key_file",
    "load_audit_key",
]
