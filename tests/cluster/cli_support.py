"""How the head fault-tolerance tests read a cluster they never join: the `ray-enterprise` CLI
and ft_driver.py, each a short-lived subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DRIVER = Path(__file__).with_name("ft_driver.py")


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ray-enterprise"), *args], env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def status(env: dict[str, str], address: str) -> dict[str, Any]:
    """`status --json`, or {} while the cluster does not answer (it may be coming back)."""
    try:
        run = cli(env, "status", "--json", "--address", address, timeout=60)
    except subprocess.TimeoutExpired:
        return {}
    if run.returncode != 0:
        return {}
    try:
        return dict(json.loads(run.stdout))
    except json.JSONDecodeError:  # a loaded machine: a registry that answers with nothing yet
        return {}


def healthy(env: dict[str, str], address: str) -> dict[str, Any]:
    doc = status(env, address)
    return doc if doc.get("status") == "healthy" else {}


def driver(env: dict[str, str], address: str, *args: str) -> Any:
    """The JSON ft_driver.py prints last."""
    run = subprocess.run(
        [sys.executable, str(DRIVER), address, *args], env=env, capture_output=True, text=True,
        timeout=120, cwd=REPO,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])
