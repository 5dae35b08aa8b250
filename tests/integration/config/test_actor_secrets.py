"""A secret planted in Vault, the database and a file appears nowhere: not in CLI output,
history, status, events, rejections, error messages, nor the Ray session's log files."""

from __future__ import annotations

import json
from pathlib import Path

import ray
from actor_support import config_actor, eventually
from click.testing import CliRunner
from config_backends import BaoServer

from ray_enterprise.config.cli import config as config_cli
from ray_enterprise.config.settings import ConfigSettings, VaultSettings
from ray_enterprise.config.sources import DatabaseConfigSource

PLANTED = "planted-actor-secret-7e1c90"


def test_a_planted_secret_never_appears_in_output_history_status_or_logs(
    ray_session: None, tmp_path: Path, bao: BaoServer
) -> None:
    bao.client().secrets.kv.v2.create_or_update_secret(
        path="ray_enterprise/security",
        secret={"jwt_secret": PLANTED},
        mount_point="secret",
    )
    database = DatabaseConfigSource(f"sqlite:///{tmp_path / 's.db'}")
    database.set_sync("services.billing.password", PLANTED)
    app = tmp_path / "app.yaml"
    app.write_text(f"cache:\n  tiers:\n    l1:\n      password: {PLANTED}\n")
    history_db = tmp_path / "history.db"
    settings = ConfigSettings(
        files=[str(app)],
        database_url=f"sqlite:///{tmp_path / 's.db'}",
        history_url=f"sqlite:///{history_db}",
        vault=VaultSettings(url=bao.url, token="root", poll_interval=0.1),
    )
    seen: list[str] = []
    runner = CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(config_cli, list(args), catch_exceptions=False)
        seen.append(result.output)
        return result.output

    with config_actor(settings) as config:
        # The secret does reach subscribers, wrapped.
        security = ray.get(config.get.remote("security"))
        assert security.jwt_secret.get_secret_value() == PLANTED
        assert ray.get(config.get.remote("services.billing"))["password"].get_secret_value() == (
            PLANTED
        )
        cli("set", "security.api_key_header", "X-Key")
        cli("set", "services.billing.password", PLANTED + "-rotated")  # a secret on the line
        cli("set", "security.audit_retention_days", PLANTED)  # refused, next to the secret
        app.write_text(f"search: {{api_key: {PLANTED}\n")  # unparsable, secret inside
        eventually(
            lambda: (
                not next(s for s in ray.get(config.sources.remote()) if s["layer"] == "files")["ok"]
            ),
            what="the broken file reported",
        )
        for args in [
            ("show",),
            ("show", "--json"),
            ("show", "security"),
            ("history",),
            ("history", "--json"),
            ("diff", "1", "3"),
            ("compliance", "--json", "--environment", "production"),
            ("sources",),
            ("rollback", "1"),
        ]:
            cli(*args)
        assert "security.audit_retention_days" in seen[2]  # the refusal names the field
        version = ray.get(config.current_version.remote())
        for method, args in [
            ("history", (None, True)),
            ("show", ()),
            ("sources", ()),
            ("events", ()),
            ("rejections", ()),
            ("subscriptions", ()),
            ("compliance", ("production",)),
            ("diff", (1, version)),
        ]:
            seen.append(json.dumps(ray.get(getattr(config, method).remote(*args)), default=str))
        seen.append(repr(ray.get(config.get_config.remote())))
        seen.append(str(ray.get(config.get_config.remote()).model_dump()))
        logs_dir = Path(ray._private.worker._global_node.get_logs_dir_path())

    for text in seen:
        assert PLANTED not in text, text[:500]
    for stored in tmp_path.glob("history.db*"):
        assert PLANTED.encode() not in stored.read_bytes(), stored
    log_files = [p for p in logs_dir.rglob("*") if p.is_file()]
    # The scan reads where the ConfigActor's own log lines go (its refusal is logged).
    assert any(b"security.audit_retention_days" in p.read_bytes() for p in log_files)
    leaked = [str(p) for p in log_files if PLANTED.encode() in p.read_bytes()]
    assert leaked == []
