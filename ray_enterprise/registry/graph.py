"""The dependency graph of services: start levels, shutdown order and who depends on whom."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ray_enterprise.errors import DependencyCycleError, UnknownDependencyError


class DependencyGraph:
    """An immutable DAG of service names, validated on construction.

    Raises :class:`UnknownDependencyError` for a dependency that names no service and
    :class:`DependencyCycleError` (with the path, first name repeated last) for a cycle.
    """

    def __init__(self, depends_on: Mapping[str, Sequence[str]]) -> None:
        self._deps: dict[str, tuple[str, ...]] = {
            name: tuple(deps) for name, deps in depends_on.items()
        }
        for name in sorted(self._deps):
            for dep in self._deps[name]:
                if dep not in self._deps:
                    raise UnknownDependencyError(name, dep, list(self._deps))
        self._dependents: dict[str, list[str]] = {name: [] for name in self._deps}
        for name, deps in self._deps.items():
            for dep in deps:
                self._dependents[dep].append(name)
        self._levels = self._compute_levels()

    def _compute_levels(self) -> tuple[tuple[str, ...], ...]:
        level_of: dict[str, int] = {}
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done

        def visit(name: str, path: list[str]) -> int:
            if state.get(name) == 2:
                return level_of[name]
            if state.get(name) == 1:
                start = path.index(name)
                raise DependencyCycleError([*path[start:], name])
            state[name] = 1
            path.append(name)
            level = 0
            for dep in self._deps[name]:
                level = max(level, visit(dep, path) + 1)
            path.pop()
            state[name] = 2
            level_of[name] = level
            return level

        for name in sorted(self._deps):
            visit(name, [])
        depth = max(level_of.values(), default=-1) + 1
        return tuple(
            tuple(sorted(n for n, lvl in level_of.items() if lvl == i)) for i in range(depth)
        )

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._deps)

    def dependencies(self, name: str) -> tuple[str, ...]:
        """Direct dependencies of ``name``."""
        return self._deps[name]

    def levels(self) -> tuple[tuple[str, ...], ...]:
        """Start order: every service of level *i* depends only on services of levels < *i*."""
        return self._levels

    def shutdown_levels(self) -> tuple[tuple[str, ...], ...]:
        """Stop order: the start levels reversed, so dependents stop before what they use."""
        return tuple(reversed(self._levels))

    def dependents(self, name: str, *, transitive: bool = True) -> tuple[str, ...]:
        """Services that use ``name``, in start order (nearest first)."""
        if not transitive:
            return tuple(sorted(self._dependents[name]))
        found: set[str] = set()
        stack = list(self._dependents[name])
        while stack:
            current = stack.pop()
            if current not in found:
                found.add(current)
                stack.extend(self._dependents[current])
        return self.in_start_order(found)

    def in_start_order(self, names: Iterable[str]) -> tuple[str, ...]:
        wanted = set(names)
        return tuple(n for level in self._levels for n in level if n in wanted)
