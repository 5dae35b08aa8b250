"""`up` as a `ray job submit` entrypoint ends when its significant services end (OTP's
auto_shutdown): never 0, so the job shows the application ended: 4 when they completed, 3 when
one FAILED."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import ray
import yaml

import ray_enterprise
from ray_enterprise.cli import AUTO_SHUTDOWN_COMPLETED_EXIT, AUTO_SHUTDOWN_FAILED_EXIT
from tests.integration.cli.test_cli import run_cli
from tests.integration.helpers import FAULTY

FAST_HEALTH = {"period_s": 0.2, "timeout_s": 2.0}


def _spec(tmp_path: Path, significant: dict[str, Any]) -> Path:
    doc = {
        "name": "batch",
        "auto_shutdown": "any_significant",
        "services": {
            "store": {"class": FAULTY, "health": FAST_HEALTH},
            "job": {
                "class": FAULTY,
                "depends_on": ["store"],
                "significant": True,
                "health": FAST_HEALTH,
                **significant,
            },
        },
    }
    path = tmp_path / "batch.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(
    ("significant", "code", "said"),
    [
        (
            {"restart": {"policy": "transient"}, "config": {"complete_after_s": 1.0}},
            AUTO_SHUTDOWN_COMPLETED_EXIT,
            "auto_shutdown=any_significant: job completed",
        ),
        (
            {"restart": {"max_start_attempts": 1}, "config": {"fail_start": True}},
            AUTO_SHUTDOWN_FAILED_EXIT,
            "auto_shutdown=any_significant: job failed: start failed 1 time in a row",
        ),
    ],
    ids=["completed-exit-4", "failed-exit-3"],
)
def test_up_stops_the_application_when_a_significant_service_ends(
    registry: ray_enterprise.EnterpriseServiceRegistry,
    tmp_path: Path,
    significant: dict[str, Any],
    code: int,
    said: str,
) -> None:
    # The session's Ray, as `ray job submit` gives the job its cluster's address.
    address = ray.get_runtime_context().gcs_address
    spec = str(_spec(tmp_path, significant))
    result = run_cli("up", spec, "--address", address, "--refresh", "0.2", timeout=240)
    output = result.stdout + result.stderr
    assert result.returncode == code, output[-3000:]
    assert f"the application stopped itself: {said}" in output, output[-3000:]
    assert "stopping (auto_shutdown=any_significant)" in output
    assert "all services stopped" in output
    if code == AUTO_SHUTDOWN_FAILED_EXIT:
        assert "error: a significant service failed" in result.stderr
    else:  # completed: no error line, only the exit status says the application ended
        assert "error" not in result.stderr
