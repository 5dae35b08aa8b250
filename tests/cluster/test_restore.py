"""A whole cluster lost (every Ray process gone, no Redis), then `up --restore` on a new one:
the application comes back from the durable store alone, at the spec last deployed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ray_enterprise.testing import RayHead
from tests.support import wait_for

BIN = Path(sys.executable).parent
DRIVER = Path(__file__).with_name("ft_driver.py")

APP = """
name: kept
services:
  - name: database
    class: ray_enterprise.examples.store:KeyValueStore
    criticality: critical
    health: {period_s: 0.5, timeout_s: 2.0, failure_threshold: 3}
  - name: cache
    class: ray_enterprise.examples.cache:CacheService
    depends_on: [database]
    health: {period_s: 0.5, timeout_s: 2.0, failure_threshold: 3}
    config: {capacity: CAPACITY}
"""


def _cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ray-enterprise"), *args], env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def _status(env: dict[str, str], address: str) -> dict[str, Any]:
    try:
        run = _cli(env, "status", "--json", "--address", address, timeout=60)
    except subprocess.TimeoutExpired:
        return {}
    return json.loads(run.stdout) if run.returncode == 0 else {}


def _healthy(env: dict[str, str], address: str) -> dict[str, Any]:
    doc = _status(env, address)
    return doc if doc.get("status") == "healthy" else {}


def _driver(env: dict[str, str], address: str, *args: str) -> str:
    run = subprocess.run(
        [sys.executable, str(DRIVER), address, *args], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout.strip().splitlines()[-1]


def _up(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "ray-enterprise"), "up", *args, "--duration", "900"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _stop(process: subprocess.Popen[str] | None) -> str:
    if process is None:
        return ""
    if process.poll() is None:
        process.kill()
    out, _ = process.communicate(timeout=30)
    return out or ""


@pytest.mark.timeout(900)  # two clusters started in turn; minutes on a loaded machine
def test_up_restore_brings_back_the_last_deployed_application_on_a_new_cluster(
    tmp_path: Path,
) -> None:
    env = dict(
        os.environ, PATH=f"{BIN}:{os.environ['PATH']}", RAY_ENTERPRISE_HOME=str(tmp_path / "home")
    )
    env.pop("RAY_ADDRESS", None)
    (tmp_path / "v1.yaml").write_text(APP.replace("CAPACITY", "16"))
    (tmp_path / "v2.yaml").write_text(APP.replace("CAPACITY", "32"))

    # Nothing kept yet: --restore refuses and names the store, nothing is started.
    first = RayHead(num_cpus=2, env=env, include_dashboard=False)
    up: subprocess.Popen[str] | None = None
    try:
        first.start()
        refused = _cli(env, "up", "--restore", "--address", first.address)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "nothing to restore" in refused.stderr and "state.db" in refused.stderr

        up = _up(env, str(tmp_path / "v1.yaml"), "--address", first.address)
        wait_for(lambda: _healthy(env, first.address), timeout=180, what="v1 healthy")
        deploy = _cli(env, "deploy", str(tmp_path / "v2.yaml"), "--bake", "1",
                      "--address", first.address, timeout=240)  # fmt: skip
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        before = {s["name"]: s for s in _healthy(env, first.address)["services"]}
        assert before["cache"]["generation"] > before["database"]["generation"]
        # The whole cluster is lost at once; its `up` driver goes with it.
        first.kill()
        _stop(up)
        up = None
    finally:
        _stop(up)
        first.stop()

    second = RayHead(num_cpus=2, env=env, include_dashboard=False)
    try:
        second.start()
        up = _up(env, "--restore", "--address", second.address)
        restored = wait_for(lambda: _healthy(env, second.address), timeout=180, what="restored")
        services = {s["name"]: s for s in restored["services"]}
        assert set(services) == {"database", "cache"}
        # Started anew, not counted as restarts, and the cache at the spec deployed last.
        assert all(s["restarts"] == 0 for s in services.values()), services
        history = json.loads(_cli(env, "history", "cache", "--json", "--address",
                                  second.address).stdout)  # fmt: skip
        assert history and history[0]["outcome"] == "done"
        assert history[0]["new_spec"]["config"]["capacity"] == 32
        specs = json.loads(_driver(env, second.address, "specs", "cache", "database"))
        assert specs["cache"]["config"]["capacity"] == 32
        # `down` erases what was kept: a second --restore has nothing to bring back.
        down = _cli(env, "down", "--address", second.address)
        assert down.returncode == 0, down.stdout + down.stderr
        out = _stop(up)
        up = None
        assert "restored from the durable store: cache, database" in out
        again = _cli(env, "up", "--restore", "--address", second.address)
        assert again.returncode == 2 and "nothing to restore" in again.stderr
    finally:
        _stop(up)
        second.stop()
