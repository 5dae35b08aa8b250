"""Every setting of the cache section, on the tiers themselves, with a fake clock. The disk
tier is a real SQLite file and the Redis tier a real redis-server on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ray_enterprise.config.schema import CacheTierConfig, EnterpriseCacheConfig
from ray_enterprise.examples.tiered_cache import MiB, TieredCache
from tests.support import FakeClock, free_port, wait_for


def section(**tiers: dict[str, Any]) -> dict[str, Any]:
    return {"tiers": {name: CacheTierConfig(**body) for name, body in tiers.items()}}


def cache(tmp_path: Path, clock: FakeClock, **fields: Any) -> TieredCache:
    fields.setdefault("tiers", {"l1": CacheTierConfig(level=1, max_items=3)})
    return TieredCache(EnterpriseCacheConfig(**fields), disk_dir=tmp_path, clock=clock)


def kept(c: TieredCache, *keys: str) -> list[str]:
    return [k for k in keys if c.get(k)[0]]


@pytest.mark.parametrize(
    ("eviction", "survivors"),
    [
        ("lru", ["a", "c", "d"]),  # b was used least recently (a was read after it)
        ("lfu", ["a", "c", "d"]),  # b was read least often
        ("fifo", ["b", "c", "d"]),  # a went in first, reads do not matter
        ("ttl", ["a", "b", "d"]),  # c was written with the shortest life
    ],
)
def test_each_eviction_policy_picks_its_own_victim(
    tmp_path: Path, eviction: str, survivors: list[str]
) -> None:
    clock = FakeClock(1000.0)
    c = cache(tmp_path, clock, tiers={"l1": CacheTierConfig(max_items=3, eviction=eviction)})
    c.put("a", 1)
    clock.advance(1)
    c.put("b", 2)
    clock.advance(1)
    c.put("c", 3, ttl_s=10)
    clock.advance(1)
    c.get("a")
    c.get("a")
    c.get("c")
    clock.advance(1)
    c.put("d", 4)
    assert c.tiers[0].evictions == 1
    assert kept(c, "a", "b", "c", "d") == survivors


def test_a_tier_keeps_nothing_past_its_ttl_and_default_ttl_applies_when_shorter(
    tmp_path: Path,
) -> None:
    clock = FakeClock(0.0)
    c = cache(
        tmp_path,
        clock,
        default_ttl_seconds=5,
        tiers={"l1": CacheTierConfig(ttl_seconds=60)},
    )
    c.put("short", "x")  # default 5 s
    c.put("long", "y", ttl_s=600)  # capped by the tier's 60 s
    clock.advance(5.1)
    assert kept(c, "short", "long") == ["long"]
    clock.advance(55)
    assert kept(c, "long") == []


def test_max_size_mb_bounds_the_bytes_a_tier_holds(tmp_path: Path) -> None:
    clock = FakeClock(0.0)
    c = cache(tmp_path, clock, tiers={"l1": CacheTierConfig(max_size_mb=1, max_items=100)})
    blob = "z" * (400 * 1024)
    for key in ("a", "b", "c"):
        c.put(key, blob)
        clock.advance(1)
    assert c.tiers[0].bytes <= 1 * MiB
    assert kept(c, "a", "b", "c") == ["b", "c"]
    c.put("huge", "z" * (2 * MiB))  # larger than the tier: not kept, nothing else evicted
    assert kept(c, "huge", "b", "c") == ["b", "c"]


def test_a_hit_in_a_lower_tier_is_copied_into_the_faster_one(tmp_path: Path) -> None:
    clock = FakeClock(0.0)
    c = cache(
        tmp_path,
        clock,
        tiers={
            "l1": CacheTierConfig(level=1, max_items=1),
            "l2": CacheTierConfig(level=2, backend="disk", max_items=10),
        },
    )
    c.put("a", {"n": 1})
    c.put("b", {"n": 2})  # evicts a from l1 only
    assert c.tiers[0].items == 1 and c.tiers[1].items == 2
    assert c.get("a") == (True, {"n": 1})
    assert c.tiers[0].get("ray_enterprise:a")[0]  # now in l1 again


def test_a_disk_tier_outlives_its_process_and_prefixes_keep_caches_apart(tmp_path: Path) -> None:
    clock = FakeClock(0.0)
    disk = {"l1": CacheTierConfig(backend="disk", max_items=10)}
    first = cache(tmp_path, clock, tiers=disk, key_prefix="app-a")
    first.put("k", "from a")
    other = cache(tmp_path, clock, tiers=disk, key_prefix="app-b")
    assert other.get("k") == (False, None)  # same file, other prefix
    other.put("k", "from b")
    first.close()
    again = cache(tmp_path, clock, tiers=disk, key_prefix="app-a")
    assert again.tiers[0].items == 1  # index rebuilt from the file, app-b's row not counted
    assert again.get("k") == (True, "from a")
    again.clear()
    assert other.get("k") == (True, "from b")


def test_disabled_keeps_nothing(tmp_path: Path) -> None:
    c = cache(tmp_path, FakeClock(0.0), enabled=False)
    c.put("a", 1)
    assert c.get("a") == (False, None) and c.tiers == []


def test_a_value_json_cannot_hold_is_not_cached_rather_than_pickled(tmp_path: Path) -> None:
    c = cache(tmp_path, FakeClock(0.0))
    c.put("a", object())
    assert c.get("a") == (False, None)


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[tuple[int, str]]:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server must be installed in CI (.ci/run installs it)")
        pytest.skip("redis-server not installed")
    port, password = free_port(), "tier-pass-5e1"
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
         "--save", "", "--requirepass", password],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        import socket

        def up() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return True
            except OSError:
                return False

        wait_for(up, timeout=10, what="redis-server")
        yield port, password
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_redis_tier_uses_its_url_and_password_and_redis_expires_its_keys(
    tmp_path: Path, redis_url: tuple[int, str]
) -> None:
    port, password = redis_url
    url = f"redis://127.0.0.1:{port}/0"
    tiers = {"l1": CacheTierConfig(backend="redis", url=url, password=password, max_items=2)}
    c = TieredCache(
        EnterpriseCacheConfig(tiers=tiers, key_prefix="demo"), disk_dir=tmp_path, clock=time.time
    )
    c.put("a", [1, 2])
    c.put("b", "two", ttl_s=0.3)
    c.put("c", 3)  # max_items 2: a goes (lru)
    import redis

    raw = redis.Redis(port=port, password=password)
    assert sorted(raw.keys("demo:*")) == [b"demo:b", b"demo:c"]
    wait_for(lambda: raw.get("demo:b") is None, timeout=5, what="redis to expire b")
    assert c.get("c") == (True, 3)
    with pytest.raises(redis.AuthenticationError):
        wrong = {"l1": CacheTierConfig(backend="redis", url=url, password="wrong")}
        TieredCache(EnterpriseCacheConfig(tiers=wrong), disk_dir=tmp_path)
