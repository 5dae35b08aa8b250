"""What the central observability actor sees go wrong between two looks: nodes lost, metric
points refused, Ray's GCS not answering. Pure: each ``observe`` takes what the actor read and
returns alert inputs.

Example::

    >>> nodes = NodeWatch()
    >>> nodes.observe(["a", "b"])
    []
    >>> [(i.node, i.lost) for i in nodes.observe(["a"])]
    [('b', True)]
    >>> [(i.node, i.lost) for i in nodes.observe(["a", "c"])]  # capacity is back
    [('b', False)]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ray_enterprise.alerts.faults import ControlPlaneInput, MetricsRefusedInput, NodeLostInput

_METRICS_NAMED = 5  # metrics an alert names, of those refused for one reason


class NodeWatch:
    """NodeLost when a node that was alive is gone; resolved when the cluster has as many
    alive nodes again as just before that loss (the node came back, or another replaced it).

    A deliberate scale-down fires too: nothing here can tell it from a crash, so the operator
    acknowledges or silences it (``alertname="NodeLost"``).
    """

    def __init__(self, state: Mapping[str, Any] | None = None) -> None:
        state = state or {}
        alive = state.get("alive")
        self._alive: frozenset[str] | None = None if alive is None else frozenset(alive)
        #: lost node -> alive nodes just before it was lost
        self._lost: dict[str, int] = {str(k): int(v) for k, v in state.get("lost", {}).items()}

    def observe(self, alive: Iterable[str]) -> list[NodeLostInput]:
        now = frozenset(alive)
        out: list[NodeLostInput] = []
        if self._alive is not None:  # the first look only learns what is there
            before = len(self._alive)
            for node in sorted(self._alive - now):
                if node not in self._lost:
                    self._lost[node] = before
                    out.append(NodeLostInput(node, lost=True, alive=len(now), needed=before))
        for node, needed in sorted(self._lost.items()):
            if node in now or len(now) >= needed:
                del self._lost[node]
                out.append(NodeLostInput(node, lost=False, alive=len(now), needed=needed))
        self._alive = now
        return out

    @property
    def lost(self) -> dict[str, int]:
        return dict(self._lost)

    def to_state(self) -> dict[str, Any]:
        """What a restarted actor needs to resolve losses it raised before (and to see a loss
        that happened while it was down)."""
        alive = None if self._alive is None else sorted(self._alive)
        return {"alive": alive, "lost": dict(self._lost)}


class RefusalWatch:
    """MetricsRefused, one per reason, for the refusals counted since the last look.

    ``counts`` are the store's running totals by (metric, reason); a total that grew is new.
    The alert expires after a quiet period with no new report (the alert actor's
    ``metrics_refused_quiet``), since nothing ever says refusals are over.
    """

    def __init__(self, counts: Mapping[tuple[str, str], int] | None = None) -> None:
        self._seen = dict(counts or {})

    def observe(
        self,
        counts: Mapping[tuple[str, str], int],
        messages: Mapping[tuple[str, str], str] | None = None,
    ) -> list[MetricsRefusedInput]:
        messages = messages or {}
        new: dict[str, dict[str, int]] = {}  # reason -> metric -> new points
        for (metric, reason), total in counts.items():
            grew = total - self._seen.get((metric, reason), 0)
            if grew > 0:
                new.setdefault(reason, {})[metric] = grew
        self._seen = dict(counts)
        out = []
        for reason, metrics in sorted(new.items()):
            named = sorted(metrics, key=lambda m: (-metrics[m], m))[:_METRICS_NAMED]
            out.append(
                MetricsRefusedInput(
                    reason,
                    sum(metrics.values()),
                    tuple(named),
                    messages.get((named[0], reason), ""),
                )
            )
        return out


class ControlPlaneWatch:
    """ControlPlaneUnreachable once GCS reads have failed for ``after_s`` (one slow answer on a
    busy head is not an outage); resolved by the first read that succeeds after it fired.

    ``observe(ok, now)`` takes each read's outcome and the time it was made, in wall-clock
    seconds: the firing input carries when the failures began (``since``), which dates the
    alert even when it is delivered late.

    Example::

        >>> watch = ControlPlaneWatch(after_s=2.0)
        >>> watch.observe(False, now=10.0), watch.observe(False, now=11.0)
        ([], [])
        >>> [i.reachable for i in watch.observe(False, now=12.5)]
        [False]
        >>> [(i.reachable, i.down_s) for i in watch.observe(True, now=20.0)]
        [(True, 10.0)]
    """

    def __init__(self, after_s: float = 3.0) -> None:
        self.after_s = after_s
        self._failing_since: float | None = None
        self._fired = False

    @property
    def firing(self) -> bool:
        return self._fired

    def observe(self, ok: bool, now: float, detail: str = "") -> list[ControlPlaneInput]:
        if ok:
            since, fired = self._failing_since, self._fired
            self._failing_since, self._fired = None, False
            if fired and since is not None:
                return [ControlPlaneInput(reachable=True, down_s=now - since)]
            return []
        if self._failing_since is None:
            self._failing_since = now
        down = now - self._failing_since
        if not self._fired and down >= self.after_s:
            self._fired = True
            since = self._failing_since
            return [ControlPlaneInput(reachable=False, down_s=down, detail=detail, since=since)]
        return []
