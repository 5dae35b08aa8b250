"""The one YAML/JSON loader: limits on size, aliases, expansion and depth; duplicate keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from ray_enterprise.config.errors import ConfigParseError
from ray_enterprise.config.settings import ConfigSettings
from ray_enterprise.config.sources.file_source import parse_config_text
from ray_enterprise.safe_load import DocumentError, Limits, load_document, read_document

CONFIG_BOMB = (  # the 380-byte config file that held the apply lock for 29 s in redact
    "search:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"  {n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n"
        for p, n in zip("abcdefg", "bcdefgh", strict=True)
    )
)


def test_a_config_alias_bomb_is_refused_before_anything_walks_it() -> None:
    with pytest.raises(ConfigParseError, match="expands to more than") as info:
        parse_config_text(CONFIG_BOMB, "app.yaml")
    assert info.value.file == "app.yaml" and info.value.line is not None


def test_merge_keys_may_be_overridden_but_a_key_given_twice_is_refused() -> None:
    merged = "base: &b {ttl: 1, size: 2}\ncache:\n  <<: *b\n  ttl: 5\n"
    assert load_document(merged, "a.yaml")["cache"] == {"ttl": 5, "size": 2}
    with pytest.raises(DocumentError, match="'ttl' is given twice") as info:
        load_document("cache:\n  ttl: 1\n  ttl: 2\n", "a.yaml")
    assert info.value.line == 3
    with pytest.raises(DocumentError, match="'ttl' is given twice") as info:
        load_document('{"cache": {"ttl": 1,\n "ttl": 2}}', "a.json")
    assert info.value.line == 2


def test_limits_on_size_aliases_and_depth_name_file_and_line(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * 2048 + "\n")
    with pytest.raises(DocumentError, match="2052 bytes, more than the 1024") as info:
        read_document(big, limits=Limits(max_bytes=1024))
    assert info.value.file == str(big)
    aliases = "a: &a 1\nb: [" + ", ".join(["*a"] * 5) + "]\n"
    with pytest.raises(DocumentError, match="more than 4 aliases"):
        load_document(aliases, "x.yaml", limits=Limits(max_aliases=4))
    deep_json = '{"a":\n' + "[" * 100 + "]" * 100 + "}"
    with pytest.raises(DocumentError, match="nested deeper than 64") as info:
        load_document(deep_json, "x.json")
    assert info.value.line == 2
    nested_alias = "a: &a [[[[1]]]]\nb: [[[[[*a]]]]]\n"  # deep only once the alias expands
    with pytest.raises(DocumentError, match="nested deeper than 6"):
        load_document(nested_alias, "x.yaml", limits=Limits(max_depth=6))


def test_the_settings_file_goes_through_the_same_loader(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text("config:\n  wait_min_s: 0.1\n  wait_min_s: 0.2\n")
    with pytest.raises(ConfigParseError, match="given twice") as info:
        ConfigSettings.from_yaml(path)
    assert info.value.line == 3
