"""cluster/ against the schemas that judge it: KubeRay's CRDs (their openAPIV3Schema, kept in
tests/data/kuberay from the KubeRay repository) and Ray's own cluster-launcher ray-schema.json."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray
import yaml

CLUSTER = Path(__file__).resolve().parents[3] / "cluster"
SCHEMAS = Path(__file__).resolve().parents[2] / "data" / "kuberay"
CRD_SCHEMA = {"RayCluster": "ray.io_rayclusters.v1", "RayJob": "ray.io_rayjobs.v1"}
LAUNCHER_SCHEMA = Path(ray.__file__).parent / "autoscaler" / "ray-schema.json"


def strict(schema: Any) -> Any:
    """The schema with unknown fields refused, as `kubectl apply --validate=strict` does: the API
    server would silently drop a misspelt field (``enableInTreeAutoScaling``) instead."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_validator(kind: str) -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / f"{CRD_SCHEMA[kind]}.schema.json").read_text())["schema"]
    return jsonschema.Draft7Validator(strict(schema))


def manifests() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted((CLUSTER / "kuberay").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield path.name, doc


def problems(validator: jsonschema.Draft7Validator, doc: Any) -> list[str]:
    return [
        f"{'.'.join(map(str, e.absolute_path)) or '<top>'}: {e.message[:200]}"
        for e in validator.iter_errors(doc)
    ]


def cluster_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]
    return spec["rayClusterSpec"] if doc["kind"] == "RayJob" else spec


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml"])
def test_kuberay_manifest_validates_strictly_against_the_kuberay_crd_schema(name: str) -> None:
    [(_, doc)] = [(n, d) for n, d in manifests() if n == name]
    assert doc["apiVersion"] == "ray.io/v1"
    assert problems(crd_validator(doc["kind"]), doc) == []


def test_the_strict_check_catches_a_misspelt_field_and_a_wrong_auth_mode() -> None:
    clusters = [d for _, d in manifests() if d["kind"] == "RayCluster"]
    assert clusters
    validator = crd_validator("RayCluster")
    for doc in clusters:
        misspelt = {**doc, "spec": {**doc["spec"], "enableInTreeAutoScaling": True}}
        assert any("enableInTreeAutoScaling" in p for p in problems(validator, misspelt))
        wrong = {**doc, "spec": {**doc["spec"], "authOptions": {"mode": "password"}}}
        assert any(p.startswith("spec.authOptions.mode") for p in problems(validator, wrong))


def test_every_ray_cluster_has_token_auth_autoscaling_the_database_url_and_the_api_port() -> None:
    secrets = {d["metadata"]["name"]: d for n, d in manifests() if d["kind"] == "Secret"}
    for name, doc in manifests():
        if doc["kind"] not in CRD_SCHEMA:
            continue
        spec = cluster_spec(doc)
        auth = spec["authOptions"]
        assert auth["mode"] == "token", name
        # KubeRay reads the token from this secret's key auth_token.
        assert "auth_token" in secrets[auth["secretName"]]["stringData"], name
        if any("maxReplicas" in group for group in spec["workerGroupSpecs"]):
            assert spec["enableInTreeAutoscaling"] is True, name
        pods = [spec["headGroupSpec"]] + spec["workerGroupSpecs"]
        for group in pods:
            for container in group["template"]["spec"]["containers"]:
                env = {e["name"]: e for e in container.get("env", [])}
                # Token env vars by hand would bypass authOptions; KubeRay sets them itself.
                assert "RAY_AUTH_TOKEN" not in env and "RAY_AUTH_MODE" not in env, name
                ref = env["RAY_ENTERPRISE_DB_URL"]["valueFrom"]["secretKeyRef"]
                assert ref["key"] in secrets[ref["name"]]["stringData"], name
        [head] = spec["headGroupSpec"]["template"]["spec"]["containers"]
        assert {8000, 9464} <= {p["containerPort"] for p in head["ports"]}, name
        if "gcsFaultToleranceOptions" in spec:  # the Redis password comes from a secret too
            ref = spec["gcsFaultToleranceOptions"]["redisPassword"]["valueFrom"]["secretKeyRef"]
            assert ref["key"] in secrets[ref["name"]]["stringData"], name


def test_the_management_api_runs_on_the_head_behind_the_head_only_proxy() -> None:
    from ray_enterprise.serve.api import ManagementAPI
    from ray_enterprise.system_actors import HEAD_RESOURCE

    options = ManagementAPI.ray_actor_options
    assert options is not None
    assert HEAD_RESOURCE.items() <= options["resources"].items()


@pytest.mark.parametrize("name", ["onprem.yaml", "aws.yaml"])
def test_cluster_launcher_yaml_validates_against_rays_own_schema(name: str) -> None:
    schema = json.loads(LAUNCHER_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    assert problems(validator, yaml.safe_load((CLUSTER / name).read_text())) == []


def test_rays_schema_refuses_the_old_top_level_min_workers() -> None:
    schema = json.loads(LAUNCHER_SCHEMA.read_text())
    doc = {**yaml.safe_load((CLUSTER / "onprem.yaml").read_text()), "min_workers": 2}
    assert any("min_workers" in p for p in problems(jsonschema.Draft7Validator(schema), doc))
