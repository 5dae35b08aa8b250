"""Durable, numbered configuration versions: what changed, who changed it, when.

Numbers are gap-free and ordered because subscribers resume from "the last version I applied"
(etcd's watch-from-revision): a gap would look like a missed update. The next number is taken
as ``max + 1`` inside the inserting transaction and the primary key rejects a concurrent
duplicate, which is retried, so two writers can never share or skip a number.

Documents are stored redacted for display; each version's real document is also stored sealed
(:mod:`~ray_enterprise.config.sealing`), and :meth:`ConfigHistory.live_document` is what a
rollback runs: never a document with masks in it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from ray_enterprise.config.errors import ConfigVersionNotFoundError
from ray_enterprise.config.merge import REDACTED, ConfigDiff, redact
from ray_enterprise.config.sealing import DocumentSealer, SealError
from ray_enterprise.storage import config_version_secrets, config_versions, create_tables


@dataclass(frozen=True)
class VersionRecord:
    """One applied version; ``document`` and ``diff`` carry no secret in clear."""

    version: int
    source: str
    created_at: float
    diff: ConfigDiff
    document: dict[str, Any] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "source": self.source,
            "created_at": self.created_at,
            "diff": self.diff.to_dict(),
            "document": self.document,
        }


class ConfigHistory:
    """The version log on a SQLAlchemy engine; blocking calls, meant for a worker thread."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], float] = time.time,
        retries: int = 20,
        sealer: DocumentSealer | None = None,
    ) -> None:
        self._engine = engine
        self._sealer = sealer
        self._clock = clock
        self._retries = retries
        create_tables(engine)

    def record(self, document: Mapping[str, Any], diff: ConfigDiff, source: str) -> VersionRecord:
        """Append the next version; ``document`` is redacted here, whatever the caller passed."""
        safe_doc = redact(document)
        doc_json = json.dumps(safe_doc, sort_keys=True, default=str)
        diff_json = diff.to_json()
        sealed = self._sealer.seal(document) if self._sealer is not None else None
        now = self._clock()
        for _ in range(self._retries):
            try:
                with self._engine.begin() as conn:
                    latest = conn.execute(select(func.max(config_versions.c.version))).scalar()
                    version = int(latest or 0) + 1
                    conn.execute(
                        config_versions.insert().values(
                            version=version,
                            source=source,
                            created_at=now,
                            diff=diff_json,
                            document=doc_json,
                        )
                    )
                    if sealed is not None:
                        conn.execute(
                            config_version_secrets.insert().values(version=version, sealed=sealed)
                        )
                return VersionRecord(version, source, now, diff, json.loads(doc_json))
            except IntegrityError:
                continue  # another writer took this number; take the next one
        raise RuntimeError(f"could not allocate a config version after {self._retries} tries")

    def latest_version(self) -> int:
        """The newest version number, 0 when nothing was recorded."""
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.max(config_versions.c.version))).scalar() or 0)

    def latest(self) -> VersionRecord | None:
        latest = self.latest_version()
        return self.get(latest) if latest else None

    def get(self, version: int) -> VersionRecord:
        """Version ``version``, for rollback or display."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(config_versions).where(config_versions.c.version == version)
            ).first()
        if row is None:
            raise ConfigVersionNotFoundError(version, self.latest_version() or None)
        return _to_record(row._mapping)

    def live_document(self, version: int) -> dict[str, Any]:
        """Version ``version``'s document with its real secrets: what a rollback runs.

        Refused with :class:`SealError` when that version's secrets cannot be had: it was
        recorded unsealed (before sealing existed, or with no key) and holds masked values, or
        it was sealed under another key. Never a document with a mask in it.
        """
        record = self.get(version)
        with self._engine.connect() as conn:
            sealed = conn.execute(
                select(config_version_secrets.c.sealed).where(
                    config_version_secrets.c.version == version
                )
            ).scalar()
        if sealed is not None and self._sealer is not None:
            return self._sealer.open(str(sealed), version)
        if REDACTED not in json.dumps(record.document):
            return record.document
        raise SealError(
            f"version {version} was recorded without its secrets, so rolling back to it would "
            "run masked values; roll back to a later version, or set its values again"
        )

    def history(self, *, since: int = 0, limit: int | None = None) -> list[VersionRecord]:
        """Versions after ``since`` in ascending order; with ``limit``, the newest ``limit``."""
        query = select(config_versions).where(config_versions.c.version > since)
        if limit is not None:
            query = query.order_by(config_versions.c.version.desc()).limit(limit)
        else:
            query = query.order_by(config_versions.c.version)
        with self._engine.connect() as conn:
            rows = [_to_record(r._mapping) for r in conn.execute(query)]
        return sorted(rows, key=lambda r: r.version)


def _to_record(row: Mapping[Any, Any]) -> VersionRecord:
    return VersionRecord(
        version=int(row["version"]),
        source=str(row["source"]),
        created_at=float(row["created_at"]),
        diff=ConfigDiff.from_dict(json.loads(row["diff"])),
        document=json.loads(row["document"]),
    )
