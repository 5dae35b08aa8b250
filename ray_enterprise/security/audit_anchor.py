"""Signed checkpoints of the audit trail's head, kept where the database's writers cannot reach.

A hash chain cannot see records cut off its end if the head moves with them, nor a trail
deleted whole: the evidence of what was there is gone with it. So after every append the
writer also records ``(seq, hash)`` of the new head, HMAC'd with the audit key, outside the
database: in a file under ``$RAY_ENTERPRISE_HOME/audit-anchors/`` (one per database), and in
Ray's GCS key-value store when Ray runs (certificate transparency's signed tree head, in
small). A checkpoint only ever moves forward; :meth:`AuditLog.verify` then proves the trail
still reaches the checkpoint's record with the checkpoint's hash.

The checkpoint is a lower bound: it is written after the record is committed, so a crash in
between leaves it one record behind (never ahead), and a lagging one only proves less.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from ray_enterprise.storage import home_dir, normalize_url

_logger = logging.getLogger("ray_enterprise.security.audit")
ANCHOR_DIR = "audit-anchors"
KV_PREFIX = "audit/anchor/"


def trail_id(engine_or_url: sa.Engine | str) -> str:
    """A name for one database's trail: the same URL (password left out) gives the same id."""
    url = (
        engine_or_url.url if isinstance(engine_or_url, sa.Engine) else normalize_url(engine_or_url)
    )
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        url = url.set(database=str(Path(str(url.database)).expanduser().resolve()))
    text = url.render_as_string(hide_password=True)
    if isinstance(engine_or_url, sa.Engine):  # one database, several schemas: several trails
        schemas = engine_or_url.get_execution_options().get("schema_translate_map") or {}
        text += json.dumps(sorted((str(k), str(v)) for k, v in schemas.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Checkpoint:
    """The head of one trail at ``at``, signed: ``mac`` covers the trail, seq and hash."""

    trail: str
    seq: int
    hash: str
    at: float
    mac: str

    def to_json(self) -> dict[str, Any]:
        return {
            "trail": self.trail,
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at,
            "mac": self.mac,
        }


class AnchorStore(Protocol):
    """Where checkpoints are kept; ``where`` names it in reports."""

    where: str

    def read(self) -> dict[str, Any] | None: ...

    def advance(self, checkpoint: Checkpoint) -> None: ...


class FileAnchor:
    """One JSON file, replaced atomically under an exclusive lock, never moved backwards."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = f"file {path}"

    def read(self) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        return found

    def advance(self, checkpoint: Checkpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                current = self.read()
            except ValueError:
                current = None  # unreadable: the next good checkpoint replaces it
            if current is not None and int(current.get("seq", 0)) >= checkpoint.seq:
                return
            draft = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            draft.write_text(json.dumps(checkpoint.to_json()))
            os.chmod(draft, 0o600)
            os.replace(draft, self.path)


class KvAnchor:
    """The same checkpoint in Ray's GCS key-value store, when this process is connected."""

    def __init__(self, trail: str) -> None:
        self.key = KV_PREFIX + trail
        self.where = f"Ray KV {self.key}"

    @staticmethod
    def _connected() -> bool:
        # A process that never imported Ray (the CLI) is not connected: no 1 s import for that.
        ray = sys.modules.get("ray")
        return ray is not None and bool(ray.is_initialized())

    def read(self) -> dict[str, Any] | None:
        if not self._connected():
            return None
        from ray_enterprise import _kv

        found: dict[str, Any] | None = _kv.get(self.key)
        return found

    def advance(self, checkpoint: Checkpoint) -> None:
        if not self._connected():
            return
        from ray_enterprise import _kv

        current = _kv.get(self.key)
        # Not atomic across writers: a race can only leave it a record behind, never ahead.
        if current is None or int(current.get("seq", 0)) < checkpoint.seq:
            _kv.put(self.key, checkpoint.to_json())


class Anchors:
    """Signs checkpoints with the audit key and keeps them in every store.

    Writing is best effort (a full disk must not stop the audited action; it is logged);
    reading returns the furthest checkpoint whose MAC holds, and the stores whose did not.
    """

    def __init__(
        self,
        trail: str,
        stores: Sequence[AnchorStore],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.trail = trail
        self.stores = list(stores)
        self._clock = clock

    def sign(self, key: bytes, seq: int, head_hash: str, at: float) -> str:
        text = json.dumps(["checkpoint", self.trail, seq, head_hash, f"{at:.6f}"])
        return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()

    def advance(self, key: bytes, seq: int, head_hash: str) -> None:
        at = self._clock()
        checkpoint = Checkpoint(self.trail, seq, head_hash, at, self.sign(key, seq, head_hash, at))
        for store in self.stores:
            try:
                store.advance(checkpoint)
            except Exception as exc:
                _logger.warning("audit checkpoint not written to %s: %s", store.where, exc)

    def furthest(self, key: bytes) -> tuple[tuple[Checkpoint, str] | None, list[str]]:
        """The valid checkpoint with the highest seq (and where it was), and every store whose
        checkpoint is forged or not this trail's."""
        best: tuple[Checkpoint, str] | None = None
        forged: list[str] = []
        for store in self.stores:
            try:
                raw = store.read()
            except Exception as exc:
                _logger.warning("audit checkpoint in %s unreadable: %s", store.where, exc)
                forged.append(store.where)
                continue
            if raw is None:
                continue
            try:
                checkpoint = Checkpoint(
                    str(raw["trail"]),
                    int(raw["seq"]),
                    str(raw["hash"]),
                    float(raw["at"]),
                    str(raw["mac"]),
                )
            except (KeyError, TypeError, ValueError):
                forged.append(store.where)
                continue
            expected = self.sign(key, checkpoint.seq, checkpoint.hash, checkpoint.at)
            if checkpoint.trail != self.trail or not hmac.compare_digest(expected, checkpoint.mac):
                forged.append(store.where)
                continue
            if best is None or checkpoint.seq > best[0].seq:
                best = (checkpoint, store.where)
        return best, forged


def default_anchors(
    engine: sa.Engine,
    *,
    directory: Path | None = None,
    clock: Callable[[], float] = time.time,
) -> Anchors:
    """The file under ``$RAY_ENTERPRISE_HOME/audit-anchors/`` and the KV entry of ``engine``."""
    trail = trail_id(engine)
    folder = directory if directory is not None else home_dir() / ANCHOR_DIR
    return Anchors(trail, [FileAnchor(folder / f"{trail}.json"), KvAnchor(trail)], clock=clock)


__all__ = [
    "ANCHOR_DIR",
    "AnchorStore",
    "Anchors",
    "Checkpoint",
    "FileAnchor",
    "KvAnchor",
    "default_anchors",
    "trail_id",
]
