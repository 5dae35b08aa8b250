"""The audit chain as plain data: records, and the walk that finds what was done to them.

Pure (no database): :class:`~ray_enterprise.security.audit.AuditLog` reads the rows and the
head, and hands them here with its MAC functions.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

GENESIS = "0" * 64
RECORD = "record"
ANCHOR = "anchor"


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
    kind: str  # edited | deleted | reordered | broken | truncated | anchor | altered | checkpoint
    message: str


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int
    problems: list[Problem] = field(default_factory=list)
    anchored_at: int | None = None  # the seq retention anchored the chain at, if any
    checkpoint: dict[str, Any] | None = None  # the signed head checked against, and where


def walk_chain(
    rows: Sequence[AuditRecord],
    head: tuple[int, str] | None,
    digest: Callable[[str], str],
    anchor_mac: Callable[[int, str, str], str],
) -> tuple[list[Problem], int | None]:
    """Every problem of ``rows`` (in seq order) against their links, MACs and ``head``, and
    the seq retention anchored the chain at."""
    problems: list[Problem] = []
    position_of_hash = {r.hash: r.seq for r in rows}
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
            elif not hmac.compare_digest(anchor_mac(rec.seq, rec.hash, rec.details), rec.prev_hash):
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
            span = f"record {first}" if first == rec.seq - 1 else f"records {first}..{rec.seq - 1}"
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
        if digest(rec.content()) != rec.hash:
            problems.append(
                Problem(
                    rec.seq,
                    "edited",
                    f"record {rec.seq} was edited: its content no longer matches its hash",
                )
            )
        expected_prev, prev_seq = rec.hash, rec.seq
    head_seq, head_hash = head if head is not None else (0, GENESIS)
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
    return problems, anchored


def against_checkpoint(
    rows: Sequence[AuditRecord], anchored: int | None, checkpoint: Any, where: str
) -> list[Problem]:
    """What the trail lacks compared with a signed checkpoint of its head (``where`` names
    the checkpoint's store): records past the last one, or a different record in its place."""
    last = rows[-1].seq if rows else 0
    if checkpoint.seq > last:
        first = last + 1
        span = (
            f"record {first} is"
            if first == checkpoint.seq
            else f"records {first}..{checkpoint.seq} are"
        )
        return [
            Problem(
                first,
                "truncated",
                f"{span} missing: the signed checkpoint in "
                f"{where} says the trail reached record {checkpoint.seq}",
            )
        ]
    if anchored is not None and checkpoint.seq < anchored:
        return []  # retention removed it since: the retention anchor is checked instead
    at = {r.seq: r for r in rows}.get(checkpoint.seq)
    if at is None:
        return []  # a gap the walk already reports as deleted
    if at.hash != checkpoint.hash:
        return [
            Problem(
                checkpoint.seq,
                "altered",
                f"record {checkpoint.seq} is not the one the signed checkpoint in {where} "
                "recorded: the trail was rewritten from there on",
            )
        ]
    return []


__all__ = [
    "ANCHOR",
    "GENESIS",
    "RECORD",
    "AuditRecord",
    "Problem",
    "VerifyReport",
    "against_checkpoint",
    "walk_chain",
]
