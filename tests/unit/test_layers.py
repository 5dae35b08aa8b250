"""Imports point down the layers (DESIGN.md): a module never imports a package above it.

Levels, low to high. A module's level is the first prefix of its dotted name found here.
Module-level imports and imports inside functions both count: a lazy import hides a cycle from
Python, not from a reader. The few upward imports that remain are listed with their reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ray_enterprise"

LEVELS: list[tuple[str, ...]] = [
    ("errors", "_kv", "storage", "redaction", "safe_load", "system_actors", "migrations",
     "latency", "backoff"),
    ("spec",),
    # The reporting client and the plain data it sends: what every subsystem may import.
    ("alerts.client", "alerts.model", "alerts.errors", "alerts.faults", "alerts.sources",
     "alerts.matchers", "observability.metrics", "observability.recorder",
     "observability.metric_batch", "observability.metric_names", "observability.metric_handles",
     "observability.tracing", "observability.trace_context", "observability.collector",
     "observability.process_settings", "observability.otlp",
     # The collector watches the GCS off the head (ControlPlaneUnreachable): the probe and its
     # pure rules sit with it, below the observability actors.
     "observability.control_plane", "observability.fault_watch"),
    ("security", "config", "anomaly"),
    ("alerts", "observability"),
    ("service", "serve"),
    ("registry",),
    ("runtime", "testing"),
    ("cli", "cli_common", "cli_progress", "__main__", "examples", "alerts.cli", "config.cli",
     "registry.cli", "security.cli", ""),
]  # fmt: skip

# (importer prefix, imported prefix): why this upward import stays.
ALLOWED: dict[tuple[str, str], str] = {
    ("spec", "registry.routing"): "a spec names its routing; the enum lives with the router",
    ("spec", "registry.graph"): "an app spec is refused at load when its graph has a cycle",
    ("spec", "service"): "`class:` must name a Service subclass, checked when a spec loads",
    ("service", "runtime"): "a service reaches its dependencies' handles through the registry "
    "actor, found at call time",
    ("config.client", "runtime"): "the seed's load_enterprise_configuration() connects first",
}


def _level(module: str) -> int:
    best, depth = len(LEVELS) - 1, -1
    for index, names in enumerate(LEVELS):
        for name in names:
            if (module == name or module.startswith(name + ".") or name == "") and len(
                name
            ) > depth:
                best, depth = index, len(name)
    return best


def _is_module(dotted: str) -> bool:
    path = PACKAGE.joinpath(*dotted.split("."))
    return path.with_suffix(".py").exists() or path.is_dir()


def _imports() -> list[tuple[str, str, int]]:
    out = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__").removesuffix("__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "ray_enterprise":
                    targets = [alias.name for alias in node.names if _is_module(alias.name)]
                elif node.module.startswith("ray_enterprise."):
                    base = node.module.removeprefix("ray_enterprise.")
                    # `from ray_enterprise.pkg import module` imports that module.
                    targets = [
                        f"{base}.{alias.name}" if _is_module(f"{base}.{alias.name}") else base
                        for alias in node.names
                    ]
                else:
                    continue
                out.extend((module, target, node.lineno) for target in targets)
    return out


def test_no_module_imports_a_package_above_it() -> None:
    upward = []
    for module, target, line in _imports():
        if _level(target) > _level(module) and not any(
            module.startswith(a) and target.startswith(b) for a, b in ALLOWED
        ):
            upward.append(f"{module}:{line} imports {target}")
    assert not upward, "imports pointing up the layers:\n" + "\n".join(sorted(upward))
