"""YAML and JSON files, several in order (a later file wins), watched by polling.

Polling a signature (inode, mtime, size and a content hash) rather than using inotify: it sees
an edit in place, an atomic rename over the file and a delete-then-recreate alike, works on
every filesystem (NFS, container mounts), and config files are small enough that hashing them
a few times a second costs nothing. A changed signature is read only once it holds still for
one short settle interval, so a file caught half-written is not applied.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

from ray_enterprise.config.errors import ConfigParseError
from ray_enterprise.config.merge import merge_layers
from ray_enterprise.config.sources.base import Clock, ConfigSource
from ray_enterprise.safe_load import DEFAULT_LIMITS, DocumentError, load_document


def parse_config_text(text: str | bytes, file: str) -> dict[str, Any]:
    """Parse YAML or JSON (by extension) into a mapping; errors name the file and line.

    Through the one safe loader (:mod:`ray_enterprise.safe_load`): alias bombs, deep nesting,
    oversized files and duplicate keys are refused before anything walks the document.
    """
    try:
        data = load_document(text, file)
    except DocumentError as exc:
        raise ConfigParseError(file, exc.reason, line=exc.line) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigParseError(file, f"top level must be a mapping, not {type(data).__name__}")
    return {str(k): v for k, v in data.items()}


def _signature(path: Path) -> tuple[Any, ...]:
    try:
        st = os.stat(path)
        content = path.read_bytes()
    except FileNotFoundError:
        return (str(path), None)
    return (str(path), st.st_ino, st.st_mtime_ns, st.st_size, hashlib.sha256(content).digest())


class FileConfigSource(ConfigSource):
    """Files merged in the order given; ``missing_ok`` treats an absent file as empty.

    By default a missing file is a failure, not an empty layer: deleting a file by mistake (or
    catching it between delete and recreate) must not silently drop its settings.
    """

    layer = "files"

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        missing_ok: bool = False,
        poll_interval: float = 0.1,
        settle: float = 0.05,
        name: str = "files",
        clock: Clock = time.time,
    ) -> None:
        super().__init__(name=name, poll_interval=poll_interval, clock=clock)
        self.paths = [Path(p) for p in paths]
        self.missing_ok = missing_ok
        self.settle = settle
        self._provenance: dict[str, str] = {}

    def provenance(self) -> dict[str, str]:
        """Dotted key to the file that set it, for the last good load."""
        return dict(self._provenance)

    async def _read(self) -> dict[str, Any]:
        return await asyncio.to_thread(self._read_files)

    def _read_files(self) -> dict[str, Any]:
        layers = []
        for path in self.paths:
            try:
                if path.stat().st_size > DEFAULT_LIMITS.max_bytes:
                    raise ConfigParseError(
                        str(path), f"larger than {DEFAULT_LIMITS.max_bytes} bytes"
                    )
                raw = path.read_bytes()
            except FileNotFoundError:
                if self.missing_ok:
                    continue
                raise ConfigParseError(str(path), "file not found") from None
            layers.append((str(path), parse_config_text(raw, str(path))))
        merged = merge_layers(layers)
        self._provenance = merged.provenance
        return merged.document

    async def _probe(self) -> Hashable:
        token = await asyncio.to_thread(self._signatures)
        # Wait for the files to hold still, within a bound, so a half-written file is skipped.
        for _ in range(10):
            if token == self._probe_token:
                break
            await asyncio.sleep(self.settle)
            again = await asyncio.to_thread(self._signatures)
            if again == token:
                break
            token = again
        return token

    def _signatures(self) -> tuple[tuple[Any, ...], ...]:
        return tuple(_signature(p) for p in self.paths)
