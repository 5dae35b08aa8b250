from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ray_enterprise.errors import DependencyCycleError, SpecError, UnknownDependencyError
from ray_enterprise.spec import load_app_spec, parse_app_spec

REPO = Path(__file__).resolve().parents[2]


def test_the_demo_spec_loads_with_six_services_and_importable_classes() -> None:
    app = load_app_spec(REPO / "cluster" / "demo.yaml")
    assert app.name == "demo"
    assert len(app.services) >= 6
    for service in app.services:
        service.load_class()


def test_a_wrong_field_names_file_service_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "services:\n"
        "  - name: db\n    class: a.b:C\n"
        "  - name: api\n    class: a.b:C\n    health: {period_s: -1}\n"
    )
    with pytest.raises(SpecError) as info:
        load_app_spec(path)
    err = info.value
    assert err.file == str(path)
    assert err.service == "api"
    assert err.field == "health.period_s"
    assert "greater than 0" in str(err)


def test_an_unknown_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("services:\n  - name: db\n    class: a.b:C\n    retsart: {}\n")
    with pytest.raises(SpecError) as info:
        load_app_spec(path)
    assert info.value.service == "db"
    assert info.value.field == "retsart"


def test_bad_yaml_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("services:\n  - name: db\n    class: [unclosed\n")
    with pytest.raises(SpecError, match=r"line \d+"):
        load_app_spec(path)


def test_a_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read"):
        load_app_spec(tmp_path / "nope.yaml")


def test_services_may_be_a_mapping_by_name() -> None:
    app = parse_app_spec({"services": {"db": {"class": "a.b:C"}, "api": {"class": "a.b:C"}}})
    assert [s.name for s in app.services] == ["db", "api"]


def test_duplicate_and_self_dependencies_are_refused() -> None:
    with pytest.raises(SpecError, match="defined twice"):
        parse_app_spec({"services": [{"name": "a", "class": "m:C"}] * 2})
    with pytest.raises(SpecError, match="itself"):
        parse_app_spec({"services": [{"name": "a", "class": "m:C", "depends_on": ["a"]}]})


def test_bad_class_path_and_name_are_refused() -> None:
    with pytest.raises(SpecError) as info:
        parse_app_spec({"services": [{"name": "a", "class": "no_colon"}]})
    assert info.value.field == "class"
    with pytest.raises(SpecError) as info:
        parse_app_spec({"services": [{"name": "Bad Name", "class": "m:C"}]})
    assert info.value.field == "name"


def test_an_unimportable_class_is_a_spec_error() -> None:
    app = parse_app_spec({"services": [{"name": "a", "class": "nowhere.mod:Cls"}]})
    with pytest.raises(SpecError, match="cannot import"):
        app.services[0].load_class()


def test_a_cycle_in_a_spec_file_names_the_file_and_the_path(tmp_path: Path) -> None:
    path = tmp_path / "cycle.yaml"
    path.write_text(
        "services:\n"
        "  - {name: a, class: 'm:C', depends_on: [b]}\n"
        "  - {name: b, class: 'm:C', depends_on: [a]}\n"
    )
    with pytest.raises(DependencyCycleError) as info:
        load_app_spec(path)
    assert info.value.file == str(path)
    assert info.value.path == ("a", "b", "a")
    assert str(info.value).startswith(f"file {path}, service 'a'")


def test_spec_errors_survive_pickling_unchanged() -> None:
    import pickle

    err = UnknownDependencyError("api", "db", ["api"])
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err)
    assert again.dependency == "db"


def test_replicas_routing_and_autoscale_are_accepted() -> None:
    app = parse_app_spec(
        {
            "services": {
                "api": {
                    "class": "pkg.mod:Api",
                    "replicas": 2,
                    "routing": "least_loaded",
                    "autoscale": {"min_replicas": 1, "max_replicas": 4},
                }
            }
        }
    )
    [api] = app.services
    assert (api.replicas, api.routing.value) == (2, "least_loaded")
    assert api.autoscale is not None and api.autoscale.max_replicas == 4


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"replicas": 0}, "replicas", "greater than or equal to 1"),
        ({"routing": "random"}, "routing", "round_robin"),
        ({"replicas": 5, "autoscale": {"max_replicas": 4}}, "services", "outside autoscale"),
        ({"autoscale": {"min_replicas": 3, "max_replicas": 2}}, "autoscale", "max_replicas"),
    ],
)
def test_bad_replica_settings_name_the_field(body: dict, field: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_app_spec({"services": {"api": {"class": "pkg.mod:Api", **body}}})
    assert info.value.field == field
    assert message in str(info.value)


# -- hostile and broken spec files --------------------------------------------------------------

GOOD_CLASS = "ray_enterprise.examples.faulty:FaultyService"
ALIAS_BOMB = (  # 9 levels of 9 aliases: ~387 million nodes once expanded, 600 bytes written
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + f"services:\n  - {{name: api, class: '{GOOD_CLASS}', config: {{x: *i}}}}\n"
)
HOSTILE_SPECS = {
    "alias-bomb": (ALIAS_BOMB.encode(), "expands to more than"),
    "not-utf8": (
        f"services:\n  - name: api\n    class: '{GOOD_CLASS}'\n  # caf\xe9\n".encode("latin-1"),
        "not UTF-8 text",
    ),
    "deep": (
        f"services:\n  - name: api\n    class: '{GOOD_CLASS}'\n    config: ".encode()
        + b"[" * 5000
        + b"]" * 5000
        + b"\n",
        "nested deeper than",
    ),
    "duplicate-key": (
        f"services:\n  - name: api\n    class: '{GOOD_CLASS}'\n    replicas: 1\n".encode()
        + b"    replicas: 3\n",
        "key 'replicas' is given twice",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_SPECS))
def test_a_hostile_spec_file_is_refused_with_file_and_line(tmp_path: Path, case: str) -> None:
    data, reason = HOSTILE_SPECS[case]
    path = tmp_path / f"{case}.yaml"
    path.write_bytes(data)
    with pytest.raises(SpecError) as info:
        load_app_spec(path)
    assert info.value.file == str(path)
    assert reason in str(info.value) and "line" in str(info.value)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"health": {"timeout_s": float("inf")}}, "health.timeout_s"),
        ({"restart": {"window_s": float("nan")}}, "restart.window_s"),
        ({"shutdown_timeout_s": 1e9}, "shutdown_timeout_s"),
        ({"actor": {"max_concurrency": 10**9}}, "actor.max_concurrency"),
    ],
)
def test_infinite_and_absurd_limits_are_refused(body: dict, field: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_app_spec({"services": {"api": {"class": GOOD_CLASS, **body}}})
    assert info.value.field == field


def test_the_class_must_be_a_service_subclass() -> None:
    app = parse_app_spec({"services": [{"name": "a", "class": "subprocess:Popen"}]})
    with pytest.raises(SpecError, match=r"not a subclass of ray_enterprise\.Service") as info:
        app.services[0].load_class()
    assert info.value.field == "class"


def _up(spec: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ray_enterprise", "up", str(spec)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "RAY_ADDRESS": "127.0.0.1:1"},  # nothing to join: nothing may start
    )


def test_up_refuses_bad_specs_with_exit_2_a_located_error_and_no_traceback(
    tmp_path: Path,
) -> None:
    # Each case is a process importing Ray (~2 s of CPU): one per kind of refusal, the
    # loader's and the class check's; the others share their path to the same message.
    specs = {"alias-bomb": tmp_path / "bomb.yaml", "popen": tmp_path / "popen.yaml"}
    specs["alias-bomb"].write_bytes(HOSTILE_SPECS["alias-bomb"][0])
    specs["popen"].write_text("services:\n  - {name: api, class: 'subprocess:Popen'}\n")
    with ThreadPoolExecutor(len(specs)) as pool:
        results = dict(zip(specs, pool.map(_up, specs.values()), strict=True))
    for case, result in results.items():
        assert result.returncode == 2, (case, result.stderr)
        assert result.stderr.startswith(f"error: file {specs[case]}"), (case, result.stderr)
        assert "Traceback" not in result.stderr and "nothing was started" in result.stderr
    assert "expands to more than" in results["alias-bomb"].stderr
    assert "service 'api', field 'class'" in results["popen"].stderr


def test_an_upgrade_that_could_neither_add_nor_remove_a_replica_is_refused() -> None:
    body = {"name": "api", "class": "m:C", "upgrade": {"max_surge": 0, "max_unavailable": 0}}
    with pytest.raises(SpecError, match="max_surge and max_unavailable cannot both be 0") as info:
        parse_app_spec({"services": [body]})
    assert (info.value.service, info.value.field) == ("api", "upgrade")


def test_probe_graceful_stop_upgrade_and_placement_fields_are_accepted() -> None:
    body = {
        "name": "api",
        "class": "m:C",
        "health": {"success_threshold": 2},
        "graceful_shutdown_timeout_s": 5,
        "graceful_shutdown_wait_loop_s": 0.5,
        "upgrade": {"min_ready_s": 10, "progress_deadline_s": 120, "max_surge": 0,
                    "max_unavailable": 1},
        "actor": {"max_replicas_per_node": 1},
    }  # fmt: skip
    [spec] = parse_app_spec({"services": [body]}).services
    assert spec.health.success_threshold == 2
    assert spec.upgrade.max_unavailable == 1 and spec.actor.max_replicas_per_node == 1
    for field, bad in [("health", {"success_threshold": 0}), ("upgrade", {"max_surge": -1}),
                       ("actor", {"max_replicas_per_node": 0})]:  # fmt: skip
        with pytest.raises(SpecError) as info:
            parse_app_spec({"services": [{**body, field: bad}]})
        assert info.value.field.startswith(field)
