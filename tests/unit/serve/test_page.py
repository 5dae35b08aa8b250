"""The status page's files and the matchers its silence button sends, without Ray."""

from __future__ import annotations

import re

from ray_enterprise.alerts.matchers import parse_matchers
from ray_enterprise.serve.page import PAGE_HEADERS, page_files
from ray_enterprise.serve.routes import silence_matchers


def test_the_package_ships_the_page_and_it_loads_nothing_from_elsewhere() -> None:
    files = page_files()
    assert set(files) == {"index.html", "app.js", "style.css"}
    page = files["index.html"].decode()
    assert re.findall(r'(?:src|href)="([^"]+)"', page) == ["ui/style.css", "ui/app.js"]
    for body in files.values():
        assert b"http://" not in body.replace(b"http://www.w3.org/2000/svg", b"")
        assert b"https://" not in body
    policy = PAGE_HEADERS["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy


def test_the_script_never_writes_api_text_as_markup() -> None:
    script = page_files()["app.js"].decode()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
    assert "sessionStorage" in script and "localStorage" not in script


def test_silence_matchers_name_the_alert_and_its_service_and_parse_back() -> None:
    text = silence_matchers({"alertname": 'Odd "quoted"', "service": "api", "instance": "x"})
    parsed = {m.label: m.value for m in parse_matchers(text)}
    assert parsed == {"alertname": 'Odd "quoted"', "service": "api"}
    assert {m.label for m in parse_matchers(silence_matchers({"job": "a"}))} == {"job"}
