"""The audit trail: append-only records (who, what, when, outcome, details), HMAC-chained.

Each record's MAC covers its content and the MAC of the record before it, under the audit key
(:mod:`.audit_key`), which is kept outside the database: editing a record breaks its own MAC,
deleting or reordering records breaks the links, and nobody without the key can rebuild a
consistent chain. A one-row *head* (last sequence number and MAC) is written in the same
transaction as every append, and a signed checkpoint of it outside the database
(:mod:`.audit_anchor`), so records cut off the end, or the whole trail deleted, are caught too.
:meth:`AuditLog.verify` says which record and what kind of damage (edited, deleted, reordered,
truncated). Retention deletes a prefix and leaves an *anchor* in place of the last deleted
record, carrying its MAC, so the rest of the chain still verifies from there.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from ray_enterprise.redaction import redact
from ray_enterprise.security.audit_anchor import Anchors, default_anchors
from ray_enterprise.security.audit_chain import (
    ANCHOR,
    GENESIS,
    RECORD,
    AuditRecord,
    Problem,
    VerifyReport,
    against_checkpoint,
    walk_chain,
)
from ray_enterprise.security.audit_key import load_audit_key
from ray_enterprise.security.audit_retention import retention_cutoff
from ray_enterprise.security.errors import AuditError
from ray_enterprise.security.schema import security_metadata
from ray_enterprise.storage import create_tables

_APPEND_ATTEMPTS = 20
_logger = logging.getLogger("ray_enterprise.security.audit")

audit_records = sa.Table(
    "security_audit",
    security_metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("target", sa.String(300), nullable=False),
    sa.Column("outcome", sa.String(40), nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

audit_head = sa.Table(
    "security_audit_head",
    security_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)


def redact_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """Details masked by the one redaction rule: the trail is read widely."""
    redacted = redact(dict(details))
    assert isinstance(redacted, dict)
    return redacted


def _row(row: sa.Row[Any]) -> AuditRecord:
    m = row._mapping
    return AuditRecord(
        seq=int(m["seq"]),
        kind=str(m["kind"]),
        at=float(m["at"]),
        actor=str(m["actor"]),
        action=str(m["action"]),
        target=str(m["target"]),
        outcome=str(m["outcome"]),
        details=str(m["details"]),
        prev_hash=str(m["prev_hash"]),
        hash=str(m["hash"]),
    )


class AuditLog:
    """The trail in SQL; ``clock`` is seconds since the epoch.

    ``key`` is the HMAC key; ``None`` loads the platform's (:func:`.load_audit_key`), so every
    writer of one trail uses the same key. ``anchors`` keep signed checkpoints of the head
    outside the database; :func:`platform_audit_log` gives the platform's default ones.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        clock: Callable[[], float] = time.time,
        key: bytes | None = None,
        anchors: Anchors | None = None,
        create: bool = True,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._key = key if key is not None else load_audit_key()
        self._anchors = anchors
        if create:
            create_tables(engine)

    def _digest(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    # -- writing ------------------------------------------------------------------------------

    def append(
        self,
        actor: str,
        action: str,
        *,
        target: str = "",
        outcome: str = "success",
        details: Mapping[str, Any] | None = None,
    ) -> AuditRecord:
        """Add a record at the end of the chain; concurrent writers retry until they link."""
        text = json.dumps(
            redact_details(details or {}), sort_keys=True, separators=(",", ":"), default=str
        )
        for _ in range(_APPEND_ATTEMPTS):
            try:
                with self._engine.begin() as conn:
                    head = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).first()
                    seq = 0 if head is None else int(head._mapping["seq"])
                    prev = GENESIS if head is None else str(head._mapping["hash"])
                    draft = AuditRecord(
                        seq + 1,
                        RECORD,
                        self._clock(),
                        actor,
                        action,
                        target,
                        outcome,
                        text,
                        prev,
                        "",
                    )
                    record = AuditRecord(
                        **{**draft.__dict__, "hash": self._digest(draft.content())}
                    )
                    conn.execute(audit_records.insert().values(**record.__dict__))
                    if head is None:
                        conn.execute(
                            audit_head.insert().values(id=1, seq=record.seq, hash=record.hash)
                        )
                    else:
                        moved = conn.execute(
                            audit_head.update()
                            .where(audit_head.c.id == 1, audit_head.c.seq == seq)
                            .values(seq=record.seq, hash=record.hash)
                        )
                        if moved.rowcount != 1:
                            raise _Raced
                if self._anchors is not None:
                    self._anchors.advance(self._key, record.seq, record.hash)
                return record
            except (sa.exc.IntegrityError, _Raced):
                continue  # another writer took this seq: read the new head and link to it
        raise AuditError(f"could not append to the audit trail after {_APPEND_ATTEMPTS} attempts")

    # -- reading ------------------------------------------------------------------------------

    def records(self, *, limit: int | None = None, since_seq: int = 0) -> list[AuditRecord]:
        """Records in chain order; ``limit`` keeps the newest ones."""
        query = sa.select(audit_records).where(audit_records.c.seq > since_seq)
        if limit is not None:
            query = query.order_by(audit_records.c.seq.desc()).limit(limit)
        with self._engine.connect() as conn:
            rows = [_row(r) for r in conn.execute(query).all()]
        return sorted(rows, key=lambda r: r.seq)

    def verify(self) -> VerifyReport:
        """Walk the chain, report every record that was edited, deleted or reordered, and
        compare its end with the signed checkpoint outside the database, if there is one."""
        with self._engine.connect() as conn:
            rows = [_row(r) for r in conn.execute(sa.select(audit_records)).all()]
            head = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).first()
        rows.sort(key=lambda r: r.seq)
        head_at = None if head is None else (int(head._mapping["seq"]), str(head._mapping["hash"]))
        problems, anchored = walk_chain(rows, head_at, self._digest, self._anchor_mac)
        shown: dict[str, Any] | None = None
        if self._anchors is not None:
            found, forged = self._anchors.furthest(self._key)
            for where in forged:
                problems.append(
                    Problem(0, "checkpoint", f"the checkpoint in {where} is forged or damaged")
                )
            if found is not None:
                checkpoint, where = found
                shown = {"seq": checkpoint.seq, "at": checkpoint.at, "where": where}
                problems.extend(against_checkpoint(rows, anchored, checkpoint, where))
        return VerifyReport(not problems, len(rows), problems, anchored, shown)

    # -- retention ----------------------------------------------------------------------------

    def apply_retention(self, before: float, *, actor: str = "system") -> int:
        """Delete records older than ``before`` (a prefix of the chain); returns how many.

        The last deleted record is replaced by an anchor carrying its hash, so verification
        starts there. A damaged trail is refused: retention must not erase the evidence.
        """
        report = self.verify()
        if not report.ok:
            raise AuditError(
                f"the audit trail is damaged ({report.problems[0].message}); "
                "retention refuses to delete records until it is investigated"
            )
        with self._engine.begin() as conn:
            newer = conn.execute(
                sa.select(sa.func.min(audit_records.c.seq)).where(
                    audit_records.c.kind == RECORD, audit_records.c.at >= before
                )
            ).scalar()
            last = conn.execute(sa.select(sa.func.max(audit_records.c.seq))).scalar()
            if last is None:
                return 0
            through = int(last) if newer is None else int(newer) - 1
            doomed = conn.execute(
                sa.select(audit_records).where(
                    audit_records.c.seq <= through, audit_records.c.kind == RECORD
                )
            ).all()
            if not doomed:
                return 0
            anchor_hash = conn.execute(
                sa.select(audit_records.c.hash).where(audit_records.c.seq == through)
            ).scalar_one()
            first = min(int(r._mapping["seq"]) for r in doomed)
            details = json.dumps(
                {
                    "deleted_from": first,
                    "deleted_through": through,
                    "deleted": len(doomed),
                    "before": before,
                },
                sort_keys=True,
                separators=(",", ":"),
            )
            conn.execute(audit_records.delete().where(audit_records.c.seq <= through))
            conn.execute(
                audit_records.insert().values(
                    seq=through,
                    kind=ANCHOR,
                    at=self._clock(),
                    actor=actor,
                    action="audit.anchor",
                    target="",
                    outcome="success",
                    details=details,
                    prev_hash=self._anchor_mac(through, str(anchor_hash), details),
                    hash=str(anchor_hash),
                )
            )
        self.append(actor, "audit.retention", details={"deleted": len(doomed), "through": through})
        return len(doomed)

    def _anchor_mac(self, seq: int, anchor_hash: str, details: str) -> str:
        """An anchor cannot be recomputed from deleted content, so it is MAC'd instead."""
        return self._digest(json.dumps([ANCHOR, seq, anchor_hash, details], separators=(",", ":")))


class _Raced(Exception):
    """Another writer moved the head between our read and our update."""


def platform_audit_log(
    engine: sa.Engine, *, clock: Callable[[], float] = time.time, create: bool = True
) -> AuditLog:
    """The trail as the platform writes it: the platform's key and its default checkpoints
    (a file under ``$RAY_ENTERPRISE_HOME`` and, when Ray runs, the GCS key-value store)."""
    return AuditLog(
        engine,
        clock=clock,
        key=load_audit_key(),
        anchors=default_anchors(engine, clock=clock),
        create=create,
    )


class AuditSink:
    """Best-effort trail writer for the system actors (config, alerts, registry).

    The action being recorded has already happened when its record is written, so a trail that
    cannot be written must not undo it or crash the actor that did it: the failure is logged
    and counted (``failures``) for status and tests, and the next record tries again.
    """

    def __init__(self, engine: sa.Engine | str | None = None) -> None:
        self._target = engine
        self._log: AuditLog | None = None
        self.written = 0
        self.failures = 0

    def write(
        self,
        actor: str,
        action: str,
        *,
        target: str = "",
        outcome: str = "success",
        details: Mapping[str, Any] | None = None,
    ) -> bool:
        try:
            self._open().append(actor, action, target=target, outcome=outcome, details=details)
        except Exception as exc:
            self.failures += 1
            self._log = None  # a replaced or restarted database: open it afresh next time
            _logger.warning("audit record %s %s not written: %s", action, target, exc)
            return False
        self.written += 1
        return True

    def apply_retention(self, days: int, *, actor: str = "system:retention") -> int:
        """Cut records older than ``days``; returns how many. Raises what the trail raises
        (a damaged trail refuses to be cut), for the caller's schedule to log."""
        return self._open().apply_retention(retention_cutoff(days, time.time()), actor=actor)

    def _open(self) -> AuditLog:
        if self._log is None:
            engine = self._target
            if not isinstance(engine, sa.Engine):
                from ray_enterprise.storage import make_engine

                engine = make_engine(engine, create=False)
            self._log = platform_audit_log(engine)
        return self._log


__all__ = [
    "AuditLog",
    "AuditRecord",
    "AuditSink",
    "Problem",
    "VerifyReport",
    "audit_head",
    "audit_records",
    "platform_audit_log",
]
