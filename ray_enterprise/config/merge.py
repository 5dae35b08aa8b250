"""Merging layers of configuration, diffing documents, and keeping secrets out of sight.

Documents here are plain nested dicts (what sources produce and what ``model_dump()`` gives),
so these functions work the same on raw source values and on validated configs. Everything that
leaves this module for display or storage (diffs, redacted copies) has secrets masked already:
a caller cannot forget to redact what was never there in clear.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretBytes, SecretStr

from ray_enterprise.redaction import REDACTED, is_secret_key, redact_text
from ray_enterprise.redaction import redact as redact_value

#: Layers in rising priority: a later layer wins over an earlier one.
LAYER_ORDER: tuple[str, ...] = ("defaults", "files", "database", "vault", "environment")


def redact(document: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-ready copy with every secret masked, by the one rule of
    :mod:`ray_enterprise.redaction` (secret-looking keys in any spelling, ``SecretStr``,
    passwords and tokens inside text)."""
    redacted = redact_value(document)
    assert isinstance(redacted, dict)
    return redacted


def reveal(value: Any) -> Any:
    """Unwrap ``SecretStr`` values, for comparing documents; never for display."""
    if isinstance(value, (SecretStr, SecretBytes)):
        return value.get_secret_value()
    if isinstance(value, Mapping):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [reveal(v) for v in value]
    return value


def restore_secrets(redacted: Mapping[str, Any], reference: Mapping[str, Any]) -> dict[str, Any]:
    """Fill masked values of a redacted document from ``reference`` (the current document).

    History keeps documents redacted, so a rollback takes its plain values from the old version
    and its secrets from the live one; a masked value with no counterpart is dropped, letting the
    schema default (or a validation error) decide.
    """
    out: dict[str, Any] = {}
    for key, value in redacted.items():
        ref = reference.get(key) if isinstance(reference, Mapping) else None
        if isinstance(value, Mapping):
            out[key] = restore_secrets(value, ref if isinstance(ref, Mapping) else {})
        elif _masked(value):  # a mask must never run: the live value, or nothing
            if ref is not None:
                out[key] = ref
        else:
            out[key] = value
    return out


def _masked(value: Any) -> bool:
    """Whether a value holds a mask anywhere (a URL's password, an item of a list)."""
    if isinstance(value, str):
        return REDACTED in value
    if isinstance(value, (list, tuple)):
        return any(_masked(v) for v in value)
    return False


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``: mappings merge key by key, anything else replaces."""
    out: dict[str, Any] = dict(base)
    for key, value in override.items():
        current = out.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            out[key] = deep_merge(current, value)
        else:
            out[key] = value
    return out


def flatten(document: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted leaf paths to values; an empty mapping is a leaf so that it can be diffed."""
    out: dict[str, Any] = {}
    for key, value in document.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out


def unflatten(pairs: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`flatten`: ``{"a.b": 1}`` becomes ``{"a": {"b": 1}}``."""
    out: dict[str, Any] = {}
    for path, value in pairs.items():
        out = deep_merge(out, _nest(path.split("."), value))
    return out


def _nest(parts: list[str], value: Any) -> dict[str, Any]:
    for part in reversed(parts[1:]):
        value = {part: value}
    return {parts[0]: value}


@dataclass(frozen=True)
class MergedConfig:
    """A merged document and, for each leaf path, the name of the layer that set it."""

    document: dict[str, Any] = field(repr=False)
    provenance: dict[str, str]

    def source_of(self, path: str) -> str | None:
        """The layer that set ``path``, or the enclosing key, or (joined) the keys inside it."""
        if path in self.provenance:
            return self.provenance[path]
        parts = path.split(".")
        for end in range(len(parts) - 1, 0, -1):
            found = self.provenance.get(".".join(parts[:end]))
            if found:
                return found
        # A whole-section error: name every non-default layer that touched the section.
        inner = {src: None for p, src in self.provenance.items() if p.startswith(path + ".")}
        named = [src for src in inner if src != "defaults"] or list(inner)
        return ", ".join(named) if named else None


def merge_layers(layers: Iterable[tuple[str, Mapping[str, Any]]]) -> MergedConfig:
    """Merge ``(name, values)`` pairs given lowest priority first, recording who set what."""
    document: dict[str, Any] = {}
    provenance: dict[str, str] = {}
    for name, values in layers:
        document = deep_merge(document, values)
        for path in flatten(values):
            # A scalar that replaces a whole mapping hides what the mapping's leaves said.
            for stale in [p for p in provenance if p.startswith(path + ".")]:
                del provenance[stale]
            provenance[path] = name
    return MergedConfig(document=document, provenance=provenance)


@dataclass(frozen=True)
class Change:
    """One leaf that differs between two documents; values are redacted already."""

    path: str
    kind: str  # "added" | "removed" | "changed"
    old: Any = None
    new: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "old": self.old, "new": self.new}


def section_of(path: str) -> str:
    """The subscriber section a path belongs to: ``cache`` or ``services.<name>``."""
    parts = path.split(".")
    if parts[0] == "services" and len(parts) > 1:
        return f"services.{parts[1]}"
    return parts[0]


@dataclass(frozen=True)
class ConfigDiff:
    """Changes grouped by section, in path order, safe to print, log and store."""

    sections: dict[str, tuple[Change, ...]]

    @property
    def changed_sections(self) -> tuple[str, ...]:
        return tuple(self.sections)

    def __bool__(self) -> bool:
        return bool(self.sections)

    def to_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {s: [c.to_dict() for c in changes] for s, changes in self.sections.items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=str)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfigDiff:
        return cls({s: tuple(Change(**c) for c in changes) for s, changes in data.items()})

    def __str__(self) -> str:
        if not self.sections:
            return "no changes"
        lines = []
        for section, changes in self.sections.items():
            lines.append(f"[{section}]")
            for c in changes:
                if c.kind == "added":
                    lines.append(f"  + {c.path} = {c.new!r}")
                elif c.kind == "removed":
                    lines.append(f"  - {c.path} (was {c.old!r})")
                else:
                    lines.append(f"  ~ {c.path}: {c.old!r} -> {c.new!r}")
        return "\n".join(lines)


def _shown(flat: dict[str, Any]) -> Callable[[str], Any]:
    return lambda path: flat.get(path, REDACTED)


def diff_documents(old: Mapping[str, Any], new: Mapping[str, Any]) -> ConfigDiff:
    """What changed from ``old`` to ``new``, compared on real values but reported redacted.

    A secret that changed shows as changed with both sides masked, so the fact of a rotation is
    visible in history while its value is not.
    """
    flat_old, flat_new = flatten(redact(old)), flatten(redact(new))
    real_old, real_new = flatten(reveal(old)), flatten(reveal(new))
    sections: dict[str, list[Change]] = {}
    # A path inside a value masked whole (a mapping under a secret key) has no redacted leaf.
    old_shown, new_shown = _shown(flat_old), _shown(flat_new)
    for path in sorted(real_old.keys() | real_new.keys()):
        if path not in real_new:
            change = Change(path, "removed", old=old_shown(path))
        elif path not in real_old:
            change = Change(path, "added", new=new_shown(path))
        elif real_old[path] != real_new[path]:
            change = Change(path, "changed", old=old_shown(path), new=new_shown(path))
        else:
            continue
        sections.setdefault(section_of(path), []).append(change)
    return ConfigDiff({s: tuple(cs) for s, cs in sections.items()})


__all__ = [
    "LAYER_ORDER",
    "REDACTED",
    "Change",
    "ConfigDiff",
    "MergedConfig",
    "deep_merge",
    "diff_documents",
    "flatten",
    "is_secret_key",
    "merge_layers",
    "redact",
    "redact_text",
    "restore_secrets",
    "reveal",
    "section_of",
    "unflatten",
]
