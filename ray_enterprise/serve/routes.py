"""The management API's routes: a FastAPI app over the system actors, every route gated.

Each route names the scope it needs in :data:`ROUTES`; the gate runs in a middleware before
anything reads the body (:mod:`.admission`), so a route cannot be added without saying who may
call it (``build_app`` refuses a route missing from the table). Responses are views over the
actors' plain data; the config is the ConfigActor's redacted view, never the live document;
errors show their own message, never the Ray traceback around it.
"""

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route

from ray_enterprise.alerts.errors import AlertError
from ray_enterprise.config.errors import ConfigError, ConfigVersionNotFoundError
from ray_enterprise.redaction import redact_text
from ray_enterprise.security.apikeys import ApiKey, Scope
from ray_enterprise.security.audit import AuditLog
from ray_enterprise.serve.admission import AuthenticateFirst, user_text
from ray_enterprise.serve.anomalies import anomaly_view
from ray_enterprise.serve.backends import SubsystemUnavailable, SystemBackends
from ray_enterprise.serve.gate import Gate, Refusal
from ray_enterprise.serve.page import PUBLIC_ROUTES, add_page

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"

#: (method, path template) -> the scope a key needs for it.
ROUTES: dict[tuple[str, str], Scope] = {
    ("GET", "/health"): Scope.STATUS_READ,
    ("GET", "/status"): Scope.STATUS_READ,
    ("GET", "/services"): Scope.STATUS_READ,
    ("POST", "/services/{name}/restart"): Scope.SERVICES_ADMIN,
    ("GET", "/config"): Scope.CONFIG_READ,
    ("PUT", "/config/{key}"): Scope.CONFIG_WRITE,
    ("GET", "/config/history"): Scope.CONFIG_READ,
    ("POST", "/config/rollback/{version}"): Scope.CONFIG_WRITE,
    ("GET", "/alerts"): Scope.STATUS_READ,
    ("POST", "/alerts/{alert_id}/ack"): Scope.ALERTS_ACK,
    ("POST", "/alerts/{alert_id}/unack"): Scope.ALERTS_ACK,
    ("POST", "/alerts/{alert_id}/silence"): Scope.ALERTS_ACK,
    ("GET", "/series"): Scope.STATUS_READ,
    ("GET", "/metrics"): Scope.STATUS_READ,
    ("GET", "/traces"): Scope.STATUS_READ,
    ("GET", "/traces/{trace_id}"): Scope.STATUS_READ,
    ("GET", "/audit"): Scope.AUDIT_READ,
    ("GET", "/audit/verify"): Scope.AUDIT_READ,
    ("GET", "/openapi.json"): Scope.STATUS_READ,  # the map of every route: not for strangers
}
#: The highest sequence number a query may name (SQL's BIGINT).
MAX_SEQ = 2**63 - 1

#: Kubernetes probes call these with no key: they answer that this replica serves HTTP and
#: nothing else, so there is nothing to gate (the system's health, with its reasons, is /health).
PROBE_ROUTES = frozenset({("GET", "/healthz")})


def who(key: ApiKey) -> str:
    """How a key appears as the actor of an acknowledgement or an audit record."""
    return f"key:{key.key_id}"


def _refused(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refusal)
    return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)


def _unavailable(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, SubsystemUnavailable)
    return JSONResponse({"error": redact_text(str(exc))}, status_code=503)


def _not_found(what: str) -> Response:
    return JSONResponse({"error": f"no such {what}"}, status_code=404)


def build_app(
    gate: Gate,
    system: SystemBackends,
    audit: AuditLog | None,
    *,
    cors: dict[str, Any] | None = None,
) -> FastAPI:
    """The FastAPI app of the management API; ``cors`` are CORSMiddleware's keyword arguments."""
    app = FastAPI(title="ray_enterprise management API", docs_url=None, redoc_url=None)
    app.add_exception_handler(Refusal, _refused)
    app.add_exception_handler(SubsystemUnavailable, _unavailable)
    app.add_middleware(
        AuthenticateFirst,
        gate=gate,
        router=app.router,
        scopes=ROUTES,
        public=PUBLIC_ROUTES | PROBE_ROUTES,
    )
    if cors is not None:  # outermost, so a refusal still carries the CORS headers
        app.add_middleware(CORSMiddleware, **cors)

    def gated(method: str, path: str) -> Callable[[Request], Awaitable[ApiKey]]:
        if (method, path) not in ROUTES:
            raise RuntimeError(f"{method} {path} has no scope in ROUTES")

        async def dependency(request: Request) -> ApiKey:
            key: ApiKey = request.state.api_key  # AuthenticateFirst admitted it
            return key

        return dependency

    async def record(key: ApiKey, action: str, target: str, details: dict[str, Any]) -> None:
        if audit is not None:
            await asyncio.to_thread(audit.append, who(key), action, target=target, details=details)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return Response("ok\n", media_type="text/plain")

    @app.get("/health")
    async def health(_: Annotated[ApiKey, Depends(gated("GET", "/health"))]) -> Any:
        return await system.call("observability", lambda h: h.get_system_health.remote())

    @app.get("/status")
    async def status(_: Annotated[ApiKey, Depends(gated("GET", "/status"))]) -> Any:
        return await system.call("registry", lambda h: h.get_system_status.remote())

    @app.get("/services")
    async def services(_: Annotated[ApiKey, Depends(gated("GET", "/services"))]) -> Any:
        return await system.call("registry", lambda h: h.list_services.remote())

    @app.post("/services/{name}/restart")
    async def restart(
        name: str, key: Annotated[ApiKey, Depends(gated("POST", "/services/{name}/restart"))]
    ) -> Any:
        try:
            result = await system.call("registry", lambda h: h.restart.remote(name))
        except KeyError:
            return _not_found("service")
        await record(key, "service.restart", name, {})
        return result

    @app.get("/config")
    async def config(
        _: Annotated[ApiKey, Depends(gated("GET", "/config"))], section: str | None = None
    ) -> Any:
        return await system.call("config", lambda h: h.show.remote(section))

    @app.put("/config/{key}")
    async def set_config(
        key: str,
        value: Annotated[Any, Body(embed=True)],
        caller: Annotated[ApiKey, Depends(gated("PUT", "/config/{key}"))],
    ) -> Any:
        try:
            version = await system.call("config", lambda h: h.set_value.remote(key, value))
        except ConfigError as exc:  # config errors are written to be shown: no secret inside
            await record(caller, "config.set", key, {"refused": True})
            return JSONResponse({"error": redact_text(user_text(exc))}, status_code=422)
        await record(caller, "config.set", key, {"version": version})
        return {"version": version}

    @app.get("/config/history")
    async def config_history(
        _: Annotated[ApiKey, Depends(gated("GET", "/config/history"))], limit: int = 20
    ) -> Any:
        limit = max(1, min(limit, 200))
        return await system.call("config", lambda h: h.history.remote(limit))

    @app.post("/config/rollback/{version}")
    async def rollback(
        version: int,
        caller: Annotated[ApiKey, Depends(gated("POST", "/config/rollback/{version}"))],
    ) -> Any:
        try:
            now = await system.call("config", lambda h: h.rollback.remote(version))
        except ConfigVersionNotFoundError:
            return _not_found("config version")
        except ConfigError as exc:
            await record(caller, "config.rollback", str(version), {"refused": True})
            return JSONResponse({"error": redact_text(user_text(exc))}, status_code=422)
        await record(caller, "config.rollback", str(version), {"version": now})
        return {"version": now, "rolled_back_to": version}

    @app.get("/alerts")
    async def alerts(
        _: Annotated[ApiKey, Depends(gated("GET", "/alerts"))],
        state: str | None = None,
        service: str | None = None,
        severity: str | None = None,
    ) -> Any:
        return await system.call(
            "alerts", lambda h: h.alerts.remote(state, service=service, severity=severity)
        )

    async def change_ack(alert_id: str, key: ApiKey, reason: str, ack: bool) -> Any:
        method = "acknowledge" if ack else "unacknowledge"
        try:
            view = await system.call(
                "alerts", lambda h: getattr(h, method).remote(alert_id, who(key), reason)
            )
        except KeyError:
            return _not_found("open alert")
        await record(key, f"alert.{'ack' if ack else 'unack'}", alert_id, {"reason": reason})
        return view

    @app.post("/alerts/{alert_id}/ack")
    async def ack(
        alert_id: str,
        key: Annotated[ApiKey, Depends(gated("POST", "/alerts/{alert_id}/ack"))],
        reason: Annotated[str, Body(embed=True)] = "",
    ) -> Any:
        return await change_ack(alert_id, key, reason, True)

    @app.post("/alerts/{alert_id}/unack")
    async def unack(
        alert_id: str,
        key: Annotated[ApiKey, Depends(gated("POST", "/alerts/{alert_id}/unack"))],
        reason: Annotated[str, Body(embed=True)] = "",
    ) -> Any:
        return await change_ack(alert_id, key, reason, False)

    @app.post("/alerts/{alert_id}/silence")
    async def silence(
        alert_id: str,
        key: Annotated[ApiKey, Depends(gated("POST", "/alerts/{alert_id}/silence"))],
        reason: Annotated[str, Body(embed=True)] = "",
        duration: Annotated[str, Body(embed=True)] = "1h",
    ) -> Any:
        try:
            alert = await system.call("alerts", lambda h: h.get.remote(alert_id))
        except KeyError:
            return _not_found("alert")
        matchers = silence_matchers(alert["labels"])
        try:
            made = await system.call(
                "alerts", lambda h: h.silence.remote(matchers, duration, who(key), reason)
            )
        except AlertError as exc:  # a bad duration: alert errors name the field, no secret
            return JSONResponse({"error": redact_text(user_text(exc))}, status_code=422)
        await record(key, "alert.silence", alert_id, {"matchers": matchers, "for": duration})
        return made

    @app.get("/series")
    async def series(
        _: Annotated[ApiKey, Depends(gated("GET", "/series"))],
        window_s: float = 300.0,
        max_points: int = 120,
    ) -> Any:
        window_s = max(1.0, min(window_s, 3600.0))
        max_points = max(1, min(max_points, 1000))
        plotted = await system.call("observability", lambda h: h.plot.remote(window_s, max_points))
        anomalies = await anomaly_view(time.time() - window_s)
        return {"series": plotted, **anomalies}

    @app.get("/traces")
    async def traces(
        _: Annotated[ApiKey, Depends(gated("GET", "/traces"))], limit: int = 20
    ) -> Any:
        limit = max(1, min(limit, 200))
        return await system.call("observability", lambda h: h.recent_traces.remote(limit))

    @app.get("/metrics")
    async def metrics(_: Annotated[ApiKey, Depends(gated("GET", "/metrics"))]) -> Response:
        text = await system.call("observability", lambda h: h.exposition.remote())
        return Response(content=text, media_type=PROMETHEUS_TEXT)

    @app.get("/traces/{trace_id}")
    async def trace(
        trace_id: str, _: Annotated[ApiKey, Depends(gated("GET", "/traces/{trace_id}"))]
    ) -> Any:
        spans = await system.call("observability", lambda h: h.get_trace.remote(trace_id))
        if not spans:
            return _not_found("trace")
        return {"trace_id": trace_id, "spans": [dataclasses.asdict(s) for s in spans]}

    @app.get("/audit")
    async def audit_records(
        _: Annotated[ApiKey, Depends(gated("GET", "/audit"))],
        limit: int = 100,
        since_seq: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    ) -> Any:
        if audit is None:
            raise SubsystemUnavailable("audit trail")
        limit = max(1, min(limit, 1000))
        found = await asyncio.to_thread(audit.records, limit=limit, since_seq=since_seq)
        return [r.to_dict() for r in found]

    @app.get("/audit/verify")
    async def audit_verify(_: Annotated[ApiKey, Depends(gated("GET", "/audit/verify"))]) -> Any:
        if audit is None:
            raise SubsystemUnavailable("audit trail")
        report = await asyncio.to_thread(audit.verify)
        return dataclasses.asdict(report)

    add_page(app)
    _check_every_route_is_gated(app)
    return app


def silence_matchers(labels: dict[str, str]) -> str:
    """Matchers for the alert's name and service: the same alert again, not its neighbours."""
    chosen = {k: labels[k] for k in ("alertname", "service") if k in labels} or labels
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(chosen.items()))


def _check_every_route_is_gated(app: FastAPI) -> None:
    """A route added here without an entry in :data:`ROUTES` would be a hole: refuse it.
    Only the page's own files (:data:`PUBLIC_ROUTES`) and the probes (:data:`PROBE_ROUTES`),
    no data in either, need no key."""
    for route in app.routes:
        if isinstance(route, Route):
            for method in route.methods or ():
                if method == "HEAD":
                    continue  # Starlette's implicit HEAD of a GET; it needs the GET's scope
                if (method, route.path) not in ROUTES.keys() | PUBLIC_ROUTES | PROBE_ROUTES:
                    raise RuntimeError(f"{method} {route.path} has no scope in ROUTES")


__all__ = ["PROBE_ROUTES", "PROMETHEUS_TEXT", "ROUTES", "build_app", "silence_matchers", "who"]
