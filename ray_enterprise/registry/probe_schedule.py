"""When each replica's next health probe and watch call go out, and which probe ran out of
time: pure bookkeeping, no Ray, so the batching rules are tested in milliseconds.

The registry probes every replica from one loop (:mod:`prober`): each tick it asks this
schedule what is due, sends it, and polls every answer still out at once (Ray Serve's
controller polls its replicas' ``check_health`` refs the same way, once per tick). One probe
per replica is out at a time; the next is scheduled once the last one was judged, a period
after the last went out, so an answer collected a tick after it came does not stretch the
period (the per-replica loop slept a period after each answer; the difference is the
answer's round trip, a few ms). After a timeout the next waits a period from then, as before.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(eq=False)
class Slot:
    """One replica's place in the schedule."""

    due: float | None  # when the next probe goes out; None while one is out or being judged
    watch_due: float | None  # when the next watch call goes out; None while one is out, or
    # after the watch ended (the service said it stopped or completed)
    sent_at: float | None = None  # the probe out now was sent then
    timeout_s: float = 0.0  # ... and times out after this long
    last_sent: float | None = None  # the last probe, out or answered, was sent then
    late: bool = False  # the last probe timed out


class ProbeSchedule:
    """Every probed replica by id: what is due at ``now``, what is out, what timed out."""

    def __init__(self) -> None:
        self.slots: dict[str, Slot] = {}

    def add(self, rid: str, now: float, *, probe: bool = True, watch: bool = True) -> Slot:
        """A replica to probe (its first probe due at once, or at the first :meth:`again`)
        and to watch (its watch call due at once) from now on."""
        slot = Slot(due=now if probe else None, watch_due=now if watch else None)
        self.slots[rid] = slot
        return slot

    def remove(self, rid: str) -> Slot | None:
        return self.slots.pop(rid, None)

    def __contains__(self, rid: object) -> bool:
        return rid in self.slots

    def __len__(self) -> int:
        return len(self.slots)

    def probes_due(self, now: float) -> list[str]:
        """Replicas whose next probe is due and none is out: send these now."""
        return [rid for rid, s in self.slots.items() if s.due is not None and s.due <= now]

    def sent(self, rid: str, now: float, timeout_s: float) -> None:
        slot = self.slots[rid]
        slot.due, slot.sent_at, slot.last_sent, slot.timeout_s = None, now, now, timeout_s
        slot.late = False

    def answered(self, rid: str) -> None:
        """Its probe came back (or timed out): being judged, nothing due until :meth:`again`."""
        self.slots[rid].sent_at = None

    def expired(self, now: float) -> list[str]:
        """Replicas whose probe out is past its timeout: each is reported once, as answered."""
        late = [
            rid
            for rid, s in self.slots.items()
            if s.sent_at is not None and now - s.sent_at >= s.timeout_s
        ]
        for rid in late:
            self.answered(rid)
            self.slots[rid].late = True
        return late

    def again(self, rid: str, period_s: float, now: float) -> None:
        """The last probe was judged: the next goes out ``period_s`` after it went out, so the
        tick that collected its answer does not stretch the period; after a probe that timed
        out (or before the first), ``period_s`` from ``now``, as the per-replica loop slept."""
        slot = self.slots.get(rid)
        if slot is None or slot.sent_at is not None:
            return
        since = now if slot.last_sent is None or slot.late else slot.last_sent
        slot.due = since + period_s

    def watches_due(self, now: float) -> list[str]:
        return [
            rid for rid, s in self.slots.items() if s.watch_due is not None and s.watch_due <= now
        ]

    def watch_sent(self, rid: str) -> None:
        self.slots[rid].watch_due = None

    def watch_again(self, rid: str, at: float | None) -> None:
        """The watch call came back: the next goes out at ``at`` (None: watching is over)."""
        slot = self.slots.get(rid)
        if slot is not None:
            slot.watch_due = at
