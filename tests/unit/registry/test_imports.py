"""The registry's modules import one another in one direction: no import circle.

Every import counts, also one inside a function or under ``TYPE_CHECKING``: a circle hidden
that way is still two modules that cannot be understood (or typed) one without the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ray_enterprise

PACKAGE = Path(ray_enterprise.__file__).parent


def _imports(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_no_registry_module_imports_one_that_imports_it_back() -> None:
    modules = {"ray_enterprise.registry." + f.stem: f for f in (PACKAGE / "registry").glob("*.py")}
    modules["ray_enterprise.runtime"] = PACKAGE / "runtime.py"
    graph = {
        name: {m for m in _imports(ast.parse(path.read_text())) if m in modules}
        for name, path in modules.items()
    }

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph[start] - seen:
            seen.add(nxt)
            if nxt == target or reaches(nxt, target, seen):
                return True
        return False

    circles = sorted(name for name in graph if reaches(name, name, set()))
    assert circles == []
    assert "ray_enterprise.registry.actor" not in graph["ray_enterprise.registry.deployer"]
    assert "ray_enterprise.registry.actor" not in graph["ray_enterprise.registry.handle"]
