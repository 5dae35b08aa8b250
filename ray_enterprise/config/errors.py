"""Errors of the configuration system.

Each carries the facts a caller needs to act (the field, the source, the file and line, the
version) and never a secret value: messages are built from locations and reasons, not from the
offending input, because error messages end up in logs, alerts and CLI output.
"""

from __future__ import annotations

from collections.abc import Sequence

from ray_enterprise.errors import RayEnterpriseError


class ConfigError(RayEnterpriseError):
    """Base of every configuration error."""


class ConfigParseError(ConfigError):
    """A configuration file is not valid YAML or JSON; ``file`` and ``line`` (1-based) locate it."""

    def __init__(self, file: str, reason: str, *, line: int | None = None) -> None:
        self.file = file
        self.line = line
        self.reason = reason
        where = f"{file}, line {line}" if line is not None else file
        super().__init__(f"{where}: {reason}. Fix the file; the last good values stay in use.")


class ConfigValidationError(ConfigError):
    """The merged document does not fit the schema.

    ``problems`` lists ``(field, source, reason)`` for every violation; ``field`` and ``source``
    are those of the first, which is what most callers show.
    """

    def __init__(self, problems: Sequence[tuple[str, str | None, str]]) -> None:
        self.problems = tuple(problems)
        first = self.problems[0] if self.problems else ("", None, "invalid configuration")
        self.field: str = first[0]
        self.source: str | None = first[1]
        lines = [
            f"{field or '<root>'}: {reason}" + (f" (set by {source})" if source else "")
            for field, source, reason in self.problems
        ]
        super().__init__(
            "configuration rejected, the running version stays: "
            + "; ".join(lines)
            + ". Correct the value at its source."
        )


class ComplianceError(ConfigError):
    """The document is valid but breaks compliance rules for its environment.

    ``failures`` lists ``(rule, field, message, source)``; ``source`` is the layer that set the
    field (``None`` when unknown, or when the default itself is what breaks the rule).
    """

    def __init__(
        self, environment: str, failures: Sequence[tuple[str, str, str, str | None]]
    ) -> None:
        self.environment = environment
        self.failures = tuple(failures)
        self.field: str = self.failures[0][1] if self.failures else ""
        self.source: str | None = self.failures[0][3] if self.failures else None
        detail = "; ".join(
            f"{rule} ({field}{f', set by {source}' if source else ''}): {msg}"
            for rule, field, msg, source in self.failures
        )
        super().__init__(
            f"configuration breaks {len(self.failures)} compliance rule(s) for "
            f"environment {environment!r}, the running version stays: {detail}"
        )


class ConfigSourceError(ConfigError):
    """A source could not be read or written; ``source`` names it."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"config source {source}: {reason}")


class ConfigVersionNotFoundError(ConfigError, KeyError):
    """No configuration version with that number was recorded."""

    def __init__(self, version: int, latest: int | None) -> None:
        self.version = version
        self.latest = latest
        super().__init__(
            f"no configuration version {version}; "
            + (f"versions run from 1 to {latest}" if latest else "no version recorded yet")
        )

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])
