"""Failed logins: the per-address throttle and the digest of anonymous failures, on a fake
clock."""

from __future__ import annotations

from typing import Any

from ray_enterprise.security.login_guard import CLIENT, FailureDigest, LoginThrottle
from tests.support import FakeClock


def test_a_client_past_its_failures_waits_and_others_do_not() -> None:
    clock = FakeClock(0.0)
    throttle = LoginThrottle(per_minute=6.0, burst=3.0, clock=clock)
    for _ in range(3):
        assert throttle.retry_after("10.0.0.1") == 0.0
        throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 10.0  # one failure back every 10 s
    assert throttle.retry_after("10.0.0.2") == 0.0
    clock.advance(10.0)
    assert throttle.retry_after("10.0.0.1") == 0.0


def test_a_flood_of_addresses_is_remembered_within_capacity() -> None:
    throttle = LoginThrottle(burst=1.0, capacity=100, clock=FakeClock(0.0))
    for i in range(1_000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(throttle._buckets) == 100
    assert throttle.retry_after("10.0.3.231") > 0  # the most recent are the ones kept


def test_the_first_anonymous_failure_is_written_at_once_the_rest_as_one_count() -> None:
    clock = FakeClock(1000.0)
    written: list[dict[str, Any]] = []
    digest = FailureDigest(lambda _, d: written.append(d), window_s=60.0, clock=clock)
    digest.note("missing", "10.0.0.1")
    assert written == [{"reason": "missing", "client": "10.0.0.1", "first_of_window_s": 60.0}]
    for i in range(200):
        clock.advance(0.1)
        digest.note("malformed" if i % 2 else "invalid", f"10.0.0.{i % 3}")
    assert len(written) == 1 and digest.pending() is not None
    clock.advance(60.0)
    digest.flush()
    [summary] = written[1:]
    assert summary["count"] == 200 and summary["reasons"] == {"invalid": 100, "malformed": 100}
    assert sum(summary["clients"].values()) == 200
    assert digest.pending() is None
    digest.flush()  # nothing counted since: nothing written
    assert len(written) == 2


def test_a_window_that_ends_is_written_by_the_next_failure_too() -> None:
    clock = FakeClock(0.0)
    written: list[dict[str, Any]] = []
    digest = FailureDigest(lambda _, d: written.append(d), window_s=10.0, clock=clock)
    token = CLIENT.set("192.0.2.7")  # as the gate sets it for the key store's thread
    try:
        digest.note("missing")
        digest.note("missing")
        clock.advance(11.0)
        digest.note("malformed")
    finally:
        CLIENT.reset(token)
    assert [w["reason"] for w in written] == ["missing", "aggregated", "malformed"]
    assert written[1]["clients"] == {"192.0.2.7": 1}
