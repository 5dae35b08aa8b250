from __future__ import annotations

from ray_enterprise.config.stages import StageLog
from tests.support import FakeClock


def test_pending_stages_go_to_the_version_the_apply_made() -> None:
    clock = FakeClock(1000.0)
    log = StageLog(clock=clock)
    log.pending("woke", 999.5)
    log.pending("detected")
    clock.now += 1
    log.pending("detected")  # a second change of the same burst: the first stamp stays
    clock.now += 1
    log.begin(7)
    assert log.get(7) == {"woke": 999.5, "detected": 1000.0, "applied": 1002.0}


def test_an_apply_that_made_no_version_drops_its_pending_stages() -> None:
    log = StageLog(clock=FakeClock(1000.0))
    log.pending("detected")
    log.begin(None)
    log.begin(3)
    assert set(log.get(3)) == {"applied"}


def test_pushes_keep_the_first_and_the_latest_time() -> None:
    clock = FakeClock(1000.0)
    log = StageLog(clock=clock)
    log.begin(1)
    log.pushed(2)  # unknown version: ignored
    for _ in range(3):
        clock.now += 0.5
        log.pushed(1)
    assert log.get(1)["first_push"] == 1000.5 and log.get(1)["last_push"] == 1001.5
    assert log.get(2) == {}


def test_only_the_last_versions_are_kept() -> None:
    log = StageLog(keep=2, clock=FakeClock(1000.0))
    for version in (1, 2, 3):
        log.begin(version)
    assert log.get(1) == {} and log.get(3)
