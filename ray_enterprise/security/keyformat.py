"""What an API key looks like and how its secret is stored: ``rek_<id>_<secret>``, PBKDF2.

The id (12 hex characters) is public: it names the key in lists, logs and the audit trail, and
it is the primary key, so finding a key never means scanning hashes. The secret is 256 random
bits; only ``pbkdf2_sha256$iterations$salt$digest`` with a per-key salt is stored. Because the
secret is random rather than chosen by a person, a modest iteration count already makes an
offline guess hopeless; the count is stored with each hash so it can be raised later without
invalidating old keys. Comparison is constant-time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from ray_enterprise.security.errors import InvalidApiKeyError

KEY_PREFIX = "rek"
_ID_BYTES = 6  # 12 hex characters: unique enough for ids, short enough to say aloud
_SECRET_BYTES = 32
_SALT_BYTES = 16
DEFAULT_ITERATIONS = 50_000
_ALGORITHM = "pbkdf2_sha256"


def new_key_id() -> str:
    return secrets.token_hex(_ID_BYTES)


def new_secret() -> str:
    return secrets.token_urlsafe(_SECRET_BYTES)


def hash_secret(secret: str, *, iterations: int = DEFAULT_ITERATIONS) -> str:
    """``pbkdf2_sha256$iterations$salt$digest`` with a fresh salt; the form that is stored."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, iterations)
    return f"{_ALGORITHM}${iterations}${salt.hex()}${digest.hex()}"


def check_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` matches ``stored``; the digest comparison is constant-time."""
    try:
        algorithm, iterations, salt, digest = stored.split("$")
        if algorithm != _ALGORITHM:
            return False
        expected = bytes.fromhex(digest)
        actual = hashlib.pbkdf2_hmac(
            "sha256", secret.encode(), bytes.fromhex(salt), int(iterations)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def split_key(presented: str) -> tuple[str, str]:
    """``(key_id, secret)`` of ``rek_<id>_<secret>``; anything else is an invalid key."""
    prefix, _, rest = presented.strip().partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != KEY_PREFIX or len(key_id) != 2 * _ID_BYTES or not secret:
        raise InvalidApiKeyError(None)
    try:
        bytes.fromhex(key_id)
    except ValueError:
        raise InvalidApiKeyError(None) from None
    return key_id, secret


__all__ = [
    "DEFAULT_ITERATIONS",
    "KEY_PREFIX",
    "check_secret",
    "hash_secret",
    "new_key_id",
    "new_secret",
    "split_key",
]
