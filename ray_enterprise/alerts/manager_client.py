"""AlertManagerClient: the client-side face of the AlertManagerActor, what ``connect().alerts``
returns.

Like the registry and config clients, every method is a coroutine for async code and has a
``*_sync`` twin for scripts; the client holds only the actor handle, so it can be made anywhere
and passed around. What it does not wrap (``ingest``, ``set_policy``, ``add_handler``, ...)
is reached as on the handle: ``client.set_policy.remote(...)``, or through :attr:`actor`.
"""

from __future__ import annotations

from typing import Any

import ray

Alert = dict[str, Any]


class AlertManagerClient:
    """Read, acknowledge and silence the cluster's alerts through its AlertManagerActor."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    @property
    def actor(self) -> Any:
        return self._handle

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_"):
            raise AttributeError(method)
        return getattr(self._handle, method)

    # -- async API ------------------------------------------------------------------------

    async def alerts(self, state: str | None = None, **filters: Any) -> list[Alert]:
        """Open alerts, or ``state`` firing / acknowledged / resolved; ``service=``,
        ``severity=``, ``days=``, ``limit=`` narrow them."""
        result: list[Alert] = await self._handle.alerts.remote(state, **filters)
        return result

    async def get(self, alert_id: str) -> Alert:
        result: Alert = await self._handle.get.remote(alert_id)
        return result

    async def acknowledge(self, alert_id: str, by: str, reason: str = "") -> Alert:
        result: Alert = await self._handle.acknowledge.remote(alert_id, by, reason)
        return result

    async def unacknowledge(self, alert_id: str, by: str, reason: str = "") -> Alert:
        result: Alert = await self._handle.unacknowledge.remote(alert_id, by, reason)
        return result

    async def silence(
        self, matchers: str, duration: str | float, by: str, comment: str = ""
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._handle.silence.remote(matchers, duration, by, comment)
        return result

    async def silences(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._handle.silences.remote()
        return result

    async def history(self, days: float = 7.0, **filters: Any) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._handle.history.remote(days, **filters)
        return result

    # -- sync twins -----------------------------------------------------------------------

    def alerts_sync(self, state: str | None = None, **filters: Any) -> list[Alert]:
        result: list[Alert] = ray.get(self._handle.alerts.remote(state, **filters))
        return result

    def get_sync(self, alert_id: str) -> Alert:
        result: Alert = ray.get(self._handle.get.remote(alert_id))
        return result

    def acknowledge_sync(self, alert_id: str, by: str, reason: str = "") -> Alert:
        result: Alert = ray.get(self._handle.acknowledge.remote(alert_id, by, reason))
        return result

    def unacknowledge_sync(self, alert_id: str, by: str, reason: str = "") -> Alert:
        result: Alert = ray.get(self._handle.unacknowledge.remote(alert_id, by, reason))
        return result

    def silence_sync(
        self, matchers: str, duration: str | float, by: str, comment: str = ""
    ) -> dict[str, Any]:
        result: dict[str, Any] = ray.get(
            self._handle.silence.remote(matchers, duration, by, comment)
        )
        return result

    def silences_sync(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = ray.get(self._handle.silences.remote())
        return result

    def history_sync(self, days: float = 7.0, **filters: Any) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = ray.get(self._handle.history.remote(days, **filters))
        return result
