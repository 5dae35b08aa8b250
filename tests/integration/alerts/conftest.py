"""The alert actor of one test: booted with that test's settings on a SQLite file of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ray_enterprise.alerts.actor import get_alert_handle, remove_alert_actor


@pytest.fixture
def start_alerts(ray_session: None, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Boots the alert actor with the given settings and a SQLite file in ``tmp_path``."""
    remove_alert_actor()

    def start(**settings: Any) -> Any:
        settings.setdefault("db_url", f"sqlite:///{tmp_path / 'alerts.db'}")
        return get_alert_handle(create=True, settings=settings)

    yield start
    remove_alert_actor()
