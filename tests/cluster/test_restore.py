"""A whole cluster lost (every Ray process gone, no Redis), then `up --restore` on a new one:
the application comes back from the durable store alone, at the spec last deployed."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ray_enterprise.testing import RayHead
from tests.cluster.cli_support import BIN, cli, driver, healthy
from tests.support import free_port, wait_for

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


PASSWORD = "db-pass-3f9a"


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
        refused = cli(env, "up", "--restore", "--address", first.address)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "nothing to restore" in refused.stderr and "state.db" in refused.stderr
        # A durable store that does not answer: refused naming it, its password hidden.
        port = free_port()
        away = dict(
            env, RAY_ENTERPRISE_DB_URL=f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/x"
        )
        unreachable = cli(away, "up", "--restore", "--address", first.address)
        assert unreachable.returncode == 2, unreachable.stdout + unreachable.stderr
        assert (
            f"cannot read the durable store postgresql+psycopg://postgres:***@127.0.0.1:{port}/x"
            in (unreachable.stderr)
        )
        assert "nothing was started" in unreachable.stderr
        assert PASSWORD not in unreachable.stdout + unreachable.stderr
        assert "Traceback" not in unreachable.stderr

        up = _up(env, str(tmp_path / "v1.yaml"), "--address", first.address)
        wait_for(lambda: healthy(env, first.address), timeout=180, what="v1 healthy")
        deploy = cli(env, "deploy", str(tmp_path / "v2.yaml"), "--bake", "1",
                      "--address", first.address, timeout=240)  # fmt: skip
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        before = {s["name"]: s for s in healthy(env, first.address)["services"]}
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
        restored = wait_for(lambda: healthy(env, second.address), timeout=180, what="restored")
        services = {s["name"]: s for s in restored["services"]}
        assert set(services) == {"database", "cache"}
        # Started anew, not counted as restarts, and the cache at the spec deployed last.
        assert all(s["restarts"] == 0 for s in services.values()), services
        history = json.loads(cli(env, "history", "cache", "--json", "--address",
                                  second.address).stdout)  # fmt: skip
        assert history and history[0]["outcome"] == "done"
        assert history[0]["new_spec"]["config"]["capacity"] == 32
        specs = driver(env, second.address, "specs", "cache", "database")
        assert specs["cache"]["config"]["capacity"] == 32
        # `down` erases what was kept: a second --restore has nothing to bring back.
        down = cli(env, "down", "--address", second.address)
        assert down.returncode == 0, down.stdout + down.stderr
        out = _stop(up)
        up = None
        assert "restored from the durable store: cache, database" in out
        again = cli(env, "up", "--restore", "--address", second.address)
        assert again.returncode == 2 and "nothing to restore" in again.stderr
    finally:
        _stop(up)
        second.stop()
