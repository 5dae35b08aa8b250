"""The audit trail: append-only records (who, what, when, outcome, details), hash-chained.

Each record's hash covers its content and the hash of the record before it, so editing a record
breaks its own hash, and deleting or reordering records breaks the links. A one-row *head*
(last sequence number and hash) is written in the same transaction as every append, so cutting
records off the end is caught too. :meth:`AuditLog.verify` says which record and what kind of
damage (edited, deleted, reordered, truncated).

Without a key the chain proves integrity against edits that do not recompute every later hash;
with ``key`` (an HMAC key kept outside the database) nobody without the key can forge a
consistent chain. Retention deletes a prefix and leaves an *anchor* in place of the last
deleted record, carrying its hash, so the rest of the chain still verifies from there.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ray_enterprise.security.errors import AuditError
from ray_enterprise.security.schema import security_metadata
from ray_enterprise.storage import create_tables

GENESIS = "0" * 64
RECORD = "record"
ANCHOR = "anchor"
_SECRET_WORDS = ("secret", "password", "token", "api_key", "apikey", "credential")
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
    """Details with any value under a secret-sounding key masked: the trail is read widely."""
    out: dict[str, Any] = {}
    for key, value in details.items():
        if any(word in key.lower() for word in _SECRET_WORDS):
            out[key] = "***"
        elif isinstance(value, Mapping):
            out[key] = redact_details(value)
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class AuditRecord:
    """One stored record; ``details`` is the canonical JSON text that was hashed."""

    seq: int
    kind: str
    at: float
    actor: str
    action: str
    target: str
    outcome: str
    details: str
    prev_hash: str
    hash: str

    def content(self) -> str:
        """What the hash covers: everything but the position, which the links already fix."""
        return json.dumps(
            [
                self.kind,
                f"{self.at:.6f}",
                self.actor,
                self.action,
                self.target,
                self.outcome,
                self.details,
                self.prev_hash,
            ],
            separators=(",", ":"),
            ensure_ascii=False,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "kind": self.kind,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "details": json.loads(self.details),
            "hash": self.hash,
        }


@dataclass(frozen=True)
class Problem:
    """One finding of :meth:`AuditLog.verify`: the record, the kind of damage, in words."""

    seq: int
    kind: str  # edited | deleted | reordered | broken | truncated | anchor
    message: str


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int
    problems: list[Problem] = field(default_factory=list)
    anchored_at: int | None = None  # the seq retention anchored the chain at, if any


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
    """The trail in SQL; ``clock`` is seconds since the epoch, ``key`` an optional HMAC key."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        clock: Callable[[], float] = time.time,
        key: bytes | None = None,
        create: bool = True,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._key = key
        if create:
            create_tables(engine)

    def _digest(self, text: str) -> str:
        if self._key is None:
            return hashlib.sha256(text.encode()).hexdigest()
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
        """Walk the chain and report every record that was edited, deleted or reordered."""
        with self._engine.connect() as conn:
            rows = [_row(r) for r in conn.execute(sa.select(audit_records)).all()]
            head = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).first()
        rows.sort(key=lambda r: r.seq)
        position_of_hash = {r.hash: r.seq for r in rows}
        problems: list[Problem] = []
        expected_prev, prev_seq, anchored = GENESIS, 0, None
        for index, rec in enumerate(rows):
            if rec.kind == ANCHOR:
                if index != 0:
                    problems.append(
                        Problem(
                            rec.seq,
                            "anchor",
                            f"record {rec.seq} is an anchor "
                            "in the middle of the trail: records were replaced",
                        )
                    )
                elif not hmac.compare_digest(
                    self._anchor_mac(rec.seq, rec.hash, rec.details), rec.prev_hash
                ):
                    problems.append(
                        Problem(
                            rec.seq,
                            "anchor",
                            f"anchor {rec.seq} was forged or edited: its MAC does not match",
                        )
                    )
                expected_prev, prev_seq, anchored = rec.hash, rec.seq, rec.seq
                continue
            if rec.seq != prev_seq + 1:
                first = prev_seq + 1
                span = (
                    f"record {first}" if first == rec.seq - 1 else f"records {first}..{rec.seq - 1}"
                )
                problems.append(
                    Problem(first, "deleted", f"{span} deleted (missing before record {rec.seq})")
                )
            elif rec.prev_hash != expected_prev:
                other = position_of_hash.get(rec.prev_hash)
                if other is not None and other != rec.seq:
                    problems.append(
                        Problem(
                            rec.seq,
                            "reordered",
                            f"record {rec.seq} was written "
                            f"after what is now record {other}, not {prev_seq}: "
                            "records were reordered",
                        )
                    )
                else:
                    problems.append(
                        Problem(
                            rec.seq,
                            "broken",
                            f"record {rec.seq} does not follow "
                            f"record {prev_seq}: a record between them was deleted "
                            "and the rest renumbered, or one was replaced",
                        )
                    )
            if self._digest(rec.content()) != rec.hash:
                problems.append(
                    Problem(
                        rec.seq,
                        "edited",
                        f"record {rec.seq} was edited: its content no longer matches its hash",
                    )
                )
            expected_prev, prev_seq = rec.hash, rec.seq
        head_seq = 0 if head is None else int(head._mapping["seq"])
        head_hash = GENESIS if head is None else str(head._mapping["hash"])
        if head_seq > prev_seq:
            problems.append(
                Problem(
                    prev_seq + 1,
                    "truncated",
                    f"records {prev_seq + 1}..{head_seq} were cut off the end of the trail",
                )
            )
        elif (head_seq, head_hash) != (prev_seq, expected_prev if rows else GENESIS):
            problems.append(
                Problem(
                    head_seq,
                    "truncated",
                    "the trail's head does not match its "
                    f"last record {prev_seq}: records were replaced at the end",
                )
            )
        return VerifyReport(not problems, len(rows), problems, anchored)

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
        """An anchor cannot be recomputed from deleted content; with a key it is MAC'd instead."""
        return self._digest(json.dumps([ANCHOR, seq, anchor_hash, details], separators=(",", ":")))


class _Raced(Exception):
    """Another writer moved the head between our read and our update."""


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
            if self._log is None:
                engine = self._target
                if not isinstance(engine, sa.Engine):
                    from ray_enterprise.storage import make_engine

                    engine = make_engine(engine, create=False)
                self._log = AuditLog(engine)
            self._log.append(actor, action, target=target, outcome=outcome, details=details)
        except Exception as exc:
            self.failures += 1
            self._log = None  # a replaced or restarted database: open it afresh next time
            _logger.warning("audit record %s %s not written: %s", action, target, exc)
            return False
        self.written += 1
        return True


__all__ = [
    "AuditLog",
    "AuditRecord",
    "AuditSink",
    "Problem",
    "VerifyReport",
    "audit_head",
    "audit_records",
]
