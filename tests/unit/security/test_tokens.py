"""Bearer tokens: only HS256 signed with the configured secret, with a bounded life, pass."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import pytest

from ray_enterprise.security.tokens import InvalidTokenError, mint_token, verify_token

SECRET = "token-secret-5b0e"
NOW = 1_800_000_000.0
HOUR = 3600.0


def verify(token: str, *, now: float = NOW, max_lifetime_s: float = HOUR) -> object:
    return verify_token(token, SECRET, now=now, max_lifetime_s=max_lifetime_s)


def forged(header: dict, claims: dict, signature: str = "") -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}.{signature}"


def test_a_minted_token_proves_its_subject_and_scopes_until_it_expires() -> None:
    token = mint_token(SECRET, "ci-bot", ["status:read", "config:read"], 600, NOW)
    key = verify(token)
    assert key.key_id == "jwt:ci-bot"  # type: ignore[attr-defined]
    assert key.allows("status:read", "config:read")  # type: ignore[attr-defined]
    assert not key.allows("config:write")  # type: ignore[attr-defined]
    with pytest.raises(InvalidTokenError, match=r"expired"):
        verify(token, now=NOW + 600 + 31)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (mint_token("another-secret", "x", ["status:read"], 60, NOW), "signature does not match"),
        (forged({"alg": "none"}, {"sub": "x", "scope": "status:read"}), "'none' is not HS256"),
        (forged({"alg": "RS256"}, {"sub": "x"}), "'RS256' is not HS256"),
        ("a.b", "not three"),
        ("!!.??.x", "header is not base64url JSON"),
        ("x" * 5000, "longer than 4096"),
    ],
)
def test_forged_or_broken_tokens_are_refused_naming_why(token: str, reason: str) -> None:
    with pytest.raises(InvalidTokenError, match=reason):
        verify(token)


def test_a_token_minted_to_live_too_long_is_refused_even_with_a_good_signature() -> None:
    token = mint_token(SECRET, "x", ["status:read"], 2 * HOUR, NOW)
    with pytest.raises(InvalidTokenError, match="session_timeout_minutes"):
        verify(token)
    assert verify(token, max_lifetime_s=2 * HOUR)


def test_a_changed_payload_breaks_the_signature() -> None:
    head, _, sig = mint_token(SECRET, "x", ["status:read"], 60, NOW).split(".")
    claims = {"sub": "x", "scope": "status:read audit:read", "iat": NOW, "exp": NOW + 60}
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidTokenError, match="signature"):
        verify(f"{head}.{body}.{sig}")


def test_claims_are_required_and_checked() -> None:
    with pytest.raises(InvalidTokenError, match="issued in the future"):
        verify(mint_token(SECRET, "x", ["status:read"], 60, NOW + 120))
    with pytest.raises(ValueError):
        mint_token(SECRET, "x", ["root"], 60, NOW)  # not a scope


def test_the_readme_token_example_mints_a_token_the_gate_takes() -> None:
    readme = Path(__file__).resolve().parents[3] / "README.md"
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), flags=re.S)
    [example] = [b for b in blocks if "mint_token" in b]
    scope: dict[str, object] = {"secret": SECRET}
    exec(compile(example, str(readme), "exec"), scope)
    key = verify_token(str(scope["token"]), SECRET, now=time.time(), max_lifetime_s=HOUR)
    assert key.key_id == "jwt:ci-bot" and key.allows("status:read")
