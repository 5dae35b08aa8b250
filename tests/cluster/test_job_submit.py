"""`ray job submit ... -- ray-enterprise up` against a `ray start --head` cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ray_enterprise.testing import RayHead

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_job_submit_runs_the_demo_and_status_sees_it_from_another_process() -> None:
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}")
    with RayHead(num_cpus=2, env=env) as head:
        job = subprocess.Popen(
            [str(BIN / "ray"), "job", "submit", "--address", head.dashboard_url,
             "--working-dir", str(REPO), "--",
             "ray-enterprise", "up", "cluster/demo.yaml", "--duration", "45"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            doc: dict[str, object] = {}
            while time.monotonic() < deadline and job.poll() is None:
                status = subprocess.run(
                    [str(BIN / "ray-enterprise"), "status", "--json", "--address", head.address],
                    env=env, capture_output=True, text=True, timeout=60,
                )  # fmt: skip
                if status.returncode == 0:
                    doc = json.loads(status.stdout)
                    if doc["status"] == "healthy":
                        break
                time.sleep(1)
            assert doc.get("status") == "healthy", doc
            assert len(doc["services"]) == 6  # type: ignore[arg-type]
            output, _ = job.communicate(timeout=180)
        finally:
            if job.poll() is None:
                job.kill()
                job.wait()
    assert job.returncode == 0, output[-3000:]
    assert "all services stopped" in output
    assert "succeeded" in output
