"""Call latency as counts in fixed log-spaced buckets: what each replica keeps and the bake
gate compares.

A fixed bucket layout lets a replica count a call with one ``log`` and one increment, lets the
registry subtract a snapshot taken before the bake from one taken after (counts only grow), and
lets it add replicas together, none of which a list of samples or a streaming quantile sketch
allows as cheaply. Buckets grow by 25 %, so a p99 read from them is within 25 % of the truth.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: The first bucket holds calls up to this long (seconds); each next bucket is 25 % wider.
FIRST_S = 1e-4
GROWTH = 1.25
#: 0.1 ms .. ~100 s, then one bucket for anything longer.
COUNT = 64

_LOG_GROWTH = math.log(GROWTH)


def bucket_of(seconds: float) -> int:
    """The index of the bucket a call of this duration falls in."""
    if seconds <= FIRST_S:
        return 0
    return min(COUNT - 1, math.ceil(math.log(seconds / FIRST_S) / _LOG_GROWTH))


def upper_bound_s(index: int) -> float:
    """The longest duration bucket ``index`` holds (the last bucket is open-ended)."""
    return math.inf if index >= COUNT - 1 else FIRST_S * GROWTH**index


def empty() -> list[int]:
    return [0] * COUNT


def quantile_s(counts: Sequence[int], q: float) -> float | None:
    """The upper bound of the bucket that holds the ``q`` quantile; ``None`` with no calls."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return upper_bound_s(index)
    return upper_bound_s(len(counts) - 1)
