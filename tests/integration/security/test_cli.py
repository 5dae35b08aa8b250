"""`keys` and `audit` commands on a real SQLite file, tampered with by sqlite3 directly."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ray_enterprise.security.cli import audit, keys

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def db(tmp_path: Path) -> tuple[str, Path]:
    path = tmp_path / "state.db"
    return f"sqlite:///{path}", path


def run(group: object, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(group, list(args), catch_exceptions=False)  # type: ignore[arg-type]
    return result.exit_code, result.stdout, result.stderr


def test_keys_lifecycle_prints_each_secret_once_and_never_lists_it(db: tuple[str, Path]) -> None:
    url, path = db
    code, out, err = run(
        keys,
        "create",
        "--scope",
        "status:read",
        "--scope",
        "config:read",
        "--name",
        "ci",
        "--expires",
        "30d",
        "--db",
        url,
    )
    assert code == 0, err
    secret = out.strip()
    assert secret.startswith("rek_") and "\n" not in secret
    assert "shown only this once" in err
    key_id = secret.split("_")[1]

    code, listed, _ = run(keys, "list", "--db", url)
    assert code == 0 and key_id in listed and "active" in listed and "config:read" in listed
    code, rotated_out, _ = run(keys, "rotate", key_id, "--overlap", "1h", "--db", url)
    assert code == 0
    new_secret = rotated_out.strip()
    assert new_secret.startswith("rek_") and new_secret != secret
    code, revoked, _ = run(keys, "revoke", new_secret.split("_")[1], "--db", url)
    assert code == 0 and "revoked" in revoked

    code, as_json, _ = run(keys, "list", "--json", "--db", url)
    statuses = {k["id"]: k["status"] for k in json.loads(as_json)}
    assert statuses == {key_id: "rotating", new_secret.split("_")[1]: "revoked"}
    code, as_yaml, _ = run(keys, "list", "--format", "yaml", "--db", url)
    assert code == 0 and yaml.safe_load(as_yaml) == json.loads(as_json)
    code, records, _ = run(audit, "list", "--json", "--db", url)
    assert [r["action"] for r in json.loads(records)] == ["key.create", "key.rotate", "key.revoke"]

    everything = listed + as_json + records + path.read_bytes().decode("latin-1")
    for whole in (secret, new_secret):
        assert whole.split("_", 2)[2] not in everything  # not in output, nor in the file


def test_unknown_key_and_bad_scope_are_clear_errors(db: tuple[str, Path]) -> None:
    url, _ = db
    code, _, err = run(keys, "revoke", "0123456789ab", "--db", url)
    assert code == 1 and "no API key with id '0123456789ab'" in err
    result = CliRunner().invoke(keys, ["create", "--scope", "root", "--db", url])
    assert result.exit_code == 2 and "status:read" in result.output


def test_audit_verify_finds_a_record_edited_with_sqlite3(db: tuple[str, Path]) -> None:
    url, path = db
    for _ in range(3):
        assert run(keys, "create", "--scope", "alerts:ack", "--db", url)[0] == 0
    code, out, _ = run(audit, "verify", "--db", url)
    assert code == 0 and "3 records verified" in out

    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE security_audit SET actor = 'someone-else' WHERE seq = 2")
    code, out, err = run(audit, "verify", "--db", url)
    assert code == 1
    assert "EDITED: record 2 was edited" in out and "DAMAGED" in err


def test_audit_verify_json_names_a_deleted_record(db: tuple[str, Path]) -> None:
    url, path = db
    for _ in range(3):
        assert run(keys, "create", "--scope", "alerts:ack", "--db", url)[0] == 0
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM security_audit WHERE seq = 2")
    code, out, _ = run(audit, "verify", "--json", "--db", url)
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False
    assert [(p["seq"], p["kind"]) for p in report["problems"]] == [(2, "deleted")]


def test_an_unreachable_database_is_one_line_without_the_password() -> None:
    url = "postgresql://admin:hunter2@127.0.0.1:1/nowhere"
    code, _, err = run(keys, "list", "--db", url)
    assert code == 1 and "cannot open the database" in err and "hunter2" not in err


def test_audit_verify_finds_a_tail_cut_with_sqlite3_and_the_head_moved(
    db: tuple[str, Path],
) -> None:
    url, path = db
    for _ in range(4):
        assert run(keys, "create", "--scope", "alerts:ack", "--db", url)[0] == 0
    code, out, _ = run(audit, "verify", "--db", url)
    assert code == 0 and "signed checkpoint at record 4" in out
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM security_audit WHERE seq > 2")
        conn.execute(
            "UPDATE security_audit_head SET seq = 2, "
            "hash = (SELECT hash FROM security_audit WHERE seq = 2)"
        )
    code, out, err = run(audit, "verify", "--db", url)
    assert code == 1 and "TRUNCATED: records 3..4 are missing" in out and "DAMAGED" in err


def test_audit_verify_finds_a_trail_deleted_whole(db: tuple[str, Path]) -> None:
    url, path = db
    assert run(keys, "create", "--scope", "alerts:ack", "--db", url)[0] == 0
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM security_audit")
        conn.execute("DELETE FROM security_audit_head")
    code, out, _ = run(audit, "verify", "--db", url)
    assert code == 1 and "record 1 is missing" in out


@pytest.mark.parametrize(
    ("expires", "said"),
    [("999999999999999999w", "longer than 100 years"), ("0s", "must be longer than 0s")],
)
def test_an_absurd_or_zero_lifetime_is_refused_with_a_clear_error(
    db: tuple[str, Path], expires: str, said: str
) -> None:
    url, _ = db
    result = CliRunner().invoke(
        keys, ["create", "--scope", "status:read", "--expires", expires, "--db", url]
    )
    assert result.exit_code == 2 and said in result.output and "--expires" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)  # no traceback
    assert "Traceback" not in result.output
    code, listed, _ = run(keys, "list", "--json", "--db", url)
    assert code == 0 and json.loads(listed) == []  # nothing was stored


def test_keys_list_survives_a_key_stored_with_a_far_future_expiry(db: tuple[str, Path]) -> None:
    url, path = db
    assert run(keys, "create", "--scope", "status:read", "--db", url)[0] == 0
    with sqlite3.connect(path) as conn:  # as the unbounded --expires used to store it
        conn.execute("UPDATE security_api_keys SET expires_at = 6.048e23")
    code, listed, err = run(keys, "list", "--db", url)
    assert code == 0 and "beyond year 9999" in listed, err
