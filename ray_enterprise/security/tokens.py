"""Short-lived signed bearer tokens (JWT, HS256) beside API keys, for callers that already hold
the platform's shared secret (``security.jwt_secret``): a CI job or another service mints a token
for a few minutes instead of being handed a long-lived key.

Only HS256 is accepted, named in the header: a token that says ``none`` or any other algorithm
is refused before its signature is looked at, which is how JWT libraries were fooled into taking
unsigned or public-key-signed tokens. Every token must carry ``sub``, ``scope`` (space-separated
scopes), ``iat`` and ``exp``, and may live at most ``security.session_timeout_minutes``: a token
minted to last a year is refused even when its signature is right.

Pure (no I/O): the gate calls :func:`verify_token`; :func:`mint_token` is for callers and tests.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from typing import Any

from ray_enterprise.security.apikeys import ApiKey, parse_scopes
from ray_enterprise.security.errors import AuthenticationError
from ray_enterprise.security.scopes import Scope

#: Past this a header value is not a token anyone minted.
MAX_TOKEN_BYTES = 4096
#: Clocks of the minter and the API may differ this much.
LEEWAY_S = 30.0
_SUBJECT = re.compile(r"^[A-Za-z0-9._:@\-]{1,128}$")
_HEADER = {"alg": "HS256", "typ": "JWT"}


class InvalidTokenError(AuthenticationError):
    """A bearer token that does not authenticate anyone; ``reason`` says why (for the audit
    trail, never for the caller, who gets the same bare 401 as for a bad key)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"invalid bearer token: {reason}")


def looks_like_token(presented: str) -> bool:
    """A JWT has three dot-separated parts; an API key (``rek_...``) has none."""
    return presented.count(".") == 2


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, signing_input: str) -> str:
    return _b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


def mint_token(
    secret: str, subject: str, scopes: list[str] | tuple[str, ...], lifetime_s: float, now: float
) -> str:
    """A token for ``subject`` with ``scopes``, valid from ``now`` for ``lifetime_s``."""
    claims = {
        "sub": subject,
        "scope": " ".join(sorted(Scope(s).value for s in scopes)),
        "iat": int(now),
        "exp": int(now + lifetime_s),
    }
    head = _b64(json.dumps(_HEADER, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{head}.{body}.{_sign(secret.encode(), f'{head}.{body}')}"


def _part(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_unb64(text))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidTokenError(f"{what} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise InvalidTokenError(f"{what} is not a JSON object")
    return value


def verify_token(token: str, secret: str, *, now: float, max_lifetime_s: float) -> ApiKey:
    """The identity ``token`` proves, as an :class:`ApiKey` named ``jwt:<sub>``; raises
    :class:`InvalidTokenError` naming the first thing wrong."""
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidTokenError(f"longer than {MAX_TOKEN_BYTES} bytes")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidTokenError("not three dot-separated parts")
    header = _part(parts[0], "header")
    if header.get("alg") != "HS256":
        raise InvalidTokenError(f"algorithm {str(header.get('alg'))[:20]!r} is not HS256")
    expected = _sign(secret.encode(), f"{parts[0]}.{parts[1]}")
    if not hmac.compare_digest(expected.encode(), parts[2].encode()):
        raise InvalidTokenError("signature does not match security.jwt_secret")
    claims = _part(parts[1], "payload")
    subject, scope = claims.get("sub"), claims.get("scope")
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(subject, str) or not _SUBJECT.match(subject):
        raise InvalidTokenError("sub is missing or not a plain name")
    if not isinstance(scope, str):
        raise InvalidTokenError("scope is missing (space-separated scopes)")
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (iat, exp))
    if not numbers:
        raise InvalidTokenError("iat and exp must both be numbers")
    assert isinstance(iat, int | float) and isinstance(exp, int | float)
    if exp - iat > max_lifetime_s:
        raise InvalidTokenError(
            f"lives {exp - iat:.0f} s, longer than security.session_timeout_minutes allows "
            f"({max_lifetime_s:.0f} s)"
        )
    if iat > now + LEEWAY_S:
        raise InvalidTokenError("issued in the future (iat)")
    if now >= exp + LEEWAY_S:
        raise InvalidTokenError("expired (exp)")
    try:
        scopes = parse_scopes(scope.split())
    except ValueError as exc:
        raise InvalidTokenError(f"scope: {exc}") from None
    return ApiKey(
        key_id=f"jwt:{subject}",
        name=subject,
        scopes=scopes,
        created_at=float(iat),
        expires_at=float(exp),
    )
