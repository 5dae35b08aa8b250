"""The one redaction rule, and a property test: a planted marker secret leaves by no output."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from ray_enterprise.alerts.model import AlertSignal, Severity
from ray_enterprise.config.merge import diff_documents
from ray_enterprise.config.merge import redact as redact_document
from ray_enterprise.redaction import REDACTED, install_log_redaction, is_secret_key, redact_text
from ray_enterprise.security.audit import redact_details


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "dbPassword",
        "DB-PASSWORD",
        "api_keys",
        "apiKey",
        "secrets",
        "passphrase",
        "bearer",
        "jwt_secret",
        "secret_id",
        "auth_tokens",
        "encryptionKey",
        "dsn",
        "webhook_secret",
    ],
)
def test_secret_keys_in_any_spelling(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "api_keys_enabled",
        "api_key_header",
        "token_ttl_seconds",
        "max_tokens",
        "key",
        "cache_key",
        "role_id",
        "password_min_length",
        "secret_store_url",
    ],
)
def test_flags_limits_and_plain_keys_are_not_secrets(key: str) -> None:
    assert not is_secret_key(key)


def test_text_forms_are_masked() -> None:
    assert redact_text("redis://:p@ss@redis:6379/0") == f"redis://:{REDACTED}@redis:6379/0"
    assert redact_text("see https://h/x?api_key=abc&page=2&token=t1") == (
        f"see https://h/x?api_key={REDACTED}&page=2&token={REDACTED}"
    )
    assert redact_text("Authorization: Bearer eyJhbGci.x-y") == f"Authorization: Bearer {REDACTED}"
    assert redact_text("login failed password=hunter2 for app") == (
        f"login failed password={REDACTED} for app"
    )
    plain = "default_limit 85 exceeds max_limit 70; http://host:8080/p?q=1"
    assert redact_text(plain) == plain


# -- the property test ---------------------------------------------------------------------------

MARKER_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~"
markers = st.text(MARKER_CHARS, min_size=4, max_size=24).map(lambda s: f"Zq9{s}")
secret_keys = st.sampled_from(
    [
        "password",
        "dbPassword",
        "DB_PASSWORD",
        "api_key",
        "api_keys",
        "apiKeys",
        "secret",
        "secrets",
        "passphrase",
        "bearer",
        "token",
        "auth-token",
        "client_secret",
        "dsn",
    ]
)
plain_keys = st.sampled_from(["detail", "url", "message", "endpoint", "note", "summary"])


@st.composite
def planted(draw: st.DrawFn) -> tuple[str, Any]:
    """A marker, and a document that holds it in one kind of place."""
    marker = draw(markers)
    kind = draw(
        st.sampled_from(
            [
                "key-str",
                "key-int-list",
                "key-dict",
                "key-list",
                "secretstr",
                "url",
                "url-at",
                "query",
                "pair",
                "quoted",
                "bearer",
            ]
        )
    )
    key, plain = draw(secret_keys), draw(plain_keys)
    place: Any = {
        "key-str": {key: marker},
        "key-int-list": {key: [1, marker]},
        "key-dict": {key: {"inner": marker, "n": 3}},
        "key-list": {key: [{"v": marker}]},
        "secretstr": {plain: SecretStr(marker)},
        "url": {plain: f"postgresql://app:{marker}@db:5432/app"},
        "url-at": {plain: f"failed: redis://u:{marker}@{marker}@redis:6379/0 down"},
        "query": {plain: f"GET https://api.example.com/v1?page=2&{key.lower()}={marker}"},
        "pair": {plain: f"connect refused ({key}={marker})"},
        "quoted": {plain: f"bad body {json.dumps({key: marker})}"},
        "bearer": {plain: f"401 for Authorization: Bearer {marker}"},
    }[kind]
    nest = draw(st.integers(0, 3))
    for level in range(nest):
        place = [place] if level % 2 else {draw(plain_keys): place}
    return marker, {"section": place}


def _log_output(text: str, exc_text: str) -> str:
    install_log_redaction()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("ray_enterprise.test_redaction")
    logger.addHandler(handler)
    try:
        logger.warning("health detail: %s", text)
        try:
            raise RuntimeError(exc_text)
        except RuntimeError:
            logger.exception("start failed")
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(planted())
def test_a_planted_secret_appears_in_no_output(case: tuple[str, Any]) -> None:
    marker, document = case
    shown = redact_document(document)
    text = json.dumps(shown)  # the one text form the next outputs are made from
    signal = AlertSignal(
        labels={"alertname": "ServiceFailed", "service": "db", "detail": text},
        severity=Severity.HIGH,
        annotations={"summary": f"service db is FAILED: {json.dumps(_plain(document))}"},
    )
    outputs = {
        "config show/history": text,
        "config diff": diff_documents({}, document).to_json(),
        "audit details": json.dumps(redact_details(document), default=str),
        "alert": json.dumps([signal.labels, signal.annotations]),
        "http error body": redact_text(f"refused: {json.dumps(_plain(document))}"),
        "log": _log_output(json.dumps(_plain(document)), f"boom {_plain(document)!r}"),
    }
    for output, value in outputs.items():
        assert marker not in value, (output, value)


def _plain(value: Any) -> Any:
    """The document as a careless caller would print it (a ``SecretStr`` prints masked)."""
    if isinstance(value, SecretStr):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
