r"""Which series a point belongs to: its name and labels, kept as data from feed to alert.

A series is a metric name and its labels, ``("lat_ms", (("service", "api"),))``, or a bare name
(a series without labels, or one a caller names by text). The monitors key their detectors by
it, events carry its labels, and the alert's service is read from those labels: never from
text parsed back, where a label value such as ``x",service="admin`` could pose as another label.

>>> key = ("lat_ms", (("tag", 'x",service="admin'), ("service", "api")))
>>> service_of(labels_of(key))
'api'
>>> text_of(key)
'lat_ms{tag="x\\",service=\\"admin",service="api"}'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["Labels", "Series", "SeriesKey", "find_series", "labels_of", "service_of", "text_of"]

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]
Series = str | SeriesKey


def _escape(value: str) -> str:
    # Prometheus' exposition escaping: with it no two label sets print as the same text.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def text_of(series: Series) -> str:
    """The series as Prometheus writes it, ``name{a="1",service="x"}``: what people read."""
    if isinstance(series, str):
        return series
    name, labels = series
    if not labels:
        return name
    return name + "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


def labels_of(series: Series) -> Labels:
    """The labels a series carries (none for a series named by text alone)."""
    return () if isinstance(series, str) else tuple(series[1])


def service_of(labels: Labels | Mapping[str, str]) -> str:
    """The service a series belongs to, from its ``service`` label when it has one."""
    found = dict(labels).get("service")
    return found if isinstance(found, str) and found else "unknown"


def find_series(held: Mapping[Any, Any], series: Series) -> Series | None:
    """The held series ``series`` names: itself, or the one whose text it is (for callers
    that know only the text a page or an event shows)."""
    if series in held:
        return series
    if isinstance(series, str):
        return next((s for s in held if text_of(s) == series), None)
    return None
