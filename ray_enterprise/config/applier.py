"""The apply pipeline: merge -> admit -> diff by section -> next version -> durable history.

:class:`ConfigApplier` owns the running configuration and its version, and nothing else: it
needs no Ray and no event loop (the ConfigActor calls it from a worker thread, since history
writes block). A document is validated whole and swapped in whole, or refused with the field
and the source named while the running version stays; there is no half-applied state.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from ray_enterprise.config.compliance import DEFAULT_RULES, ComplianceRule, admit
from ray_enterprise.config.errors import ComplianceError, ConfigValidationError
from ray_enterprise.config.events import EventLog
from ray_enterprise.config.history import ConfigHistory, VersionRecord
from ray_enterprise.config.merge import (
    ConfigDiff,
    MergedConfig,
    diff_documents,
    flatten,
    restore_secrets,
)
from ray_enterprise.config.schema import (
    EnterpriseConfig,
    ServiceConfigRegistry,
    default_document,
    validate_config,
)
from ray_enterprise.config.sealing import SealError

log = logging.getLogger("ray_enterprise.config")

#: How many recent versions are read back at boot to learn when each section last changed.
BOOT_WINDOW = 1000


@dataclass(frozen=True)
class Applied:
    """A version that was recorded and is now running."""

    record: VersionRecord
    changed_sections: tuple[str, ...]

    @property
    def version(self) -> int:
        return self.record.version


class ConfigApplier:
    """The running config, its version and when each section last changed."""

    def __init__(
        self,
        history: ConfigHistory,
        events: EventLog,
        *,
        services: ServiceConfigRegistry | None = None,
        rules: Iterable[ComplianceRule] = DEFAULT_RULES,
    ) -> None:
        self._history = history
        self._events = events
        self._services = services
        self._rules = tuple(rules)
        self._config = EnterpriseConfig()
        self._document: dict[str, Any] = self._config.model_dump()
        self._version = 0
        # A section absent here last changed at or before ``_floor`` (version 1, or the oldest
        # version read back at boot): a new subscriber then still gets the value once.
        self._section_versions: dict[str, int] = {}
        self._floor = 0

    @property
    def version(self) -> int:
        return self._version

    @property
    def config(self) -> EnterpriseConfig:
        return self._config

    @property
    def document(self) -> dict[str, Any]:
        """The running document with secrets still ``SecretStr``-wrapped."""
        return self._document

    def section_version(self, section: str) -> int:
        """The version at which ``section`` last changed (0 before anything was applied)."""
        return self._section_versions.get(section, self._floor)

    def section(self, section: str) -> Any:
        """The running value of a section; ``KeyError`` names the sections there are."""
        try:
            return self._config.section(section)
        except KeyError:
            known = [*EnterpriseConfig.model_fields, "services.<name>"]
            raise KeyError(f"no config section {section!r}; sections: {', '.join(known)}") from None

    # -- boot --------------------------------------------------------------------------------

    def boot(self, merged: MergedConfig) -> Applied | None:
        """Resume from history (same version as before a restart), then apply ``merged``.

        A new version is recorded only when the sources changed while nobody was running;
        history keeps documents redacted, so the resumed document takes its secrets from
        ``merged``.
        """
        latest = self._history.latest()
        if latest is None:
            return self._first(merged)
        self._version = latest.version
        try:
            restored = self._history.live_document(latest.version)
        except SealError:  # recorded unsealed: the sources' secrets, masks dropped
            restored = restore_secrets(latest.document, merged.document)
        try:
            self._config = validate_config(restored, services=self._services)
        except ConfigValidationError as exc:
            log.warning("version %d no longer validates on resume: %s", latest.version, exc)
            self._config = EnterpriseConfig()
        self._document = self._config.model_dump()
        since = max(0, latest.version - BOOT_WINDOW)
        self._floor = max(1, since)
        self._section_versions = {}
        for record in self._history.history(since=since):
            for section in record.diff.changed_sections:
                self._section_versions[section] = record.version
        return self.apply(merged, "boot")

    def _first(self, merged: MergedConfig) -> Applied | None:
        """Version 1: the sources' document, or the defaults when that is refused."""
        self._floor = 1
        base = default_document()
        try:
            config, _ = admit(merged, services=self._services, rules=self._rules)
        except (ConfigValidationError, ComplianceError) as exc:
            self._refuse(exc, "boot")
            config = EnterpriseConfig()
        return self._record(config, base, "boot")

    # -- changes -----------------------------------------------------------------------------

    def check(self, merged: MergedConfig, trigger: str) -> EnterpriseConfig:
        """Validate without applying (``config set`` asks first); refuses like :meth:`apply`."""
        try:
            config, _ = admit(merged, services=self._services, rules=self._rules)
        except (ConfigValidationError, ComplianceError) as exc:
            self._refuse(exc, trigger)
            raise
        return config

    def apply(self, merged: MergedConfig, trigger: str) -> Applied | None:
        """Apply ``merged`` whole, or refuse it; ``None`` when it changes nothing.

        Raises :class:`ConfigValidationError` or :class:`ComplianceError` after logging the
        rejection; the running config and version are untouched then.
        """
        try:
            config, _ = admit(merged, services=self._services, rules=self._rules)
        except (ConfigValidationError, ComplianceError) as exc:
            self._refuse(exc, trigger)
            raise
        return self._record(config, self._document, trigger)

    def rollback(self, version: int) -> Applied | None:
        """Run version ``version``'s document again, as a new version, with that version's
        real secrets; refused (:class:`SealError`) when they were not kept."""
        document = self._history.live_document(version)
        source = f"rollback to {version}"
        merged = MergedConfig(document, {path: source for path in flatten(document)})
        applied = self.apply(merged, source)
        self._events.emit(
            "rolled_back",
            f"rolled back to the document of version {version}",
            version=self._version,
            source=source,
        )
        return applied

    def _record(
        self, config: EnterpriseConfig, old_document: dict[str, Any], trigger: str
    ) -> Applied | None:
        document = config.model_dump()
        diff: ConfigDiff = diff_documents(old_document, document)
        if not diff and self._version:
            return None
        record = self._history.record(document, diff, trigger)
        self._config, self._document, self._version = config, document, record.version
        for section in diff.changed_sections:
            self._section_versions[section] = record.version
        self._events.emit(
            "applied",
            f"version {record.version} applied from {trigger}: "
            + (", ".join(diff.changed_sections) or "no section changed"),
            version=record.version,
            source=trigger,
        )
        log.info("config version %d applied from %s", record.version, trigger)
        return Applied(record, diff.changed_sections)

    def _refuse(self, exc: ConfigValidationError | ComplianceError, trigger: str) -> None:
        kind: Literal["validation", "compliance"] = (
            "compliance" if isinstance(exc, ComplianceError) else "validation"
        )
        self._events.reject(
            kind,
            trigger=trigger,
            field=exc.field,
            source=exc.source,
            message=str(exc),
            kept_version=self._version,
        )
        log.warning("config change from %s rejected: %s", trigger, exc)
