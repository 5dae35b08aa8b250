"""The one redaction rule for everything that leaves the process.

Config show/history/diff, the audit trail's details, a service's ``last_error``, alert
summaries and webhook payloads, ``status --json``, the status page, HTTP error bodies and log
records all pass through here. They used to carry their own rules, and the rules disagreed: a
health detail saying ``postgresql://app:PW@db`` reached five outputs in clear. One rule:

- a value of any type (text, number, mapping, list) under a key that names a secret is masked
  whole. A key names a secret by its last word, in any spelling: ``db_password``,
  ``dbPassword``, ``DB-PASSWORD``, plural ``api_keys``/``secrets``/``tokens``, and ``passphrase``,
  ``bearer``, ``dsn``, ``*_secret_id``; not a flag or a limit about secrets
  (``api_keys_enabled``, ``api_key_header``, ``token_ttl_seconds``);
- ``SecretStr`` and ``SecretBytes`` are masked wherever they are;
- inside any text: a URL's password (also one holding ``@``), secret query parameters
  (``?api_key=``, ``&token=``), ``password=...`` pairs, quoted ``"password": "..."`` pairs and
  ``Bearer``/``Basic`` credentials.

Imports nothing from the package but what sits below it, so every layer can use it.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

REDACTED = "**********"

#: Last words that make a key a secret on their own.
_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "token",
        "bearer",
        "credential",
        "dsn",
        "apikey",
        "authorization",
        "cookie",
        "privatekey",
    }
)
#: Run-together spellings (``dbpassword``, ``adminsecret``): long words only, to stay exact.
_SECRET_SUFFIXES = ("password", "passwd", "passphrase", "secret", "apikey", "credential")
#: ``<word>_key`` is a secret for these words (``api_key``, ``encryption_key``), not ``key``.
_KEY_OWNERS = frozenset(
    {"api", "private", "access", "secret", "encryption", "signing", "master", "client", "auth"}
)
#: ``max_tokens``, ``min_password``: sizes and counts about secrets, not secrets.
_COUNTS = frozenset({"max", "min", "num", "count", "n"})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORDS = re.compile(r"[^A-Za-z0-9]+")


def _singular(word: str) -> str:
    if word.endswith("s") and (word[:-1] in _SECRET_WORDS or word[:-1] == "key"):
        return word[:-1]
    return word


def is_secret_key(key: str) -> bool:
    """True when a key's name says its value is a secret (see the module's rule)."""
    words = [w.lower() for w in _WORDS.split(_CAMEL.sub("_", str(key))) if w]
    if not words:
        return False
    last = _singular(words[-1])
    before = words[-2] if len(words) > 1 else ""
    if before in _COUNTS:
        return False
    if last in _SECRET_WORDS or last.endswith(_SECRET_SUFFIXES):
        return True
    if last == "key":
        return before in _KEY_OWNERS
    return last == "id" and before == "secret"


# -- text ----------------------------------------------------------------------------------------

# scheme://user:PASSWORD@host: the password runs to the last '@' of the authority, so one that
# holds an unescaped '@' is masked whole.
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[a-z][a-z0-9+.\-]*://[^\s:/?#@]*:)(?P<pw>[^\s/?#]*)@(?=[^\s@/?#]*(?:[/?#\s]|$))",
    re.IGNORECASE,
)
_QUERY_PARAM = re.compile(r"(?P<head>[?&;](?P<name>[A-Za-z0-9_.\-]+)=)(?P<value>[^&#\s'\"]*)")
_PAIR = re.compile(
    r"(?P<head>\b(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)\s*=\s*)(?P<q>[\"']?)(?P<value>[^\s\"',;&]+)"
)
_QUOTED_KEY = re.compile(r"(?P<k>[\"'])(?P<name>[^\"'\n]{1,80})(?P=k)\s*:\s*")
_CLOSERS = {"[": "]", "{": "}"}
_AUTH_SCHEME = re.compile(
    r"(?P<head>\b(?:Bearer|Basic|Token)\s+)(?P<value>[A-Za-z0-9._~+/=\-]{4,})"
)


def _mask_named(match: re.Match[str]) -> str:
    if not is_secret_key(match.group("name")):
        return match.group(0)
    quote = match.groupdict().get("q") or ""
    return f"{match.group('head')}{quote}{REDACTED}{quote}"


def _mask_quoted_values(text: str) -> str:
    """Mask the value after a quoted secret key (``{"password": ...}`` printed into a message,
    JSON or a Python repr), whatever it is: a string, a number, a whole list or mapping."""
    out: list[str] = []
    pos = 0
    for match in _QUOTED_KEY.finditer(text):
        if match.start() < pos or not is_secret_key(match.group("name")):
            continue
        start = match.end()
        end = _value_end(text, start)
        if end == start:
            continue
        out += [text[pos:start], REDACTED]
        pos = end
    return "".join(out) + text[pos:]


def _value_end(text: str, start: int) -> int:
    """Where the JSON-or-repr value that begins at ``start`` ends (brackets balanced)."""
    if start >= len(text):
        return start
    first = text[start]
    if first in "\"'":
        index = start + 1
        while index < len(text) and text[index] != first:
            index += 2 if text[index] == "\\" else 1
        return min(index + 1, len(text))
    if first in _CLOSERS:
        depth, quote, index = 0, "", start
        while index < len(text):
            char = text[index]
            if quote:
                if char == "\\":
                    index += 1
                elif char == quote:
                    quote = ""
            elif char in "\"'":
                quote = char
            elif char in "[{":
                depth += 1
            elif char in "]}":
                depth -= 1
                if depth == 0:
                    return index + 1
            index += 1
        return len(text)  # unbalanced: mask to the end rather than leak the rest
    match = re.compile(r"[^,}\]\s]+").match(text, start)
    return match.end() if match else start


def redact_text(text: str) -> str:
    """``text`` with every secret it embeds masked (URLs, query parameters, pairs, bearers)."""
    if not text:
        return text
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED + "@", text)
    text = _QUERY_PARAM.sub(_mask_named, text)
    text = _mask_quoted_values(text)
    text = _PAIR.sub(_mask_named, text)
    return _AUTH_SCHEME.sub(lambda m: m.group("head") + REDACTED, text)


# -- values --------------------------------------------------------------------------------------


def redact(value: Any, key: str | None = None) -> Any:
    """A JSON-ready copy of ``value`` with every secret masked; ``key`` is the key it sits under.

    Mappings, lists, tuples, sets, dataclasses and pydantic models are walked; a ``SecretStr``
    anywhere, or anything non-empty under a secret key, becomes :data:`REDACTED`.
    """
    if isinstance(value, (SecretStr, SecretBytes)):
        return REDACTED
    if key is not None and value is not None and not isinstance(value, bool) and is_secret_key(key):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact(v) for v in value]
    if isinstance(value, BaseModel):
        return redact(value.model_dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return redact(dataclasses.asdict(value))
    return value


# -- logs ----------------------------------------------------------------------------------------

_LOGGER_PREFIX = "ray_enterprise"


def install_log_redaction() -> None:
    """Redact every log record of the ``ray_enterprise`` loggers as it is made (idempotent).

    A record factory rather than a handler filter: handlers belong to the application (or to
    Ray's worker setup), and a filter on our logger would not see its children's records.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.name.startswith(_LOGGER_PREFIX):
            record.msg = redact_text(record.getMessage())
            record.args = None
            if record.exc_info:
                text = logging.Formatter().formatException(record.exc_info)
                record.exc_text = redact_text(text)
        return record

    factory._redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


__all__ = ["REDACTED", "install_log_redaction", "is_secret_key", "redact", "redact_text"]
