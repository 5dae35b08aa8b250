"""`ray-enterprise up SPEC --api` as an operator runs it: its own Ray, real Serve, real HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support import free_port

REPO = Path(__file__).resolve().parents[3]
CLI = [sys.executable, "-m", "ray_enterprise"]

pytestmark = pytest.mark.timeout(420)


def test_up_with_api_serves_on_loopback_prints_the_url_and_stops_it(tmp_path: Path) -> None:
    spec = tmp_path / "app.yaml"
    spec.write_text(
        "name: tiny\nservices:\n"
        "  - {name: solo, class: 'ray_enterprise.examples.faulty:FaultyService'}\n"
    )
    env = {**os.environ, "RAY_ENTERPRISE_HOME": str(tmp_path / "home")}
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "up", str(spec), "--num-cpus", "2", "--api", "--api-port", str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    url = None
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and url is None:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("management API: "):
                url = line.split()[2]
        assert url == f"http://127.0.0.1:{port}", "".join(lines[-40:])
        created = subprocess.run(
            [*CLI, "keys", "create", "--scope", "status:read", "--name", "ops"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
            env=env,
        )
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip()
        assert requests.get(f"{url}/status", timeout=60).status_code == 401
        status = requests.get(f"{url}/status", headers={"X-API-Key": key}, timeout=60)
        assert status.status_code == 200, status.text
        assert [s["name"] for s in status.json()["services"]] == ["solo"]
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = "".join(lines) + rest
    assert proc.returncode == 0, output[-3000:]
    assert "all services stopped" in output
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/status", timeout=10)
