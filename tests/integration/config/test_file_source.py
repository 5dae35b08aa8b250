from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from config_backends import Watching, values_at

from ray_enterprise.config.errors import ConfigParseError
from ray_enterprise.config.sources import FileConfigSource, SourceUpdate, parse_config_text

BASE = "cache:\n  default_ttl_seconds: 10\nsearch:\n  index_name: docs\n"


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def ttl_is(value: float) -> Callable[[SourceUpdate], bool]:
    return lambda u: u.values_changed and values_at(u, "cache.default_ttl_seconds") == value


def test_later_files_win_and_provenance_names_the_file(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.json"
    write(a, BASE)
    write(b, '{"cache": {"default_ttl_seconds": 20}}')
    source = FileConfigSource([a, b])
    values = asyncio.run(source.load())
    assert values == {"cache": {"default_ttl_seconds": 20}, "search": {"index_name": "docs"}}
    assert source.provenance() == {
        "cache.default_ttl_seconds": str(b),
        "search.index_name": str(a),
    }


@pytest.mark.parametrize("how", ["in_place", "atomic_rename", "delete_recreate"])
def test_a_change_is_seen_within_one_second(tmp_path: Path, how: str) -> None:
    path = tmp_path / "app.yaml"
    write(path, BASE)
    source = FileConfigSource([path])

    async def run() -> float:
        await source.load()
        async with Watching(source) as w:
            new = BASE.replace("10", "11")
            if how == "in_place":
                with open(path, "r+", encoding="utf-8") as f:
                    f.truncate(0)
                    f.write(new)
            elif how == "atomic_rename":
                tmp = tmp_path / ".app.yaml.tmp"
                write(tmp, new)
                os.replace(tmp, path)
            else:
                path.unlink()
                write(path, new)
            _, waited = await w.until(ttl_is(11), timeout=1.0)
            return waited

    assert asyncio.run(run()) < 1.0


def test_same_size_same_second_edit_is_seen_by_content(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    write(path, BASE)
    stat = path.stat()
    source = FileConfigSource([path])

    async def run() -> None:
        await source.load()
        async with Watching(source) as w:
            write(path, BASE.replace("10", "12"))
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # hide the edit from mtime
            await w.until(ttl_is(12), timeout=1.0)

    asyncio.run(run())


def test_bad_yaml_keeps_last_good_values_reports_file_and_line_then_recovers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "app.yaml"
    write(path, BASE)
    source = FileConfigSource([path])

    async def run() -> None:
        good = await source.load()
        async with Watching(source) as w:
            write(path, "cache:\n  default_ttl_seconds: 10\n  bad: [unclosed\nsearch: {}\n")
            update, _ = await w.until(lambda u: not u.health.ok, timeout=1.0)
            assert update.values == good and not update.values_changed
            assert str(path) in (update.health.last_error or "")
            assert "line 4" in (update.health.last_error or "")
            assert source.values == good
            write(path, BASE.replace("10", "13"))
            update, _ = await w.until(lambda u: u.health.ok, timeout=1.0)
            assert values_at(update, "cache.default_ttl_seconds") == 13

    asyncio.run(run())


def test_a_deleted_file_is_a_failure_not_an_empty_layer(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    write(path, BASE)
    source = FileConfigSource([path])
    asyncio.run(source.load())
    path.unlink()
    assert asyncio.run(source.load())["search"] == {"index_name": "docs"}
    assert "file not found" in (source.health().last_error or "")
    optional = FileConfigSource([path], missing_ok=True)
    assert asyncio.run(optional.load()) == {} and optional.health().ok


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("x.yaml", "a: 1\nb: [1, 2\n", 3),
        ("x.json", '{\n  "a": 1,\n  "b": \n}', 4),
        ("x.yaml", "- just\n- a list\n", None),
    ],
)
def test_parse_errors_name_file_and_line(name: str, text: str, line: int | None) -> None:
    with pytest.raises(ConfigParseError) as info:
        parse_config_text(text, name)
    assert info.value.file == name and info.value.line == line
    assert name in str(info.value)


def test_empty_files_are_empty_layers() -> None:
    assert parse_config_text("", "a.yaml") == {}
    assert parse_config_text("  \n", "a.json") == {}
