"""Vault's Kubernetes auth method against the real OpenBao.

OpenBao's kubernetes auth validates a service-account JWT by asking a Kubernetes API server
(``kubernetes_host``) for a TokenReview. There is no Kubernetes here, so ``KubernetesApi`` is a
real HTTP server on 127.0.0.1 answering that one endpoint as the API server does; OpenBao
itself, its role bindings, token TTLs and renewal are all real. Configuring OpenBao with
``pem_keys`` instead would not remove the API server: with them set (tried on OpenBao 2.7)
it verifies the signature locally, still posts the TokenReview, and refuses the login while
the API server is down.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from config_backends import BaoServer, KubernetesApi, Watching, values_at

from ray_enterprise.config.settings import ConfigSettings
from ray_enterprise.config.sources import VaultConfigSource

PREFIX = "ray_enterprise"


def put(server: BaoServer, rel: str, data: dict) -> None:
    server.client().secrets.kv.v2.create_or_update_secret(
        path=f"{PREFIX}/{rel}", secret=data, mount_point="secret"
    )


def enable_kubernetes_auth(
    bao: BaoServer, api: KubernetesApi, *, ttl: str = "1h", max_ttl: str = "2h"
) -> None:
    """The kubernetes auth method at ``auth/kubernetes``, role ``ray`` bound to the service
    account ``ray-head`` in namespace ``ray``, reading ``secret/`` only."""
    root = bao.client()
    root.sys.enable_auth_method("kubernetes")
    root.auth.kubernetes.configure(
        api.url,
        kubernetes_ca_cert=api.ca_pem(),
        token_reviewer_jwt=api.issue("kube-system", "token-reviewer"),
        disable_local_ca_jwt=True,
    )
    root.sys.create_or_update_policy(
        "re-read", 'path "secret/*" { capabilities = ["read", "list"] }'
    )
    root.auth.kubernetes.create_role(
        "ray", ["ray-head"], ["ray"], ttl=ttl, max_ttl=max_ttl, policies=["re-read"]
    )


def service_account_token(tmp_path: Path, jwt: str) -> Path:
    path = tmp_path / "serviceaccount" / "token"
    path.parent.mkdir(exist_ok=True)
    path.write_text(jwt)
    return path


def test_the_settings_log_in_with_the_pods_service_account_and_read_secrets(
    bao: BaoServer, kubernetes_api: KubernetesApi, tmp_path: Path
) -> None:
    enable_kubernetes_auth(bao, kubernetes_api)
    jwt = kubernetes_api.issue("ray", "ray-head")
    token_file = service_account_token(tmp_path, jwt)
    put(bao, "security", {"jwt_secret": "j-k8s"})
    env = {
        "RAY_ENTERPRISE_VAULT_ADDR": bao.url,
        "RAY_ENTERPRISE_VAULT_KUBERNETES_ROLE": "ray",
        "RAY_ENTERPRISE_VAULT_KUBERNETES_JWT_PATH": str(token_file),
        "VAULT_TOKEN": "root",  # Vault's own token is not taken over the role
    }
    [vault] = [s for s in ConfigSettings.from_env(env).build_sources() if s.layer == "vault"]
    assert isinstance(vault, VaultConfigSource)
    assert asyncio.run(vault.load()) == {"security": {"jwt_secret": "j-k8s"}}
    assert vault.health().ok and vault.login_count == 1
    assert kubernetes_api.reviewed[-1] == jwt  # OpenBao asked the API server about our JWT
    assert jwt not in repr(vault)


def test_tokens_are_renewed_then_a_new_login_reads_the_rotated_token_file(
    bao: BaoServer, kubernetes_api: KubernetesApi, tmp_path: Path
) -> None:
    enable_kubernetes_auth(bao, kubernetes_api, ttl="2s", max_ttl="3s")
    first = kubernetes_api.issue("ray", "ray-head")
    token_file = service_account_token(tmp_path, first)
    put(bao, "search", {"index_name": "v1"})
    source = VaultConfigSource(
        bao.url,
        kubernetes_role="ray",
        kubernetes_jwt_path=str(token_file),
        path_prefix=PREFIX,
        poll_interval=0.2,
    )

    async def run() -> None:
        await source.load()
        # The kubelet rotates the projected token: the next login must present the new one.
        rotated = kubernetes_api.issue("ray", "ray-head")
        token_file.write_text(rotated)
        async with Watching(source) as w:
            deadline = time.monotonic() + 3.5  # beyond the 3 s max TTL of the first token
            while time.monotonic() < deadline:
                assert source.health().ok, source.health()
                await asyncio.sleep(0.05)
            put(bao, "search", {"index_name": "after-max-ttl"})
            await w.until(lambda u: values_at(u, "search.index_name") == "after-max-ttl")
        assert source.renew_count >= 1
        assert source.login_count >= 2
        assert kubernetes_api.reviewed[-1] == rotated
        assert not any(not u.health.ok for u in w.updates)

    asyncio.run(run())


@pytest.mark.parametrize("case", ["wrong role", "service account not bound", "not issued"])
def test_a_refused_login_names_the_role_setting_and_never_the_token(
    case: str, bao: BaoServer, kubernetes_api: KubernetesApi, tmp_path: Path
) -> None:
    enable_kubernetes_auth(bao, kubernetes_api)
    put(bao, "search", {"index_name": "secret-value"})
    role, jwt = "ray", kubernetes_api.issue("ray", "ray-head")
    if case == "wrong role":
        role = "no-such-role"
    elif case == "service account not bound":
        jwt = kubernetes_api.issue("default", "intruder")
    else:  # well formed and signed by the same key, but the API server never issued it
        jwt = kubernetes_api.sign({"sub": "system:serviceaccount:ray:ray-head", "iss": "x"})
    source = VaultConfigSource(
        bao.url,
        kubernetes_role=role,
        kubernetes_jwt_path=str(service_account_token(tmp_path, jwt)),
        path_prefix=PREFIX,
    )
    assert asyncio.run(source.load()) == {}
    health = source.health()
    assert not health.ok and health.last_error
    assert "RAY_ENTERPRISE_VAULT_KUBERNETES_ROLE" in health.last_error
    assert repr(role) in health.last_error and "auth/kubernetes" in health.last_error
    assert jwt not in health.last_error and jwt[-20:] not in health.last_error


def test_a_missing_token_file_is_named_by_its_path(
    bao: BaoServer, kubernetes_api: KubernetesApi, tmp_path: Path
) -> None:
    enable_kubernetes_auth(bao, kubernetes_api)
    missing = tmp_path / "no" / "token"
    source = VaultConfigSource(
        bao.url, kubernetes_role="ray", kubernetes_jwt_path=str(missing), path_prefix=PREFIX
    )
    assert asyncio.run(source.load()) == {}
    error = source.health().last_error or ""
    assert str(missing) in error and "RAY_ENTERPRISE_VAULT_KUBERNETES_JWT_PATH" in error
    assert "No such file" in error
    assert kubernetes_api.reviewed == []  # nothing was sent to Vault
