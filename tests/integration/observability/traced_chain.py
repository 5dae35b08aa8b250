"""Three services calling each other (frontend -> middle -> backend), traced.

No opt-in here: ``Service`` traces its subclasses' public methods itself, and the handles
``self.dependency()`` returns carry the trace to the next service.
"""

from __future__ import annotations

from ray_enterprise.observability.tracing import current_service, traced
from ray_enterprise.service import Service

MODULE = "tests.integration.observability.traced_chain"


class Backend(Service):
    async def fetch(self, key: str) -> str:
        with traced("backend.read", "backend") as span:  # a facade span inside a method
            span.log_event("info", f"reading {key}")
        return key.upper()


class Middle(Service):
    async def enrich(self, key: str) -> str:
        backend = await self.dependency("backend")
        return f"<{await backend.fetch.remote(key)}>"


class Frontend(Service):
    async def handle(self, key: str) -> str:
        middle = await self.dependency("middle")
        return f"{current_service()}:{await middle.enrich.remote(key)}"

    async def fail(self) -> None:
        raise RuntimeError("refused on purpose")
