"""The one door to Ray's GCS key-value store, which is private Ray API.

Live control state (specs, which generation of which service is running, the shutdown marker)
is kept here, as Ray Serve's controller does: it survives any actor's death and needs no
database. Everything goes through this module so a change in Ray's internals is fixed once.
"""

from __future__ import annotations

import json
from typing import Any

from ray.experimental import internal_kv

NAMESPACE = "ray_enterprise"


def put(key: str, value: Any) -> None:
    internal_kv._internal_kv_put(
        key.encode(), json.dumps(value).encode(), overwrite=True, namespace=NAMESPACE
    )


def get(key: str, default: Any = None) -> Any:
    raw = internal_kv._internal_kv_get(key.encode(), namespace=NAMESPACE)
    return default if raw is None else json.loads(raw)


def delete(key: str) -> None:
    internal_kv._internal_kv_del(key.encode(), namespace=NAMESPACE)


def scan(prefix: str) -> dict[str, Any]:
    """Every key under ``prefix`` with its value."""
    out: dict[str, Any] = {}
    for raw_key in internal_kv._internal_kv_list(prefix.encode(), namespace=NAMESPACE):
        key = raw_key.decode()
        value = get(key)
        if value is not None:
            out[key] = value
    return out


def delete_prefix(prefix: str) -> None:
    for raw_key in internal_kv._internal_kv_list(prefix.encode(), namespace=NAMESPACE):
        internal_kv._internal_kv_del(raw_key, namespace=NAMESPACE)


def put_blob(key: str, value: bytes) -> None:
    """Opaque bytes (a checkpoint), stored as they are."""
    internal_kv._internal_kv_put(key.encode(), value, overwrite=True, namespace=NAMESPACE)


def get_blob(key: str) -> bytes | None:
    raw = internal_kv._internal_kv_get(key.encode(), namespace=NAMESPACE)
    return None if raw is None else bytes(raw)
