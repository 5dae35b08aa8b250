"""Errors raised by the alert manager, its rules, routes and handlers.

They sit under :class:`~ray_enterprise.errors.RayEnterpriseError` and carry the facts a caller
needs to fix the problem (the rule text and position, the config path, the unknown id).
"""

from __future__ import annotations

from collections.abc import Sequence

from ray_enterprise.errors import RayEnterpriseError


class AlertError(RayEnterpriseError):
    """Base of every alert-manager error."""


class RuleSyntaxError(AlertError, ValueError):
    """A metric rule or a label matcher does not parse.

    ``rule`` names the rule, ``text`` is what was parsed and ``position`` the 0-based offset of
    the first character that could not be read, so an editor can point at it.
    """

    def __init__(self, rule: str, text: str, position: int, expected: str) -> None:
        self.rule = rule
        self.text = text
        self.position = position
        self.expected = expected
        found = text[position : position + 12] or "end of rule"
        pointer = " " * position + "^"
        super().__init__(
            f"rule {rule!r}: expected {expected} at position {position}, found {found!r}\n"
            f"  {text}\n  {pointer}\n"
            "Fix the rule text; the form is e.g. "
            "'p95(response_time_ms{endpoint=\"/search\"}[5m]) > 500 for 60s'."
        )


class AlertConfigError(AlertError, ValueError):
    """Alert routing, inhibition or escalation config is invalid; ``path`` locates the field."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.reason = message
        super().__init__(f"alert config {path}: {message}")


class AlertInputError(AlertError, ValueError):
    """An alert input or request is malformed (a signal without ``alertname``, a silence
    without a positive duration); the message says which value to fix."""


class AlertNotFoundError(AlertError, KeyError):
    """No open alert has that id (it may have resolved, or the id is mistyped)."""

    def __init__(self, alert_id: str, known: Sequence[str] = ()) -> None:
        self.alert_id = alert_id
        self.known = tuple(known)
        hint = f"; open alerts: {', '.join(sorted(known)[:10])}" if known else "; no open alerts"
        super().__init__(f"no open alert with id {alert_id!r}{hint}. List them with `alerts list`.")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class SilenceNotFoundError(AlertError, KeyError):
    """No silence has that id."""

    def __init__(self, silence_id: str) -> None:
        self.silence_id = silence_id
        super().__init__(f"no silence with id {silence_id!r}; list silences to find its id")

    def __str__(self) -> str:
        return str(self.args[0])


class DeliveryError(AlertError):
    """A handler could not deliver a notification after all its attempts.

    ``handler`` names the handler, ``attempts`` says how often it tried and ``status`` is the
    last HTTP status seen (``None`` when the server never answered).
    """

    def __init__(self, handler: str, attempts: int, status: int | None, detail: str) -> None:
        self.handler = handler
        self.attempts = attempts
        self.status = status
        super().__init__(
            f"handler {handler!r} failed after {attempts} attempt(s)"
            + (f", last HTTP status {status}" if status is not None else "")
            + f": {detail}. Check that the endpoint is reachable and accepts the payload."
        )
