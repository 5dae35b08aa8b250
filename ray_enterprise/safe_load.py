"""The one loader for every YAML or JSON file the project reads: specs, config files, settings.

``yaml.safe_load`` is safe from code execution, not from size. A 545-byte spec of nested
aliases ("billion laughs") expands to hundreds of millions of nodes: PyYAML builds it cheaply,
sharing the repeated objects, and whatever walks the result next (validation, redaction) never
returns; a nesting a few thousand levels deep ends in ``RecursionError``. So this loader
measures what a document *expands to* before anything walks it, and refuses past:

- ``max_bytes`` of file,
- ``max_aliases`` alias uses,
- ``max_nodes`` nodes once every alias is expanded,
- ``max_depth`` levels of nesting, aliases expanded.

A key given twice in one mapping is refused too (YAML and JSON both let the last one win
silently, so a typo'd override looked applied). Keys merged in with ``<<`` may be overridden,
as YAML intends. Every refusal names the file and, where there is one, the line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from ray_enterprise.errors import RayEnterpriseError

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Limits:
    """Bounds on a document; the defaults fit any real spec or config file many times over."""

    max_bytes: int = 1 << 20
    max_aliases: int = 1000
    max_nodes: int = 200_000
    max_depth: int = 64


DEFAULT_LIMITS = Limits()


class DocumentError(RayEnterpriseError):
    """A file that cannot be loaded; ``file`` and ``line`` (1-based, may be ``None``) say where."""

    def __init__(self, file: str, reason: str, *, line: int | None = None) -> None:
        self.file = file
        self.line = line
        self.reason = reason
        where = f"{file}, line {line}" if line is not None else file
        super().__init__(f"{where}: {reason}")


def read_document(path: str | Path, *, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Read and parse ``path``: JSON when it ends in ``.json``, else YAML."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise DocumentError(
                str(path), f"{size} bytes, more than the {limits.max_bytes} allowed"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise DocumentError(str(path), f"cannot read it: {exc.strerror}") from None
    return load_document(raw, str(path), limits=limits)


def load_document(data: str | bytes, file: str, *, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Parse text (or UTF-8 bytes) named ``file``; ``None`` for an empty document."""
    text = _decode(data, file) if isinstance(data, bytes) else data
    if len(text.encode("utf-8", "surrogatepass")) > limits.max_bytes:
        raise DocumentError(file, f"more than the {limits.max_bytes} bytes allowed")
    if file.lower().endswith(".json"):
        return _load_json(text, file, limits)
    return _load_yaml(text, file, limits)


def _decode(data: bytes, file: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DocumentError(
            file, f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8", line=line
        ) from None


# -- YAML --------------------------------------------------------------------------------------


class _LimitedLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases and depth while composing and refuses duplicate keys."""

    limits: Limits = DEFAULT_LIMITS
    file: str = "<text>"

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > self.limits.max_aliases:
                raise _refuse(self.file, f"more than {self.limits.max_aliases} aliases", mark)
        self._depth += 1
        try:
            if self._depth > self.limits.max_depth:
                raise _refuse(self.file, f"nested deeper than {self.limits.max_depth}", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: SafeConstructor refuses it itself
                continue
            if duplicate:
                raise _refuse(
                    self.file, f"key {key!r} is given twice; keep one", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


def _refuse(file: str, reason: str, mark: Any) -> DocumentError:
    return DocumentError(file, reason, line=mark.line + 1 if mark is not None else None)


def _load_yaml(text: str, file: str, limits: Limits) -> Any:
    loader_class = type("Loader", (_LimitedLoader,), {"limits": limits, "file": file})
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _measure(node, file, limits)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or "unparsable"
        raise _refuse(file, f"invalid YAML: {problem}", mark) from None
    finally:
        loader.dispose()


def _measure(root: Node, file: str, limits: Limits) -> None:
    """Refuse ``root`` when, aliases expanded, it holds too many nodes or nests too deep.

    Sizes are memoised per node, so an alias bomb is measured in the time of its few hundred
    written nodes, not the millions it stands for.
    """
    sizes: dict[int, tuple[int, int]] = {}

    def size(node: Node, level: int) -> tuple[int, int]:
        if level > limits.max_depth:
            raise _refuse(file, f"nested deeper than {limits.max_depth}", node.start_mark)
        known = sizes.get(id(node))
        if known is not None:
            if level + known[1] - 1 > limits.max_depth:
                raise _refuse(file, f"nested deeper than {limits.max_depth}", node.start_mark)
            return known
        count, depth = 1, 1
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        for child in children:
            n, d = size(child, level + 1)
            count += n
            depth = max(depth, d + 1)
            if count > limits.max_nodes:
                raise _refuse(
                    file,
                    f"expands to more than {limits.max_nodes} nodes (aliases of aliases?)",
                    node.start_mark,
                )
        sizes[id(node)] = (count, depth)
        return count, depth

    size(root, 1)


# -- JSON --------------------------------------------------------------------------------------


def _load_json(text: str, file: str, limits: Limits) -> Any:
    if not text.strip():
        return None
    _check_json_depth(text, file, limits)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise DocumentError(
                    file, f"key {key!r} is given twice; keep one", line=_json_key_line(text, key)
                )
            out[key] = value
        return out

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise DocumentError(file, f"invalid JSON: {exc.msg}", line=exc.lineno) from None


def _check_json_depth(text: str, file: str, limits: Limits) -> None:
    """Refuse nesting past the limit before ``json`` recurses into it (strings skipped)."""
    depth = 0
    in_string = escaped = False
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limits.max_depth:
                line = text.count("\n", 0, index) + 1
                raise DocumentError(file, f"nested deeper than {limits.max_depth}", line=line)
        elif char in "]}":
            depth -= 1


def _json_key_line(text: str, key: str) -> int | None:
    """The line of the last ``"key":`` in ``text``: the repeat that was refused."""
    found = list(re.finditer(re.escape(json.dumps(key)) + r"\s*:", text))
    return text.count("\n", 0, found[-1].start()) + 1 if found else None


__all__ = ["DEFAULT_LIMITS", "DocumentError", "Limits", "load_document", "read_document"]
