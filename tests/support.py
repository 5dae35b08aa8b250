"""The one set of test helpers every test imports: a fake clock, a free loopback port, and a
wait on a condition with a deadline (STYLE habit 7: tests never sleep to synchronise)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
N = TypeVar("N", int, float)


class FakeClock(Generic[N]):
    """A clock the test moves: ``clock()`` reads it, ``advance(dt)`` or ``clock.now = t`` moves it.

    ``step`` moves it by that much at every read, for code that needs each read to be later
    than the last (history rows, sequence numbers). Integer clocks (milliseconds) stay integers.
    """

    def __init__(self, now: N = 1000.0, step: N | None = None) -> None:  # type: ignore[assignment]
        self.now: N = now
        self.step = step

    def __call__(self) -> N:
        if self.step:
            self.now = self.now + self.step  # type: ignore[assignment]
        return self.now

    def advance(self, dt: N) -> N:
        self.now = self.now + dt  # type: ignore[assignment]
        return self.now


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(pair: bool = False) -> int:
    """A loopback port that is free (and, with ``pair``, so is the next one: OpenBao's dev
    server binds PORT+1 too)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < 65535 and (not pair or _port_free(port + 1)):
            return port
    raise RuntimeError("no free loopback port")


def wait_for(
    probe: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` on the deadline."""
    deadline = time.monotonic() + timeout
    last: T = probe()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}: last={last!r}")
        time.sleep(interval)
        last = probe()
    return last
