"""pyproject declares what the package imports, and river stays an extra the default never loads."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib.metadata import packages_distributions, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "ray_enterprise"
#: Parts of the package that need an extra, which is why they import it lazily or stand apart.
OPTIONAL_PARTS = {"ray_enterprise/serve/": "serve", "ray_enterprise/anomaly/river_": "river"}


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _provided(requirements: list[str]) -> set[str]:
    """The names these requirements install directly, with what ``pkg[extra]`` adds to ``pkg``."""
    names = set()
    for text in requirements:
        req = Requirement(text)
        names.add(_name(req.name))
        for extra in req.extras:
            for dep in requires(req.name) or []:
                sub = Requirement(dep)
                if sub.marker is not None and sub.marker.evaluate({"extra": extra}):
                    names.add(_name(sub.name))
    return names


def _imports(module_level_only: bool) -> dict[str, list[str]]:
    """Third-party top-level module -> the files importing it (module level: at import time)."""
    found: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        nodes = tree.body if module_level_only else list(ast.walk(tree))
        for node in nodes:
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "ray_enterprise":
                    found.setdefault(top, []).append(str(path.relative_to(ROOT)))
    return found


def _undeclared(imports: dict[str, list[str]], declared: set[str]) -> list[str]:
    project = _project()
    dists = packages_distributions()
    missing = []
    for module, paths in sorted(imports.items()):
        providers = {d.lower().replace("_", "-") for d in dists.get(module, [module])}
        where = paths[0]
        allowed = set(declared)
        for prefix, extra in OPTIONAL_PARTS.items():
            if all(p.startswith(prefix) for p in paths):
                allowed |= _provided(project["optional-dependencies"][extra])
        if not providers & allowed:
            missing.append(f"{module} (imported by {where}, from {sorted(providers)})")
    return missing


def test_every_module_level_import_is_a_declared_dependency() -> None:
    declared = _provided(_project()["dependencies"])
    assert _undeclared(_imports(module_level_only=True), declared) == []


def test_every_lazy_import_is_declared_in_the_dependencies_or_an_extra() -> None:
    project = _project()
    extras = project["optional-dependencies"]
    declared = _provided(project["dependencies"])
    declared |= {_name(r) for name, reqs in extras.items() if name != "test" for r in reqs}
    assert _undeclared(_imports(module_level_only=False), declared) == []


def test_river_is_an_extra_that_the_test_extra_installs_and_the_core_does_not() -> None:
    project = _project()
    assert "river" not in {_name(r) for r in project["dependencies"]}
    assert "river" in {_name(r) for r in project["optional-dependencies"]["river"]}
    assert "river" in {_name(r) for r in project["optional-dependencies"]["test"]}


def test_ray_has_an_upper_bound_because_private_ray_apis_are_used() -> None:
    (ray,) = [r for r in _project()["dependencies"] if _name(r) == "ray"]
    assert "<" in ray, ray


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_importing_every_module_but_the_river_adapter_loads_no_river() -> None:
    code = """
import importlib, pkgutil, sys
import ray_enterprise
for info in pkgutil.walk_packages(ray_enterprise.__path__, "ray_enterprise."):
    if info.name not in (
        "ray_enterprise.anomaly.river_detectors",
        "ray_enterprise.__main__",
        "ray_enterprise.migrations.env",  # alembic runs it, inside a migration only
    ):
        importlib.import_module(info.name)
from ray_enterprise.anomaly.detectors import build_detector
build_detector({"name": "default"}).score_and_learn(1.0, 0.0)
print(sorted(m for m in sys.modules if m == "river" or m.startswith("river.")))
"""
    done = _run(code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_a_river_model_without_river_installed_is_refused_naming_the_extra() -> None:
    # sys.modules[name] = None makes "import river" fail as it does where river is absent.
    code = """
import sys
sys.modules["river"] = None
from ray_enterprise.anomaly.detectors import DetectorConfigError, build_detector
build_detector({"name": "default"})
try:
    build_detector({"name": "HalfSpaceTrees"})
except DetectorConfigError as exc:
    print(exc.detector, exc.parameter, str(exc))
"""
    done = _run(code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("HalfSpaceTrees name ")
    assert "ray_enterprise[river]" in done.stdout
