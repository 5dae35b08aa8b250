"""The observability settings every process reads for itself, published in the GCS store.

A recorder's flush interval, a tracer's sampling rate and the OTLP endpoint belong to each
process (driver, service, task, system actor), which has no config subscription of its own;
``boot_observability`` publishes them once from the config's ``observability`` section and a
process reads them when it sets up its recorder or tracer (the OTLP endpoint: again every
few seconds, on the export thread). Outside Ray, or before any boot, the schema's defaults.
"""

from __future__ import annotations

from typing import Any

from ray_enterprise import _kv

SETTINGS_KEY = "observability/process"
KEYS = ("flush_interval_seconds", "trace_sample_rate", "otlp_endpoint", "otlp_protocol")


def publish(section: Any) -> None:
    """Publish ``section``'s per-process settings for every process of the cluster."""
    _kv.put(SETTINGS_KEY, {key: getattr(section, key) for key in KEYS})


def read() -> dict[str, Any]:
    """The published settings; empty when none were published or Ray is not connected."""
    try:
        import ray

        if not ray.is_initialized():
            return {}
        found = _kv.get(SETTINGS_KEY)
    except Exception:  # a GCS hiccup: the defaults this time, asked again next time
        return {}
    return dict(found) if isinstance(found, dict) else {}


def setting(key: str, default: Any) -> Any:
    """One published setting, or ``default``."""
    value = read().get(key)
    return default if value is None else value
