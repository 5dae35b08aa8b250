from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from ray_enterprise.config.history import ConfigHistory
from ray_enterprise.config.merge import diff_documents
from ray_enterprise.config.sealing import KEY_ENV, KEY_FILE, DocumentSealer, SealError
from ray_enterprise.storage import make_engine

DOC = {"services": {"billing": {"url": "redis://:p@ss@r:6379/0", "password": SecretStr("pw")}}}


def test_a_version_sealed_under_another_key_is_refused_naming_the_key(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'h.db'}")
    ConfigHistory(engine, sealer=DocumentSealer(Fernet.generate_key())).record(
        DOC, diff_documents({}, DOC), "test"
    )
    assert b"p@ss" not in (tmp_path / "h.db").read_bytes()
    other = ConfigHistory(engine, sealer=DocumentSealer(Fernet.generate_key()))
    with pytest.raises(SealError, match=KEY_ENV):
        other.live_document(1)


def test_the_key_file_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    env = {"RAY_ENTERPRISE_HOME": str(tmp_path)}
    first = DocumentSealer.from_env(env).seal(DOC)
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    opened = DocumentSealer.from_env(env).open(first, 1)
    assert opened["services"]["billing"] == {"url": "redis://:p@ss@r:6379/0", "password": "pw"}


def test_a_malformed_key_is_refused_naming_the_variable_not_the_value() -> None:
    with pytest.raises(SealError, match=KEY_ENV) as info:
        DocumentSealer.from_env({KEY_ENV: "not-a-key-0xdeadbeef"})
    assert "0xdeadbeef" not in str(info.value)
