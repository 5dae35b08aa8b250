"""Three services calling each other (frontend -> middle -> backend), traced.

They opt in with ``instrument_service_class`` and ``traced_handle`` explicitly; once ``Service``
does both itself, these decorators become no-ops (they are idempotent).
"""

from __future__ import annotations

from ray_enterprise.observability.trace_context import instrument_service_class, traced_handle
from ray_enterprise.observability.tracing import current_service, traced
from ray_enterprise.service import Service

MODULE = "tests.integration.observability.traced_chain"


@instrument_service_class
class Backend(Service):
    async def fetch(self, key: str) -> str:
        with traced("backend.read", "backend") as span:  # a facade span inside a method
            span.log_event("info", f"reading {key}")
        return key.upper()


@instrument_service_class
class Middle(Service):
    async def enrich(self, key: str) -> str:
        backend = traced_handle(await self.dependency("backend"))
        return f"<{await backend.fetch.remote(key)}>"


@instrument_service_class
class Frontend(Service):
    async def handle(self, key: str) -> str:
        middle = traced_handle(await self.dependency("middle"))
        return f"{current_service()}:{await middle.enrich.remote(key)}"

    async def fail(self) -> None:
        raise RuntimeError("refused on purpose")
