"""Label matchers (``=``, ``!=``, ``=~``, ``!~``) and the silences built from them.

Routes, inhibition rules, silences and metric-rule selectors all select by labels the way
Prometheus and Alertmanager do, so one matcher type and one matcher syntax serve them all.
Regexes are anchored, as in Prometheus: ``service=~"api|web"`` does not match ``"api2"``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ray_enterprise.alerts.errors import RuleSyntaxError


class MatchOp(str, enum.Enum):
    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


@dataclass(frozen=True)
class Matcher:
    """``label op value``; a missing label reads as the empty string, as in Prometheus."""

    label: str
    op: MatchOp
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op in (MatchOp.RE, MatchOp.NRE) and self._regex is None:
            try:
                compiled = re.compile(f"(?:{self.value})\\Z")
            except re.error as exc:
                raise RuleSyntaxError(
                    str(self), self.value, exc.pos or 0, f"a valid regular expression ({exc.msg})"
                ) from exc
            object.__setattr__(self, "_regex", compiled)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op is MatchOp.EQ:
            return actual == self.value
        if self.op is MatchOp.NE:
            return actual != self.value
        assert self._regex is not None
        found = self._regex.match(actual) is not None
        return found if self.op is MatchOp.RE else not found

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.label}{self.op.value}"{escaped}"'


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPS = ("=~", "!~", "!=", "=")


def read_matchers(text: str, pos: int, rule: str, closing: str | None) -> tuple[list[Matcher], int]:
    """Read comma-separated matchers from ``text`` at ``pos`` up to ``closing`` (or the end).

    Shared by the silence syntax and the metric-rule selector so both report errors the same
    way: with the rule name and the position of the first unreadable character.
    """
    matchers: list[Matcher] = []
    while True:
        pos = _skip_space(text, pos)
        if closing is not None and text.startswith(closing, pos) and not matchers:
            return matchers, pos + len(closing)
        label = _LABEL.match(text, pos)
        if label is None:
            raise RuleSyntaxError(rule, text, pos, "a label name")
        pos = _skip_space(text, label.end())
        op = next((o for o in _OPS if text.startswith(o, pos)), None)
        if op is None:
            raise RuleSyntaxError(rule, text, pos, "one of = != =~ !~")
        pos = _skip_space(text, pos + len(op))
        value, pos = _read_value(text, pos, rule)
        matchers.append(Matcher(label.group(), MatchOp(op), value))
        pos = _skip_space(text, pos)
        if text.startswith(",", pos):
            pos += 1
            continue
        if closing is None:
            if pos == len(text):
                return matchers, pos
            raise RuleSyntaxError(rule, text, pos, "',' or end of matchers")
        if text.startswith(closing, pos):
            return matchers, pos + len(closing)
        raise RuleSyntaxError(rule, text, pos, f"',' or {closing!r}")


def parse_matchers(text: str) -> tuple[Matcher, ...]:
    """Parse ``service="api", severity=~"high|critical"`` (braces optional), as a CLI takes it."""
    stripped = text.strip()
    if stripped.startswith("{"):
        matchers, pos = read_matchers(stripped, 1, text, "}")
        if _skip_space(stripped, pos) != len(stripped):
            raise RuleSyntaxError(text, stripped, pos, "end of matchers after '}'")
    else:
        matchers, _ = read_matchers(stripped, 0, text, None)
    if not matchers:
        raise RuleSyntaxError(text, stripped, 0, "at least one matcher")
    return tuple(matchers)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _read_value(text: str, pos: int, rule: str) -> tuple[str, int]:
    """A double-quoted string with backslash escapes, or a bare word for CLI convenience."""
    if text.startswith('"', pos):
        out: list[str] = []
        i = pos + 1
        while i < len(text):
            ch = text[i]
            if ch == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                return "".join(out), i + 1
            out.append(ch)
            i += 1
        raise RuleSyntaxError(rule, text, len(text), "a closing '\"'")
    bare = re.compile(r"[^\s,{}\"]+").match(text, pos)
    if bare is None:
        raise RuleSyntaxError(rule, text, pos, "a quoted label value")
    return bare.group(), bare.end()


@dataclass(frozen=True)
class Silence:
    """Mute alerts whose labels match, from ``starts_at`` until ``ends_at`` (milliseconds).

    A silence only hides notifications: the alert still fires, is stored and can be acked, and
    when the silence ends the next group flush tells the handlers about it.
    """

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: int
    ends_at: int
    created_by: str
    comment: str = ""

    def active(self, now: int) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: Mapping[str, str]) -> bool:
        return matches_all(self.matchers, labels)

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "matchers": [str(m) for m in self.matchers],
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "created_by": self.created_by,
            "comment": self.comment,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Silence:
        raw = data["matchers"]
        assert isinstance(raw, list)
        matchers = parse_matchers(", ".join(str(m) for m in raw))
        return cls(
            id=str(data["id"]),
            matchers=matchers,
            starts_at=int(str(data["starts_at"])),
            ends_at=int(str(data["ends_at"])),
            created_by=str(data["created_by"]),
            comment=str(data.get("comment", "")),
        )
