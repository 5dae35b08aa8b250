"""The error tree of ray_enterprise.

Every error derives from :class:`RayEnterpriseError`, carries the facts that caused it as
attributes (the file, the service, the field, the cycle path) and says in its message what to do,
so that a caller can both show it to a person and act on it in code.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence


def _rebuild(
    cls: type[BaseException], args: tuple[object, ...], state: dict[str, object]
) -> BaseException:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class RayEnterpriseError(Exception):
    """Base of every error raised by ray_enterprise."""

    def __reduce__(self) -> tuple[object, ...]:
        # Errors cross process boundaries (raised in an actor, caught by the caller); pickle
        # the finished error rather than re-running a constructor with different arguments.
        return (_rebuild, (self.__class__, self.args, dict(self.__dict__)))


class SpecError(RayEnterpriseError):
    """A service or application spec is invalid.

    ``file``, ``service`` and ``field`` locate the problem; any of them may be ``None`` when it
    does not apply (a spec built in Python has no file).
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        service: str | None = None,
        field: str | None = None,
    ) -> None:
        self.file = file
        self.service = service
        self.field = field
        self.reason = message
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = []
        if self.file:
            where.append(f"file {self.file}")
        if self.service:
            where.append(f"service {self.service!r}")
        if self.field:
            where.append(f"field {self.field!r}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.reason}" if prefix else self.reason

    def in_file(self, file: str) -> SpecError:
        """The same error, located in ``file`` (raised by code that did not know the file)."""
        located = copy.copy(self)
        located.file = file
        located.args = (located._describe(),)
        return located


class DependencyError(SpecError):
    """The dependency graph of an application cannot be started."""


class UnknownDependencyError(DependencyError):
    """A service depends on a name that no service has."""

    def __init__(self, service: str, dependency: str, known: Sequence[str]) -> None:
        self.dependency = dependency
        self.path = (service, dependency)
        super().__init__(
            f"depends on unknown service {dependency!r} ({service} -> {dependency}); "
            f"known services: {', '.join(sorted(known)) or 'none'}. "
            "Register the dependency or remove it from depends_on.",
            service=service,
            field="depends_on",
        )


class DependencyCycleError(DependencyError):
    """The dependency graph has a cycle; ``path`` lists it with the first name repeated last."""

    def __init__(self, path: Sequence[str]) -> None:
        self.path = tuple(path)
        super().__init__(
            f"dependency cycle {' -> '.join(self.path)}: break it by removing one of these "
            "depends_on entries",
            service=self.path[0],
            field="depends_on",
        )


class ServiceNotFoundError(RayEnterpriseError, KeyError):
    """No service of that name is registered."""

    def __init__(self, name: str, known: Sequence[str] = ()) -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(
            f"no service named {name!r} is registered"
            + (f"; registered: {', '.join(sorted(known))}" if known else "")
        )

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class NotConnectedError(RayEnterpriseError):
    """The ray_enterprise system actors are not running on the cluster this process reached."""


class ServiceUnavailableError(RayEnterpriseError):
    """The service exists but no replica of it takes calls right now (starting, restarting,
    failed or stopped). ``service`` names it; retrying later, or waiting, may succeed."""

    def __init__(self, message: str, *, service: str | None = None) -> None:
        self.service = service
        super().__init__(message)
