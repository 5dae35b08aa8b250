"""What may be recorded: Prometheus naming rules, value checks and per-metric cardinality limits.

Every refusal has a reason from a small closed set, so refusals can be counted and exported as
a low-cardinality metric themselves, plus a message that says what was wrong and what to do.
Checks run once per distinct (name, type, service, tags) key in a process, not per point.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ray_enterprise.errors import RayEnterpriseError

#: https://prometheus.io/docs/concepts/data_model/#metric-names-and-labels
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
#: The label the platform adds itself from ``service_name``.
SERVICE_LABEL = "service"
#: Suffixes the exposition adds to some types; a user name ending in them would collide.
_RESERVED_SUFFIXES = ("_bucket", "_count", "_sum", "_created")
MAX_LABEL_VALUE_LEN = 256
#: Longer names are refused: a name is kept in every refusal key, checkpoint and scrape.
MAX_NAME_LEN = 200
DEFAULT_CARDINALITY_LIMIT = 1000


class RefusalReason(str, enum.Enum):
    """Why a point was not recorded; the value is the label exported with the refusal count."""

    INVALID_NAME = "invalid_name"
    INVALID_TAG = "invalid_tag"
    NOT_A_NUMBER = "not_a_number"
    NAN = "nan"
    INFINITE = "infinite"
    NEGATIVE_COUNTER = "negative_counter"
    TYPE_CONFLICT = "type_conflict"
    CARDINALITY = "cardinality"
    SERIES_LIMIT = "series_limit"
    BUFFER_FULL = "buffer_full"


@dataclass(frozen=True)
class Refusal:
    """One refused series key (or value) with the reason and a message for a person."""

    metric: str
    reason: RefusalReason
    message: str


class MetricNameError(RayEnterpriseError):
    """A metric handle was created with a name or tags Prometheus would not accept."""

    def __init__(self, refusal: Refusal) -> None:
        self.metric = refusal.metric
        self.reason = refusal.reason
        super().__init__(refusal.message)


def check_name(name: object) -> Refusal | None:
    """``None`` when ``name`` is a valid Prometheus metric name the exposition can use."""
    if isinstance(name, str) and len(name) > MAX_NAME_LEN:
        return Refusal(
            name[:MAX_NAME_LEN],  # the refusal key must not carry the flood itself
            RefusalReason.INVALID_NAME,
            f"metric name {name[:40]!r}... is {len(name)} characters long; "
            f"at most {MAX_NAME_LEN} are allowed",
        )
    if not isinstance(name, str) or not METRIC_NAME.match(name):
        return Refusal(
            str(name),
            RefusalReason.INVALID_NAME,
            f"metric name {name!r} is invalid: it must match [a-zA-Z_:][a-zA-Z0-9_:]* "
            "(letters, digits, '_' and ':', not starting with a digit)",
        )
    if name.startswith("__"):
        return Refusal(
            name,
            RefusalReason.INVALID_NAME,
            f"metric name {name!r} is invalid: names starting with '__' are reserved",
        )
    if name.endswith(_RESERVED_SUFFIXES):
        return Refusal(
            name,
            RefusalReason.INVALID_NAME,
            f"metric name {name!r} ends with a suffix the exposition adds itself "
            f"({', '.join(_RESERVED_SUFFIXES)}); choose another name",
        )
    return None


def check_tags(name: str, tags: Mapping[str, object]) -> Refusal | None:
    """``None`` when every tag is a valid label name with a string value of sane length."""
    for key, value in tags.items():
        if not isinstance(key, str) or not LABEL_NAME.match(key) or key.startswith("__"):
            return Refusal(
                name,
                RefusalReason.INVALID_TAG,
                f"tag {key!r} of metric {name!r} is invalid: tag names must match "
                "[a-zA-Z_][a-zA-Z0-9_]* and not start with '__'",
            )
        if key == SERVICE_LABEL:
            return Refusal(
                name,
                RefusalReason.INVALID_TAG,
                f"tag {key!r} of metric {name!r} is reserved: pass service_name= instead",
            )
        if not isinstance(value, str) or len(value) > MAX_LABEL_VALUE_LEN:
            return Refusal(
                name,
                RefusalReason.INVALID_TAG,
                f"tag {key!r} of metric {name!r} must have a string value of at most "
                f"{MAX_LABEL_VALUE_LEN} characters, got {type(value).__name__}",
            )
    return None


def check_series(name: str, labels: Iterable[tuple[str, object]]) -> Refusal | None:
    """``None`` when a series key that did not come through a recorder (a batch sent to the
    store directly) is one the exposition can use; the ``service`` label is the platform's."""
    plain = {}
    for key, value in labels:
        if key != SERVICE_LABEL:
            plain[key] = value
        elif not isinstance(value, str):
            return Refusal(name, RefusalReason.INVALID_TAG, f"service of {name!r} is not a string")
    return check_name(name) or check_tags(name, plain)


def check_value(name: str, value: object) -> tuple[float | None, Refusal | None]:
    """The value as a float, or the refusal: bools, strings, NaN and infinities are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            if isinstance(value, (bool, str, bytes)):
                raise TypeError
            number = float(value)  # type: ignore[arg-type]  # numpy scalars and Decimals
        except (TypeError, ValueError):
            return None, Refusal(
                name,
                RefusalReason.NOT_A_NUMBER,
                f"value of metric {name!r} is not a number: {type(value).__name__}",
            )
    else:
        try:
            number = float(value)
        except OverflowError:  # an int past float's range (10**400) is as good as infinite
            return None, Refusal(
                name, RefusalReason.INFINITE, f"value of metric {name!r} is too large for a float"
            )
    if number != number:
        return None, Refusal(name, RefusalReason.NAN, f"value of metric {name!r} is NaN")
    if number - number != 0.0:
        return None, Refusal(name, RefusalReason.INFINITE, f"value of metric {name!r} is infinite")
    return number, None


class CardinalityGuard:
    """Admits at most ``limit`` distinct label sets per metric name, and one type per name.

    Unbounded label values (user ids, request ids) are the classic way a metrics pipeline runs
    out of memory; refusing the 1001st series of a metric keeps every store bounded.
    """

    def __init__(self, limit: int = DEFAULT_CARDINALITY_LIMIT) -> None:
        self.limit = limit
        self._series: dict[str, set[object]] = {}
        self._types: dict[str, str] = {}

    def admit(self, name: str, kind: str, labels: object) -> Refusal | None:
        known = self._types.setdefault(name, kind)
        if known != kind:
            return Refusal(
                name,
                RefusalReason.TYPE_CONFLICT,
                f"metric {name!r} is already a {known}; it cannot also be a {kind}: "
                "use another name",
            )
        seen = self._series.setdefault(name, set())
        if labels in seen:
            return None
        if len(seen) >= self.limit:
            return Refusal(
                name,
                RefusalReason.CARDINALITY,
                f"metric {name!r} reached its cardinality limit of {self.limit} series; "
                "drop unbounded tags (ids, timestamps) or raise the limit",
            )
        seen.add(labels)
        return None

    def series_count(self, name: str) -> int:
        return len(self._series.get(name, ()))
