"""A user's Serve deployment as it would be written, instrumented with one line.

Registered with Ray's cloudpickle by value in the tests, since Serve replicas cannot import
the test package.
"""

from __future__ import annotations

from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from ray_enterprise.serve.instrument import instrument_deployment


@instrument_deployment
@serve.deployment(ray_actor_options={"num_cpus": 0})
class Greeter:
    async def __call__(self, request: Request) -> PlainTextResponse:
        if request.query_params.get("fail"):
            raise ValueError("asked to fail")
        return PlainTextResponse(f"hello {request.query_params.get('name', 'world')}")


def plain_greeter() -> type:
    """The same deployment class, fresh and undecorated, for tests that decorate it their way."""

    class PlainGreeter:
        async def __call__(self, request: Request) -> PlainTextResponse:
            return PlainTextResponse(f"hello {request.query_params.get('name', 'world')}")

    return PlainGreeter


def config_greeter() -> type:
    """Greets with ``greeting`` from its config section, and counts the versions it got."""

    class ConfigGreeter:
        def __init__(self) -> None:
            self.versions: list[int] = []

        def on_config(self, section: str, value: Any, version: int) -> None:
            self.versions.append(version)

        async def __call__(self, request: Request) -> PlainTextResponse:
            config = getattr(self, "config", None) or {}
            return PlainTextResponse(f"{config.get('greeting', '-')} {len(self.versions)}")

    return ConfigGreeter
