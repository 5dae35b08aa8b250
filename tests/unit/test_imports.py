"""Import cost: a service worker and the CLI load only what they need; every public name still
resolves. Each check runs in a fresh interpreter, since this test session has long imported
everything."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: What only the registry, the observability platform, the anomaly shards and the management
#: API need; a service worker or ``ray-enterprise --help`` that loads one of them pays seconds.
HEAVY = ("sqlalchemy", "opentelemetry.sdk", "aiohttp", "river", "fastapi", "starlette")


def loaded_after(statement: str) -> list[str]:
    """The heavy modules a fresh interpreter holds after running ``statement``."""
    probe = (
        f"{statement}\nimport json, sys\n"
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "statement",
    [
        "import ray_enterprise.service",
        "from ray_enterprise import Service, Health",
        "import ray_enterprise.cli",
    ],
)
def test_service_worker_and_cli_imports_load_no_heavy_module(statement: str) -> None:
    assert loaded_after(statement) == []


def test_the_heavy_parts_load_on_first_use_of_their_name() -> None:
    # The probe itself must be able to see a heavy import, or the test above proves nothing.
    assert "sqlalchemy" in loaded_after(
        "import ray_enterprise; ray_enterprise.EnterpriseServiceRegistry"
    )


@pytest.mark.parametrize(
    "package", ["ray_enterprise", "ray_enterprise.config", "ray_enterprise.security"]
)
def test_every_public_name_resolves(package: str) -> None:
    import importlib

    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if getattr(module, name, None) is None]
    assert missing == []


def test_dir_lists_the_public_names_before_they_are_loaded() -> None:
    import ray_enterprise

    assert set(ray_enterprise.__all__) <= set(dir(ray_enterprise))


def test_an_unknown_name_is_refused_by_name() -> None:
    import ray_enterprise

    with pytest.raises(AttributeError, match="no_such_thing"):
        ray_enterprise.no_such_thing  # noqa: B018
