"""What the ConfigActor shows: display-safe views of its running state.

Everything here leaves the actor for people (the CLI, a status page) or for other subsystems
(the alert manager, the audit trail), so everything here is redacted already: documents come
from history (stored redacted) or through ``redact``, URLs lose their passwords, and events and
rejections are built from field names and secret-free error messages.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ray_enterprise.config.applier import ConfigApplier
from ray_enterprise.config.compliance import check_compliance
from ray_enterprise.config.events import EventLog
from ray_enterprise.config.history import ConfigHistory
from ray_enterprise.config.merge import diff_documents, redact, redact_text
from ray_enterprise.config.settings import ConfigSettings
from ray_enterprise.config.sources import (
    ConfigSource,
    DatabaseConfigSource,
    FileConfigSource,
    VaultConfigSource,
)


class ConfigViews:
    """Read-only actor methods over the state the ConfigActor keeps."""

    _settings: ConfigSettings
    _sources: list[ConfigSource]
    _applier: ConfigApplier | None
    _history: ConfigHistory | None
    _events: EventLog
    _ready: asyncio.Event

    @property
    def _app(self) -> ConfigApplier:
        assert self._applier is not None, "used before boot finished"
        return self._applier

    @property
    def _log(self) -> ConfigHistory:
        assert self._history is not None, "used before boot finished"
        return self._history

    async def show(self, section: str | None = None) -> dict[str, Any]:
        """The running document or one section, redacted, with its version: for display."""
        await self._ready.wait()
        document: Any = redact(self._app.document)
        if section:
            for part in section.split("."):
                document = document.get(part) if isinstance(document, dict) else None
        return {"version": self._app.version, "section": section, "value": document}

    async def history(
        self, limit: int | None = None, documents: bool = False
    ) -> list[dict[str, Any]]:
        """Applied versions, oldest first; ``documents`` adds each (redacted) document."""
        await self._ready.wait()
        records = await asyncio.to_thread(self._log.history, limit=limit)
        return [
            {k: v for k, v in r.to_dict().items() if documents or k != "document"} for r in records
        ]

    async def diff(self, a: int, b: int) -> dict[str, Any]:
        """What changed from version ``a`` to ``b`` (redacted: a secret shows only as moved)."""
        await self._ready.wait()
        old, new = await asyncio.gather(
            asyncio.to_thread(self._log.get, a), asyncio.to_thread(self._log.get, b)
        )
        diff = diff_documents(old.document, new.document)
        return {"from": a, "to": b, "sections": diff.to_dict(), "text": str(diff)}

    async def sources(self) -> list[dict[str, Any]]:
        """Each source's health and what it reads (URLs without passwords)."""
        return [
            {**s.health().to_dict(), "kind": type(s).__name__, "target": self._target(s)}
            for s in self._sources
        ]

    async def rejections(self) -> list[dict[str, Any]]:
        """Refused changes, oldest first: field, the source that set it, why."""
        return [r.to_dict() for r in self._events.rejections()]

    async def events(self, since: int = 0) -> list[dict[str, Any]]:
        """Events after sequence number ``since``, for the alert manager and audit trail."""
        return [e.to_dict() for e in self._events.events(since)]

    async def compliance(self, environment: str | None = None) -> dict[str, Any]:
        """The compliance report of the running config (as if in ``environment``, if given)."""
        await self._ready.wait()
        config = self._app.config
        if environment:
            config = config.model_copy(update={"environment": environment})
        report = check_compliance(config)
        return {**report.to_dict(), "text": str(report), "version": self._app.version}

    def _target(self, source: ConfigSource) -> Any:
        if isinstance(source, FileConfigSource):
            return [str(p) for p in source.paths]
        if isinstance(source, DatabaseConfigSource):
            return redact_text(self._settings.database)
        if isinstance(source, VaultConfigSource):
            return f"{source.url} {source.mount}/{source.path_prefix}"
        return getattr(source, "prefix", source.name)
