"""The `ray-enterprise` command as a user runs it: real processes, real Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ray
import yaml

import ray_enterprise
from tests.integration.conftest import service_actor_names
from tests.integration.helpers import faulty

REPO = Path(__file__).resolve().parents[3]
CLI = [sys.executable, "-m", "ray_enterprise"]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, env=os.environ
    )


def test_a_malformed_spec_is_a_clear_error_and_starts_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "app.yaml"
    bad.write_text(
        "services:\n"
        "  - name: db\n    class: ray_enterprise.examples.store:KeyValueStore\n"
        "  - name: api\n    class: ray_enterprise.examples.api:ApiService\n"
        "    depends_on: [db]\n    restart: {max_restarts: -3}\n"
    )
    result = run_cli("up", str(bad), "--duration", "5")
    assert result.returncode == 2
    assert f"file {bad}" in result.stderr
    assert "service 'api'" in result.stderr
    assert "field 'restart.max_restarts'" in result.stderr
    assert "nothing was started" in result.stderr
    assert "Started a local Ray instance" not in result.stdout + result.stderr


def test_a_dependency_cycle_in_a_spec_prints_the_path(tmp_path: Path) -> None:
    bad = tmp_path / "cycle.yaml"
    klass = "ray_enterprise.examples.faulty:FaultyService"
    bad.write_text(
        "services:\n"
        f"  - {{name: a, class: '{klass}', depends_on: [c]}}\n"
        f"  - {{name: b, class: '{klass}', depends_on: [a]}}\n"
        f"  - {{name: c, class: '{klass}', depends_on: [b]}}\n"
    )
    result = run_cli("up", str(bad))
    assert result.returncode == 2
    assert "a -> c -> b -> a" in result.stderr
    assert "nothing was started" in result.stderr


def test_status_json_and_down_from_another_process(
    registry: ray_enterprise.EnterpriseServiceRegistry,
) -> None:
    registry.register_app_sync([faulty("db"), faulty("api", "db")])
    registry.start_all_sync(timeout_s=60)
    address = ray.get_runtime_context().gcs_address
    result = run_cli("status", "--json", "--address", address)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["status"] == "healthy"
    # The system health score (services, alerts, anomalies) from the observability actor.
    assert doc["health"]["status"] in ("healthy", "degraded", "critical")
    assert 0.0 <= doc["health"]["score"] <= 100.0 and isinstance(doc["health"]["reasons"], list)
    by_name = {s["name"]: s for s in doc["services"]}
    assert set(by_name) == {"db", "api"}
    for svc in by_name.values():
        assert {"state", "healthy", "restarts", "node_id", "last_error"} <= set(svc)
        assert svc["node_id"] == ray.get_runtime_context().get_node_id()
    table = run_cli("status", "--address", address)
    assert "api" in table.stdout and "healthy" in table.stdout
    as_yaml = yaml.safe_load(run_cli("status", "--format", "yaml", "--address", address).stdout)
    assert as_yaml["status"] == "healthy" and len(as_yaml["services"]) == 2
    listed = json.loads(run_cli("services", "--format", "json", "--address", address).stdout)
    assert {(s["name"], tuple(s["depends_on"])) for s in listed} == {("db", ()), ("api", ("db",))}
    services_table = run_cli("services", "--address", address).stdout.splitlines()
    assert services_table[0].split()[:3] == ["SERVICE", "STATE", "REPLICAS"]
    assert "system health: " in table.stdout and "/100 (" in table.stdout
    down = run_cli("down", "--address", address)
    assert down.returncode == 0, down.stderr
    deadline = time.monotonic() + 10
    while service_actor_names() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert service_actor_names() == []
    gone = run_cli("status", "--address", address)
    assert gone.returncode == 1
    assert "no ray_enterprise registry runs" in gone.stderr


def test_an_unexpected_failure_is_one_line_naming_it_and_the_debug_switch_shows_more() -> None:
    # /proc takes no new folder, not even from root: opening a database there really fails.
    where = "sqlite:////proc/no-such-dir/state.db"
    failed = run_cli("keys", "list", "--db", where)
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: FileNotFoundError: ")
    assert "/proc/no-such-dir" in failed.stderr and "RAY_ENTERPRISE_DEBUG=1" in failed.stderr
    assert "Traceback" not in failed.stderr and len(failed.stderr.splitlines()) == 1
    debug = subprocess.run(
        [*CLI, "keys", "list", "--db", where],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "RAY_ENTERPRISE_DEBUG": "1"},
    )
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_up_runs_the_demo_and_stops_in_order_on_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*CLI, "up", "cluster/demo.yaml", "--num-cpus", "2", "--refresh", "0.5"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    address = None
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("ray address:"):
                address = line.split()[2]
            if "status: healthy" in line:
                break
        assert any("status: healthy" in line for line in lines), "".join(lines[-40:])
        assert address is not None
        status = run_cli("status", "--json", "--address", address)
        doc = json.loads(status.stdout)
        assert doc["status"] == "healthy"
        assert len(doc["services"]) == 6
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = "".join(lines) + rest
    assert proc.returncode == 0, output[-3000:]
    # Not a terminal: a line per stage change, never a screen redrawn with escape codes.
    assert "\x1b" not in output
    assert any("] database: " in line and "healthy" in line for line in lines), output[:3000]
    assert "stopping (SIGINT)" in output
    assert "all services stopped" in output


def test_shell_completion_as_the_readme_sets_it_up_completes_commands_and_formats() -> None:
    script = Path(sys.executable).with_name("ray-enterprise")  # the installed console script

    def complete(var: str, words: str = "", cword: int = 0) -> str:
        env = {**os.environ, "_RAY_ENTERPRISE_COMPLETE": var}
        env.update(COMP_WORDS=words, COMP_CWORD=str(cword))
        done = subprocess.run([str(script)], capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "complete -o nosort -F _ray_enterprise_completion ray-enterprise" in complete(
        "bash_source"
    )
    assert "plain,services" in complete("bash_complete", "ray-enterprise ser", 1).splitlines()
    formats = complete("bash_complete", "ray-enterprise status --format ", 3).splitlines()
    assert formats == ["plain,table", "plain,json", "plain,yaml"]
