"""Contextual Anomaly Detector, open source edition (Smirnov, 2016), as NAB runs it ("contextOSE").

Written from the algorithm as NAB documents it (``nab/detectors/context_ose``), to compare with
its published outputs row by row. Each value becomes three binary facts (the bits of its level
among 8 over the series' range). The detector remembers *contexts*: a left half (the previous
step's facts plus the ids of the contexts that were active then) and a right half (this step's
facts). A step asks two things of memory:

- of the contexts whose left half fully matches what came before, how many also fully match
  now (their ids become the "neuron" facts of the next left half);
- how many new contexts this step teaches, relative to the candidates it saw.

The raw score is ``(1 - share of selected contexts that are active + share of candidates that
were new) / 2``; after a score of ``threshold`` or more the detector stays silent for
``rest`` steps.

Its range is the whole series' minimum and maximum, known in advance as NAB gives it: a
streaming shard cannot know them, so this detector is for the reproduction, not the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ray_enterprise.anomaly.detectors import Score

__all__ = ["ContextOSE"]

_NEURON = 2**31  # neuron facts are context ids shifted past every sensor fact
_MASK = 2**64 - 1


def legacy_hash(facts: tuple[int, ...]) -> int:
    """The hash CPython 2 gave a tuple of ints (64-bit): the published outputs were made with
    it, and it breaks ties when ranking active contexts, so it decides which become neurons."""
    x, mult = 0x345678, 1000003
    for remaining, fact in zip(range(len(facts) - 1, -1, -1), facts, strict=True):
        x = ((x ^ (fact if fact != -1 else -2)) * mult) & _MASK
        mult = (mult + 82520 + 2 * remaining) & _MASK
    x = (x + 97531) & _MASK
    x = x - 2**64 if x >= 2**63 else x
    return -2 if x == -1 else x


class _Py2Order:
    """The order CPython 2 iterated a dict of int keys in (its slots: open addressing with
    perturbed probing, grown 4x at two-thirds full). The published outputs were made with it,
    and the order a left half lists its contexts decides the order new contexts are made in."""

    __slots__ = ("_rank", "table", "used")

    def __init__(self) -> None:
        self.table: list[int | None] = [None] * 8
        self.used = 0
        self._rank: dict[int, int] | None = None

    def _place(self, key: int) -> None:
        mask = len(self.table) - 1
        i, perturb = key & mask, key
        while self.table[i & mask] is not None:
            i = (i << 2) + i + perturb + 1
            perturb >>= 5
        self.table[i & mask] = key

    def add(self, key: int) -> None:
        self._place(key)
        self.used += 1
        self._rank = None
        if self.used * 3 >= len(self.table) * 2:
            keys = [k for k in self.table if k is not None]
            size, wanted = 8, (2 if self.used > 50000 else 4) * self.used
            while size <= wanted:
                size <<= 1
            self.table = [None] * size
            for k in keys:
                self._place(k)

    def rank(self, key: int) -> int:
        if self._rank is None:
            self._rank = {k: i for i, k in enumerate(self.table) if k is not None}
        return self._rank[key]


class _Half:
    """A half-context (a set of facts) and what matched it at the last crossing."""

    __slots__ = ("id", "matched", "order", "pairs", "size", "zero_pairs")

    def __init__(self, id_: int, facts: tuple[int, ...]) -> None:
        self.id = id_
        self.size = len(facts)
        self.matched: list[int] = []
        self.pairs: dict[int, int] = {}  # right half id -> context id (left halves only)
        self.zero_pairs: dict[int, int] = {}  # the same, for zero-level contexts only
        self.order = _Py2Order()  # of the right half ids in ``pairs``


class _Side:
    """Every half of one side, indexed by its facts and by each fact it holds."""

    def __init__(self) -> None:
        self.ids: dict[int, int] = {}
        self.halves: list[_Half] = []
        self.by_fact: dict[int, list[_Half]] = {}
        self.crossed: list[_Half] = []

    def find_or_add(self, facts: tuple[int, ...], key: int) -> int:
        """The half ``facts`` (whose legacy hash is ``key``), made if new. Halves are known by
        that hash, as in the reference: two fact sets whose hashes collide are one half."""
        found = self.ids.get(key)
        if found is not None:
            return found
        half = _Half(len(self.halves), facts)
        self.ids[key] = half.id
        self.halves.append(half)
        for fact in facts:
            self.by_fact.setdefault(fact, []).append(half)
        return half.id

    def cross(self, facts: tuple[int, ...]) -> None:
        """Which facts of each half are present now; ``crossed`` lists the halves touched."""
        for half in self.crossed:
            half.matched = []
        touched: dict[int, _Half] = {}
        for fact in facts:
            for half in self.by_fact.get(fact, ()):
                half.matched.append(fact)
                touched[half.id] = half
        # In the order the halves were made: it decides the order new contexts are made in.
        self.crossed = [touched[k] for k in sorted(touched)]


class ContextOSE:
    """One series; ``low``/``high`` its range and ``rest`` the silence after an alarm."""

    def __init__(
        self,
        *,
        low: float,
        high: float,
        rest: float = 30.0,
        threshold: float = 0.75,
        max_left: int = 7,
        max_neurons: int = 15,
        bits: int = 3,
    ) -> None:
        self.params = {
            "low": low,
            "high": high,
            "rest": rest,
            "threshold": threshold,
            "max_left": max_left,
            "max_neurons": max_neurons,
            "bits": bits,
        }
        self.low, self.rest, self.threshold = float(low), rest, threshold
        self.max_left, self.max_neurons, self.bits = max_left, max_neurons, bits
        top = 2**bits - 1.0
        span = float(high) - float(low)
        self.step_size = (span if span != 0.0 else top) / top
        self.left, self.right = _Side(), _Side()
        # Per context: how often active, whether it was ever a whole step's context, its halves'
        # fact tuples (their hashes break ties when ranking active contexts).
        self.active_counts: list[int] = []
        self.zero_level: list[bool] = []
        self.keys: list[tuple[int, int]] = []
        self.previous: tuple[int, ...] = ()
        self.new_context: int | None = None
        self.history = [1.0]

    def _context(self, left: tuple[int, ...], right: tuple[int, ...], zero_level: bool) -> bool:
        """Remember the context ``left -> right``; True if it is new."""
        left_key, right_key = legacy_hash(left), legacy_hash(right)
        left_id = self.left.find_or_add(left, left_key)
        right_id = self.right.find_or_add(right, right_key)
        half = self.left.halves[left_id]
        found = half.pairs.get(right_id)
        if found is None:
            context = half.pairs[right_id] = len(self.active_counts)
            half.order.add(right_id)
            self.active_counts.append(0)
            self.zero_level.append(zero_level)
            self.keys.append((left_key, right_key))
            if zero_level:
                half.zero_pairs[right_id] = context
                self.new_context = context
            return True
        if zero_level:
            self.zero_level[found] = True
            half.zero_pairs[right_id] = found
        return False

    def _active(self, learning: bool) -> tuple[list[tuple[int, int, int, int]], int, list[Any]]:
        active: list[tuple[int, int, int, int]] = []
        selected = 0
        candidates: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
        # The reference skips the context made this step, and context 0 when none was made.
        skip = 0 if self.new_context is None else self.new_context
        rights = self.right.halves
        for left in self.left.crossed:
            may_teach = learning and len(left.matched) <= self.max_left
            proposed: list[tuple[int, tuple[int, ...]]] = []  # (right half id, its matched facts)
            if left.size != len(left.matched):
                # A partly matched left half only proposes new contexts, from zero-level ones.
                if may_teach:
                    for right_id, context in left.zero_pairs.items():
                        right = rights[right_id]
                        if context != skip and right.matched:
                            proposed.append((right_id, tuple(right.matched)))
                candidates.extend(self._in_order(left, proposed))
                continue
            for right_id, context in left.pairs.items():
                if context == skip:
                    continue
                selected += 1
                right = rights[right_id]
                if not right.matched:
                    continue
                if right.size == len(right.matched):
                    self.active_counts[context] += 1
                    left_key, right_key = self.keys[context]
                    active.append((self.active_counts[context], left_key, right_key, context))
                elif may_teach and self.zero_level[context]:
                    proposed.append((right_id, tuple(right.matched)))
            candidates.extend(self._in_order(left, proposed))
        self.new_context = None
        return active, selected, candidates

    @staticmethod
    def _in_order(left: _Half, proposed: list[tuple[int, tuple[int, ...]]]) -> list[Any]:
        if len(proposed) > 1:
            proposed.sort(key=lambda item: left.order.rank(item[0]))
        facts = tuple(left.matched)
        return [(facts, right) for _, right in proposed]

    def _step(self, facts: tuple[int, ...]) -> tuple[float, float]:
        unique: set[Any] = set()
        new = False
        if self.previous and facts:
            unique.add((self.previous, facts))
            new = self._context(self.previous, facts, zero_level=True)
        self.right.cross(facts)
        active, selected, candidates = self._active(new)
        unique.update(candidates)
        share_active = len(active) / selected if selected else 0.0
        active.sort()
        neurons = {_NEURON + a[3] for a in active[-self.max_neurons :]}
        self.previous = tuple(sorted(set(facts) | neurons))
        added = sum(self._context(left, right, zero_level=False) for left, right in candidates)
        self.left.cross(self.previous)
        added += 1 if new else 0
        share_new = added / len(unique) if new and unique else 0.0
        return share_active, share_new

    def score_and_learn(self, value: float, ts: float) -> Score:
        level = int((value - self.low) / self.step_size)
        bits = bin(level).lstrip("0b").rjust(self.bits, "0")
        facts = tuple(sorted({i * 2 + (bit == "1") for i, bit in enumerate(reversed(bits))}))
        share_active, share_new = self._step(facts)
        raw = (1.0 - share_active + share_new) / 2.0
        quiet = max(self.history[-int(self.rest) :]) >= self.threshold
        self.history.append(raw)
        return Score(0.0 if quiet else raw, min(1.0, len(self.history) / 100.0))

    def to_state(self) -> dict[str, Any]:
        # The memory is a graph of small objects: pickled whole, not flattened to arrays.
        return {"kind": "context_ose", "params": dict(self.params), "detector": self}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ContextOSE:
        detector: ContextOSE = state["detector"]
        return detector
