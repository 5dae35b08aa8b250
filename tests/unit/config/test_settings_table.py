"""docs/settings.md lists every setting of the schema and of each shipped service's model.

A setting that lands without a row (what reads it, when, which test shows its effect) fails
here, and so does a row for a setting that is gone.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import typing
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from ray_enterprise import examples
from ray_enterprise.config.schema import EnterpriseConfig
from ray_enterprise.service import Service

TABLE = Path(__file__).resolve().parents[3] / "docs" / "settings.md"
ROW = re.compile(r"^\| `([^`]+)` \|(.*)\|\s*$")


def _model(annotation: typing.Any) -> type[BaseModel] | None:
    is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
    return annotation if is_model else None


def leaves(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Dotted paths of every setting: a mapping's key is ``<name>``, a list element ``[]``."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        inner = _model(args[-1]) if args else None
        if _model(annotation) is not None:
            yield from leaves(typing.cast(type[BaseModel], annotation), f"{prefix}{name}.")
        elif inner is not None and typing.get_origin(annotation) in (dict, list):
            yield prefix + name
            step = ".<name>." if typing.get_origin(annotation) is dict else "[]."
            yield from leaves(inner, f"{prefix}{name}{step}")
        else:
            yield prefix + name


def service_models() -> Iterator[tuple[str, type[BaseModel]]]:
    """Every shipped Service subclass (the services live in ray_enterprise.examples) that
    declares its section's model."""
    for info in pkgutil.walk_packages(examples.__path__, "ray_enterprise.examples."):
        importlib.import_module(info.name)
    stack = list(Service.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        model = getattr(cls, "config_model", None)
        if model is not None and cls.__module__.startswith("ray_enterprise."):
            yield cls.__name__, model


def documented() -> dict[str, list[str]]:
    rows = {}
    for line in TABLE.read_text().splitlines():
        found = ROW.match(line)
        if found:
            rows[found.group(1)] = [c.strip() for c in found.group(2).split("|")]
    return rows


def expected() -> set[str]:
    wanted = set(leaves(EnterpriseConfig))
    for name, model in service_models():
        wanted |= {f"services.{name}.{leaf}" for leaf in leaves(model)}
    return wanted


def test_every_setting_has_a_row_and_every_row_a_setting() -> None:
    rows, wanted = documented(), expected()
    assert sorted(wanted - set(rows)) == [], "settings missing from docs/settings.md"
    assert sorted(set(rows) - wanted) == [], "docs/settings.md rows for settings that are gone"


def test_every_row_says_default_reader_when_and_test() -> None:
    for setting, cells in documented().items():
        assert len(cells) == 4 and all(cells[:3]), f"{setting}: {cells}"


def test_the_walk_finds_nested_models_mappings_and_lists() -> None:
    paths = set(leaves(EnterpriseConfig))
    assert {
        "observability.prometheus_port",
        "security.rate_limit.routes.<name>.burst",
        "observability.alerting.routes[].receivers",
        "services",
    } <= paths
