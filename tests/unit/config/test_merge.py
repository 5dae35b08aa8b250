from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from ray_enterprise.config.merge import (
    LAYER_ORDER,
    REDACTED,
    ConfigDiff,
    deep_merge,
    diff_documents,
    flatten,
    is_secret_key,
    merge_layers,
    redact,
    redact_text,
    restore_secrets,
    unflatten,
)

keys = st.sampled_from(["a", "b", "c", "d"])
scalars = st.one_of(st.integers(-5, 5), st.booleans(), st.text("xyz", max_size=3), st.none())
documents: st.SearchStrategy[dict[str, Any]] = st.recursive(
    st.dictionaries(keys, scalars, min_size=1, max_size=3),
    lambda children: st.dictionaries(keys, st.one_of(scalars, children), min_size=1, max_size=3),
    max_leaves=12,
)


@given(st.lists(documents, min_size=5, max_size=5))
@settings(max_examples=100, deadline=None)
def test_each_leaf_comes_from_the_highest_layer_that_set_it(layers: list[dict[str, Any]]) -> None:
    named = list(zip(LAYER_ORDER, layers, strict=True))
    merged = merge_layers(named)
    flat_layers = [flatten(layer) for layer in layers]
    for path, value in flatten(merged.document).items():
        source = merged.provenance[path]
        assert flat_layers[LAYER_ORDER.index(source)][path] == value
    for i, flat in enumerate(flat_layers):
        for path, value in flat.items():
            higher = [q for later in flat_layers[i + 1 :] for q in later]
            hidden = any(
                q == path or q.startswith(path + ".") or path.startswith(q + ".") for q in higher
            )
            if not hidden:
                assert flatten(merged.document)[path] == value
                assert merged.provenance[path] == LAYER_ORDER[i]


@given(documents)
def test_flatten_then_unflatten_gives_the_document_back(doc: dict[str, Any]) -> None:
    assert unflatten(flatten(doc)) == doc


@given(documents, documents)
def test_merging_a_document_onto_itself_or_empty_changes_nothing(a: dict[str, Any], b: Any) -> None:
    assert deep_merge(a, a) == a
    assert deep_merge(a, {}) == a
    assert deep_merge({}, a) == a
    merged = deep_merge(a, b)
    assert deep_merge(merged, b) == merged  # applying the same override twice is idempotent


@given(documents, documents)
def test_diff_is_empty_exactly_when_documents_are_equal(a: dict[str, Any], b: Any) -> None:
    assert bool(diff_documents(a, b)) == (flatten(a) != flatten(b))
    assert not diff_documents(a, a)


def test_diff_groups_changes_by_section_and_services_by_name() -> None:
    old = {"cache": {"enabled": True}, "services": {"s1": {"x": 1}, "s2": {"y": 1}}}
    new = {"cache": {"enabled": False}, "services": {"s1": {"x": 1}, "s2": {"y": 2, "z": 3}}}
    d = diff_documents(old, new)
    assert d.changed_sections == ("cache", "services.s2")
    kinds = {c.path: c.kind for c in d.sections["services.s2"]}
    assert kinds == {"services.s2.y": "changed", "services.s2.z": "added"}
    assert ConfigDiff.from_dict(d.to_dict()) == d
    assert "~ cache.enabled: True -> False" in str(d)


def test_a_rotated_secret_shows_as_changed_without_either_value() -> None:
    old = {"security": {"jwt_secret": SecretStr("old-secret-value")}}
    new = {"security": {"jwt_secret": SecretStr("new-secret-value")}}
    d = diff_documents(old, new)
    (change,) = d.sections["security"]
    assert (change.kind, change.old, change.new) == ("changed", REDACTED, REDACTED)
    for text in (str(d), d.to_json(), repr(d)):
        assert "secret-value" not in text
    assert not diff_documents(old, {"security": {"jwt_secret": SecretStr("old-secret-value")}})


def test_redact_masks_secretstr_secret_keys_and_url_passwords_but_not_flags() -> None:
    doc = {
        "security": {"api_keys_enabled": True, "api_key": "k-123", "jwt_secret": SecretStr("j")},
        "services": {"db": {"password": "pw", "url": "postgresql://u:hunter2@h/db", "port": 1}},
        "vault": {"secret_id": "sid", "token_ttl": 30, "tokens": ["a"]},
    }
    out = redact(doc)
    assert out["security"] == {
        "api_keys_enabled": True,
        "api_key": REDACTED,
        "jwt_secret": REDACTED,
    }
    assert out["services"]["db"]["password"] == REDACTED
    assert "hunter2" not in out["services"]["db"]["url"]
    assert out["vault"] == {
        "secret_id": REDACTED,
        "token_ttl": 30,
        "tokens": REDACTED,
    }  # plural too
    assert (
        redact_text("see postgresql://u:pw@h:5432/x") == f"see postgresql://u:{REDACTED}@h:5432/x"
    )


def test_secret_key_names() -> None:
    for key in ("password", "db_password", "jwt_secret", "secret_id", "auth_token", "api_key"):
        assert is_secret_key(key), key
    for key in ("api_keys_enabled", "token_ttl", "max_tokens", "secret_store_kind", "keys"):
        assert not is_secret_key(key), key


def test_restore_secrets_takes_masked_values_from_the_live_document() -> None:
    old_version = {
        "security": {"jwt_secret": REDACTED, "audit_enabled": False},
        "x": {"t": REDACTED},
    }
    live = {"security": {"jwt_secret": SecretStr("live"), "audit_enabled": True}}
    restored = restore_secrets(old_version, live)
    assert restored["security"]["audit_enabled"] is False
    assert restored["security"]["jwt_secret"].get_secret_value() == "live"
    assert restored["x"] == {}  # no live counterpart: dropped, the default decides


def test_source_of_names_the_layers_behind_a_section() -> None:
    merged = merge_layers(
        [("defaults", {"search": {"a": 1, "b": 2}}), ("environment", {"search": {"a": 5}})]
    )
    assert merged.source_of("search.a") == "environment"
    assert merged.source_of("search.a.deeper") == "environment"
    assert merged.source_of("search") == "environment"
    assert merged.source_of("nothing") is None
