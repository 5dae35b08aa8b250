"""How the head fault-tolerance tests read a cluster they never join: the `ray-enterprise` CLI
and ft_driver.py, each a short-lived subprocess."""

from __future__ import annotations

import contextlib
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


def json_in(text: str) -> Any:
    """The JSON document a command printed, or None. Ray may print its own lines before or
    after it on the same stdout (a raylet's lagging-heartbeat warning, seen in CI): the
    document is the one that parses from the start of a line, in the order printed."""
    decoder = json.JSONDecoder()
    at = 0
    for line in text.splitlines(keepends=True):
        if line.startswith(("{", "[")):
            with contextlib.suppress(json.JSONDecodeError):
                return decoder.raw_decode(text, at)[0]
        at += len(line)
    return None


def status(env: dict[str, str], address: str) -> dict[str, Any]:
    """`status --json`, or {} while the cluster does not answer (it may be coming back)."""
    try:
        run = cli(env, "status", "--json", "--address", address, timeout=60)
    except subprocess.TimeoutExpired:
        return {}
    if run.returncode != 0:
        return {}
    doc = json_in(run.stdout)  # None: a loaded machine, a registry that answers nothing yet
    return dict(doc) if isinstance(doc, dict) else {}


def healthy(env: dict[str, str], address: str) -> dict[str, Any]:
    doc = status(env, address)
    return doc if doc.get("status") == "healthy" else {}


def driver(env: dict[str, str], address: str, *args: str) -> Any:
    """The JSON ft_driver.py prints (see :func:`json_in`)."""
    run = subprocess.run(
        [sys.executable, str(DRIVER), address, *args], env=env, capture_output=True, text=True,
        timeout=120, cwd=REPO,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    found = json_in(run.stdout)
    assert found is not None, f"ft_driver.py {' '.join(args)} printed no JSON: {run.stdout[-2000:]}"
    return found
