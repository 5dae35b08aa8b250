from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import hvac
import pytest
from config_backends import BAO, BaoServer, Watching, values_at

from ray_enterprise.config.settings import ConfigSettings
from ray_enterprise.config.sources import VaultConfigSource
from tests.support import free_port, wait_for

PREFIX = "ray_enterprise"


def put(server: BaoServer, rel: str, data: dict) -> None:
    server.client().secrets.kv.v2.create_or_update_secret(
        path=f"{PREFIX}/{rel}", secret=data, mount_point="secret"
    )


def test_secrets_under_the_prefix_become_nested_sections(bao: BaoServer) -> None:
    put(bao, "security", {"jwt_secret": "j-1", "audit_retention_days": 45})
    put(bao, "services/search_api", {"token": "t-1"})
    bao.client().secrets.kv.v2.create_or_update_secret(
        path="elsewhere/x", secret={"a": 1}, mount_point="secret"
    )
    source = VaultConfigSource(bao.url, token="root", path_prefix=PREFIX)
    values = asyncio.run(source.load())
    assert values == {
        "security": {"jwt_secret": "j-1", "audit_retention_days": 45},
        "services": {"search_api": {"token": "t-1"}},
    }
    assert source.health().ok
    assert "root" not in repr(source) and "j-1" not in repr(source)


def test_an_empty_prefix_is_an_empty_healthy_layer(bao: BaoServer) -> None:
    source = VaultConfigSource(bao.url, token="root", path_prefix="nothing/here")
    assert asyncio.run(source.load()) == {}
    assert source.health().ok


def test_new_versions_and_deletions_are_seen_through_metadata(bao: BaoServer) -> None:
    put(bao, "search", {"index_name": "v1"})
    source = VaultConfigSource(bao.url, token="root", path_prefix=PREFIX, poll_interval=0.1)

    async def run() -> None:
        await source.load()
        async with Watching(source) as w:
            put(bao, "search", {"index_name": "v2"})
            _, waited = await w.until(lambda u: values_at(u, "search.index_name") == "v2")
            assert waited < 1.0
            put(bao, "cache", {"enabled": False})
            await w.until(lambda u: values_at(u, "cache.enabled") is False)
            bao.client().secrets.kv.v2.delete_latest_version_of_secret(
                path=f"{PREFIX}/search", mount_point="secret"
            )
            update, _ = await w.until(lambda u: "search" not in u.values)
            assert update.values == {"cache": {"enabled": False}}

    asyncio.run(run())


def test_approle_tokens_are_renewed_then_replaced_past_max_ttl(bao: BaoServer) -> None:
    root = bao.client()
    root.sys.enable_auth_method("approle")
    root.sys.create_or_update_policy(
        "re-read", 'path "secret/*" { capabilities = ["read", "list"] }'
    )
    root.auth.approle.create_or_update_approle(
        "re", token_policies=["re-read"], token_ttl="2s", token_max_ttl="3s"
    )
    role_id = root.auth.approle.read_role_id("re")["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id("re")["data"]["secret_id"]
    put(bao, "search", {"index_name": "v1"})
    source = VaultConfigSource(
        bao.url, role_id=role_id, secret_id=secret_id, path_prefix=PREFIX, poll_interval=0.2
    )

    async def run() -> None:
        await source.load()
        async with Watching(source) as w:
            deadline = time.monotonic() + 3.5  # beyond the 3 s max TTL of the first token
            while time.monotonic() < deadline:
                assert source.health().ok, source.health()
                await asyncio.sleep(0.05)
            put(bao, "search", {"index_name": "after-max-ttl"})
            await w.until(lambda u: values_at(u, "search.index_name") == "after-max-ttl")
        assert source.renew_count >= 1
        assert source.login_count >= 2
        assert not any(not u.health.ok for u in w.updates)

    asyncio.run(run())


def test_server_stopped_mid_run_keeps_values_then_recovers_on_restart() -> None:
    server = BaoServer(free_port(pair=True)).start()
    try:
        put(server, "search", {"index_name": "before"})
        source = VaultConfigSource(
            server.url, token="root", path_prefix=PREFIX, poll_interval=0.1, timeout=1.0
        )

        async def run() -> None:
            good = await source.load()
            async with Watching(source) as w:
                server.stop()
                update, _ = await w.until(lambda u: not u.health.ok)
                assert update.values == good and source.values == good
                assert update.health.last_error
                server.start()  # a fresh dev server on the same port: data is gone
                put(server, "search", {"index_name": "after"})
                await w.until(
                    lambda u: u.health.ok and values_at(u, "search.index_name") == "after",
                    timeout=5.0,
                )

        asyncio.run(run())
    finally:
        server.stop()


def test_unreachable_at_start_reports_and_returns_empty() -> None:
    source = VaultConfigSource(f"http://127.0.0.1:{free_port()}", token="root", timeout=0.5)
    assert asyncio.run(source.load()) == {}
    health = source.health()
    assert not health.ok and health.last_error and health.last_success_at is None


def test_needs_some_credentials() -> None:
    with pytest.raises(ValueError, match="a token, an AppRole role_id/secret_id or a"):
        VaultConfigSource("http://127.0.0.1:1")
    with pytest.raises(ValueError, match="AppRole or Kubernetes auth, not both"):
        VaultConfigSource("http://127.0.0.1:1", role_id="r", kubernetes_role="ray")


def test_an_expired_static_token_is_reported_and_values_kept(bao: BaoServer) -> None:
    put(bao, "search", {"index_name": "kept"})
    token = bao.client().auth.token.create(ttl="1s", renewable=False)["auth"]["client_token"]
    source = VaultConfigSource(bao.url, token=token, path_prefix=PREFIX, poll_interval=0.05)

    async def run() -> None:
        good = await source.load()
        assert values_at_dict(good) == "kept"
        async with Watching(source) as w:
            update, _ = await w.until(lambda u: not u.health.ok, timeout=3.0)
            assert update.values == good
            assert token not in (update.health.last_error or "")

    asyncio.run(run())


def values_at_dict(values: dict) -> object:
    return values.get("search", {}).get("index_name")


def test_vaults_standard_variables_reach_a_tls_server(tmp_path: Path) -> None:
    """``VAULT_ADDR``, ``VAULT_TOKEN`` and ``VAULT_CACERT``, as the bao CLI prints them for
    ``-dev-tls``: the source trusts that CA, and without it the certificate is refused."""
    port = free_port(pair=True)
    listen = [f"-dev-listen-address=127.0.0.1:{port}", "-dev-root-token-id=root"]
    proc = subprocess.Popen(
        [BAO, "server", "-dev", "-dev-tls", f"-dev-tls-cert-dir={tmp_path}", *listen],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url, ca = f"https://127.0.0.1:{port}", str(tmp_path / "vault-ca.pem")
        client = hvac.Client(url=url, token="root", verify=ca, timeout=3)

        def ready() -> bool:
            try:
                return bool(client.sys.is_initialized() and not client.sys.is_sealed())
            except Exception:
                return False

        wait_for(ready, timeout=15.0, what="bao -dev-tls")
        client.secrets.kv.v2.create_or_update_secret(
            path=f"{PREFIX}/security", secret={"jwt_secret": "j-tls"}, mount_point="secret"
        )
        env = {"VAULT_ADDR": url, "VAULT_TOKEN": "root", "VAULT_CACERT": ca}
        [vault] = [s for s in ConfigSettings.from_env(env).build_sources() if s.layer == "vault"]
        assert asyncio.run(vault.load()) == {"security": {"jwt_secret": "j-tls"}}
        del env["VAULT_CACERT"]
        [untrusting] = [
            s for s in ConfigSettings.from_env(env).build_sources() if s.layer == "vault"
        ]
        asyncio.run(untrusting.load())
        assert not untrusting.health().ok
        assert "CERTIFICATE_VERIFY_FAILED" in (untrusting.health().last_error or "")
    finally:
        proc.terminate()
        proc.wait(10)
