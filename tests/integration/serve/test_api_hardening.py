"""The management API against an attacker, over real HTTP through real Ray Serve: nothing is
read before the key is checked, bodies are capped, every unauthenticated answer is the same,
errors carry no Ray traceback, and a client guessing keys is held back before any hashing."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from ray_enterprise.security.apikeys import Scope
from ray_enterprise.serve.admission import MAX_BODY_BYTES
from tests.integration.serve.conftest import Api

pytestmark = pytest.mark.timeout(300)
BARE_401 = b'{"error":"unauthorized"}'


def raw(
    api: Api,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes = b"",
    *,
    source: str = "127.0.0.1",
) -> tuple[int, bytes]:
    """One request on a fresh connection from ``source`` (any 127.x address is loopback);
    the body, if any, is sent only after the headers were answered or not at all."""
    where = urlsplit(api.url)
    conn = http.client.HTTPConnection(
        where.hostname or "127.0.0.1", where.port, timeout=60, source_address=(source, 0)
    )
    try:
        conn.putrequest(method, (where.path.rstrip("/") or "") + path)
        if body and "Content-Length" not in headers:
            headers = {**headers, "Content-Length": str(len(body))}
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders(body or None)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def test_a_huge_body_without_a_key_gets_the_bare_401_before_a_byte_of_it_is_read(
    api: Api,
) -> None:
    # 100 MB announced and never sent: the answer can only come from the headers.
    status, body = raw(
        api,
        "PUT",
        "/config/cache.size",
        {"Content-Length": str(100 * 2**20), "Content-Type": "application/json"},
    )
    assert (status, body) == (401, BARE_401)


def test_malformed_json_unknown_paths_and_openapi_get_the_same_401_without_a_key(
    api: Api,
) -> None:
    garbage = b'{"value": [1, 2,,'
    answers = [
        raw(api, "PUT", "/config/cache.size", {"Content-Type": "application/json"}, garbage),
        raw(api, "POST", "/alerts/x/ack", {"X-API-Key": "rek_zz"}, garbage),
        raw(api, "GET", "/no/such/path", {}),
        raw(api, "DELETE", "/status", {}),
        raw(api, "GET", "/openapi.json", {}),
    ]
    assert set(answers) == {(401, BARE_401)}
    reader = api.key(Scope.STATUS_READ).secret
    schema = requests.get(api.url + "/openapi.json", headers={"X-API-Key": reader}, timeout=60)
    assert schema.status_code == 200 and "/audit/verify" in schema.json()["paths"]
    writer = api.key(Scope.CONFIG_WRITE).secret
    parsed = raw(api, "PUT", "/config/cache.size", {"X-API-Key": writer}, garbage)
    assert parsed[0] == 422  # a caller with a key may see why its JSON did not parse


def test_a_body_over_the_cap_gets_413_with_a_key(api: Api) -> None:
    writer = api.key(Scope.CONFIG_WRITE).secret
    big = json.dumps({"value": "x" * (MAX_BODY_BYTES + 10)}).encode()
    headers = {"X-API-Key": writer, "Content-Type": "application/json"}
    status, body = raw(api, "PUT", "/config/services.apitest.blob", headers, big)
    assert status == 413 and b"request body over" in body


def test_a_chunked_body_over_the_cap_gets_413_too(api: Api) -> None:
    where = urlsplit(api.url)
    conn = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=60)
    chunks = (b"x" * 65536 for _ in range(MAX_BODY_BYTES // 65536 + 4))  # no Content-Length
    try:
        conn.request(
            "PUT",
            "/config/services.apitest.blob",
            body=chunks,
            headers={"X-API-Key": api.key(Scope.CONFIG_WRITE).secret},
            encode_chunked=True,
        )
        answer = conn.getresponse()
        assert answer.status == 413 and b"request body over" in answer.read()
    finally:
        conn.close()


def test_the_api_trail_verifies_against_its_signed_checkpoint(api: Api) -> None:
    reader = api.key(Scope.AUDIT_READ).secret  # creating it appends to the trail
    report = requests.get(api.url + "/audit/verify", headers={"X-API-Key": reader}, timeout=60)
    assert report.json()["ok"] is True, report.text
    assert report.json()["checkpoint"]["seq"] >= 1


def test_a_refused_config_value_shows_its_error_without_the_ray_traceback(api: Api) -> None:
    writer = api.key(Scope.CONFIG_WRITE).secret
    answer = requests.put(
        api.url + "/config/security.audit_retention_days",
        json={"value": "not-a-number"},
        headers={"X-API-Key": writer},
        timeout=60,
    )
    assert answer.status_code == 422
    error: Any = answer.json()["error"]
    assert "audit_retention_days" in error
    for leak in ("Traceback", "pid=", "ip=", "actor_id", "ray::", 'File "'):
        assert leak not in error, (leak, error)


@pytest.mark.parametrize("since", ["1e20", "100000000000000000000", "-1"])
def test_an_out_of_range_audit_position_is_a_4xx(api: Api, since: str) -> None:
    reader = api.key(Scope.AUDIT_READ).secret
    answer = requests.get(
        api.url + "/audit", params={"since_seq": since}, headers={"X-API-Key": reader}, timeout=60
    )
    assert answer.status_code == 422, answer.text


def test_a_client_guessing_keys_is_held_back_before_verification_and_others_are_not(
    api: Api,
) -> None:
    good = api.key(Scope.STATUS_READ).secret
    guess = {"X-API-Key": good[:-3] + "zzz"}
    guesser = "127.0.0.77"  # its own address: the rest of the package keeps 127.0.0.1's budget
    codes = [raw(api, "GET", "/status", guess, source=guesser)[0] for _ in range(25)]
    assert codes[:20] == [401] * 20 and set(codes[20:]) == {429}, codes
    # The right key from that address waits too: guessing must not pay off by luck.
    assert raw(api, "GET", "/status", {"X-API-Key": good}, source=guesser)[0] == 429
    assert raw(api, "GET", "/status", {"X-API-Key": good})[0] == 200
