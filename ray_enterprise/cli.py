"""`ray-enterprise`: run an application spec, look at it, take it down."""

from __future__ import annotations

import os
import signal
import sys
import time
from types import FrameType
from typing import Any

import click

from ray_enterprise.cli_common import (
    PlainText,
    chosen_format,
    fail,
    join_cluster,
    output_options,
    render,
)
from ray_enterprise.cli_progress import StageLog, service_stages
from ray_enterprise.errors import NotConnectedError, RayEnterpriseError, SpecError

#: `up`'s exit status when the application stopped itself because a significant service FAILED,
#: and when they all completed: never 0, so a `ray job submit` of `up` reports that the
#: application ended (issue 24), and not 1 (the command's own errors) nor 2 (usage), so a job's
#: owner can tell the four apart.
AUTO_SHUTDOWN_FAILED_EXIT = 3
AUTO_SHUTDOWN_COMPLETED_EXIT = 4

_STATE_COLOURS = {
    "healthy": "green",
    "degraded": "yellow",
    "unhealthy": "yellow",
    "starting": "cyan",
    "restarting": "magenta",
    "pending": "white",
    "failed": "red",
    "stopping": "white",
    "stopped": "white",
}


def render_table(status: dict[str, Any], *, title: str = "", colour: bool = False) -> str:
    """The status document as a fixed-width table: a view over plain data."""
    rows = [("SERVICE", "STATE", "CRITICALITY", "RESTARTS", "NODE", "LAST ERROR")]
    for svc in status.get("services", []):
        rows.append(
            (
                svc["name"],
                svc["state"],
                svc["criticality"],
                str(svc["restarts"]),
                (svc.get("node_id") or "-")[:12],
                (svc.get("last_error") or "")[:60],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    head = f"{title}  " if title else ""
    lines.append(
        f"{head}status: {status.get('status', '?')}  score: {status.get('score', 0):g}/100"
    )
    health = status.get("health")
    if health:
        reasons = "; ".join(health.get("reasons") or []) or "nothing subtracted"
        lines.append(
            f"system health: {health['score']:g}/100 ({health['status']}): {reasons[:160]}"
        )
    for index, row in enumerate(rows):
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        if colour and index:
            cells[1] = click.style(cells[1], fg=_STATE_COLOURS.get(row[1], "white"))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def system_health(timeout_s: float = 5.0) -> dict[str, Any] | None:
    """The observability actor's score (services, alerts and anomalies), ``None`` without it.

    The registry's own score counts services only; operators asked for the one number that
    also feels firing alerts and anomalies, and a status command must answer without it too.
    """
    import ray

    from ray_enterprise.observability.collector import CENTRAL_NAME, NAMESPACE

    try:
        central = ray.get_actor(CENTRAL_NAME, namespace=NAMESPACE)
        return dict(ray.get(central.get_system_health.remote(), timeout=timeout_s))
    except Exception:  # not booted, restarting or too slow: the service table still stands
        return None


def _connect_existing(address: str | None) -> Any:
    from ray_enterprise.runtime import registry_actor

    join_cluster(address)
    try:
        return registry_actor()
    except NotConnectedError as exc:
        fail(str(exc), 1)


@click.group()
@click.version_option(package_name="ray_enterprise")
def main() -> None:
    """Run a fleet of long-lived services on Ray as one supervised system."""


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False), required=False)
@click.option(
    "--address", default=None, help="Ray address; default RAY_ADDRESS or a new local Ray."
)
@click.option(
    "--restore",
    is_flag=True,
    help="Instead of SPEC, start the application kept in the durable store (after a whole "
    "cluster was lost): each service at the spec last deployed, in dependency order.",
)
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
@click.option("--num-cpus", type=int, default=None, help="CPUs of a local Ray started here.")
@click.option("--refresh", type=float, default=1.0, show_default=True, help="Table refresh (s).")
@click.option("--start-timeout", type=float, default=300.0, show_default=True)
@click.option("--api", is_flag=True, help="Also serve the management HTTP API (Ray Serve).")
@click.option("--api-host", default="127.0.0.1", show_default=True, help="Where --api binds.")
@click.option("--api-port", type=int, default=8000, show_default=True, help="Port of --api.")
def up(
    spec: str | None,
    address: str | None,
    restore: bool,
    duration: float | None,
    num_cpus: int | None,
    refresh: float,
    start_timeout: float,
    api: bool,
    api_host: str,
    api_port: int,
) -> None:
    """Start every service of SPEC in dependency order and supervise it until Ctrl-C.

    With the spec's ``auto_shutdown``, it also ends when its significant services end: exit
    status 4 when they completed, 3 when one FAILED, so that ``ray job submit`` reports it.
    """
    import ray

    from ray_enterprise.runtime import connect, init_ray, shutdown_system
    from ray_enterprise.spec import load_app_spec

    if (spec is None) == (not restore):
        fail("give either SPEC or --restore (not both)", code=2)
    app = None
    if spec is not None:
        try:
            app = load_app_spec(spec)
            for service in app.services:  # fail before touching Ray if a class is missing
                service.load_class()
        except SpecError as exc:
            fail(f"{exc if exc.file else exc.in_file(spec)}\nnothing was started")
    else:
        init_ray(address, num_cpus=num_cpus)  # the KV is filled before the registry boots
        _restore_control_state()
    title = f"[{app.name}]" if app is not None else "[restored]"
    serve_api = _management_api() if api else None
    stop_requested: list[str] = []
    ended: dict[str, Any] | None = None  # the application's auto_shutdown, once it stopped itself

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop_requested.append(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    live = sys.stdout.isatty()
    if not live:  # the workers' log lines Ray echoes here: no colour codes in a log either
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
        # Ray colours its "[repeated Nx across cluster]" notes whatever the stream is.
        sys.stdout = PlainText(sys.stdout)
        sys.stderr = PlainText(sys.stderr)
    system = connect(address, num_cpus=num_cpus)
    registry = system.registry
    click.echo(f"ray address: {ray.get_runtime_context().gcs_address}  (namespace ray_enterprise)")
    if app is not None:
        registry.register_app_sync(app)
    # A terminal gets the table redrawn in place; a pipe or a log gets a line per stage change
    # and the status line when it changes, with no escape codes.
    stages = StageLog()
    pending = registry.actor.start_all.remote(start_timeout)
    began = time.monotonic()
    last = ""
    try:
        if serve_api is not None:
            url = serve_api.start_management_api(host=api_host, port=api_port)
            click.echo(f"management API: {url}  (keys: `ray-enterprise keys create --scope ...`)")
            click.echo(f"status page: {url}/ui  (needs a key with status:read)")
        while not stop_requested:
            ready, _ = ray.wait([pending], timeout=0)
            ended = ray.get(registry.actor.auto_shutdown.remote())
            if ended is not None:
                click.echo(f"the application stopped itself: {ended['reason']}")
                break
            status = registry.get_system_status_sync()
            status["health"] = system_health()
            if live:
                click.clear()
                click.echo(render_table(status, title=title, colour=True))
            else:
                for line in stages.changes(service_stages(status["services"])):
                    click.echo(line)
                summary = render_table(status, title=title).splitlines()[0]
                if summary != last:
                    click.echo(summary)
                last = summary
            if duration is not None and time.monotonic() - began >= duration:
                break
            time.sleep(refresh if ready else min(refresh, 0.25))
    finally:
        reason = stop_requested[0] if stop_requested else "duration elapsed"
        if ended is not None:
            reason = f"auto_shutdown={ended['policy']}"
        click.echo(f"stopping ({reason}): services stop in reverse dependency order")
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if serve_api is not None:
            serve_api.stop_management_api()
        final = registry.stop_all_sync()
        click.echo(render_table(final, title=title))
        shutdown_system()
        ray.shutdown()
    click.echo("all services stopped")
    if ended is not None and ended["failed"]:
        fail(f"a significant service failed: {ended['reason']}", AUTO_SHUTDOWN_FAILED_EXIT)
    if ended is not None:  # completed: not an error, but the job must not read as running on
        sys.exit(AUTO_SHUTDOWN_COMPLETED_EXIT)


def _restore_control_state() -> None:
    """Copy the application kept in the durable store into this cluster's empty control state.

    A cluster that still has it (the GCS came back from Redis, or the application was never
    lost) needs nothing: ``up --restore`` then only supervises what runs.
    """
    from ray_enterprise import _kv
    from ray_enterprise.registry.control_state import SPEC_PREFIX, read_durable, restore_into_kv
    from ray_enterprise.storage import make_engine

    if _kv.scan(SPEC_PREFIX):
        click.echo("the cluster still holds the application's control state: nothing restored")
        return
    import sqlalchemy.exc

    engine = make_engine(create=False)
    where = engine.url.render_as_string(hide_password=True)
    try:
        saved = read_durable(engine)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        # Only the error's first line: the rest is SQLAlchemy's statement and a help link.
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]
        fail(
            f"cannot read the durable store {where} ({type(exc).__name__}: {reason}); "
            "nothing was started: bring the database back (or point RAY_ENTERPRISE_DB_URL at "
            "it) and run `up --restore` again",
            code=2,
        )
    finally:
        engine.dispose()
    if not any(key.startswith(SPEC_PREFIX) for key in saved):
        fail(
            f"nothing to restore: the durable store {where} keeps no "
            "application (`down` and a clean stop erase it); start one with `up SPEC`",
            code=2,
        )
    restored = restore_into_kv(saved)
    click.echo(f"restored from the durable store: {', '.join(restored)}")


def _management_api() -> Any:
    """The module that runs the management API, or a clear failure before anything starts."""
    try:
        from ray_enterprise.serve import api
    except ImportError as exc:
        fail(f"--api needs Ray Serve: pip install 'ray_enterprise[serve]' ({exc.name} missing)")
    return api


@main.command()
@output_options
@click.option("--address", default=None, help="Ray address; default RAY_ADDRESS or 'auto'.")
def status(fmt: str, as_json: bool, address: str | None) -> None:
    """Show every service's state, health, restarts, node and last error."""
    import ray

    handle = _connect_existing(address)
    doc = ray.get(handle.get_system_status.remote())
    doc["health"] = system_health()
    colour = sys.stdout.isatty()
    click.echo(render(doc, chosen_format(fmt, as_json), lambda: render_table(doc, colour=colour)))


@main.command()
@output_options
@click.option("--address", default=None, help="Ray address; default RAY_ADDRESS or 'auto'.")
def services(fmt: str, as_json: bool, address: str | None) -> None:
    """List the registered services: state, replicas, generation, dependencies."""
    import ray

    rows = ray.get(_connect_existing(address).list_services.remote())
    click.echo(render(rows, chosen_format(fmt, as_json), lambda: services_table(rows)))


def services_table(rows: list[dict[str, Any]]) -> str:
    lines = [("SERVICE", "STATE", "REPLICAS", "GENERATION", "DEPENDS ON", "UPGRADING")]
    for svc in rows:
        lines.append(
            (
                svc["name"],
                svc["state"],
                f"{svc.get('replicas', 0)}/{svc.get('desired_replicas', 1)}",
                str(svc["generation"]),
                ",".join(svc["depends_on"]) or "-",
                "yes" if svc.get("upgrading") else "-",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines
    )


@main.command()
@click.option("--address", default=None, help="Ray address; default RAY_ADDRESS or 'auto'.")
def down(address: str | None) -> None:
    """Stop every service in reverse order and remove the system actors."""

    from ray_enterprise.runtime import shutdown_system

    _connect_existing(address)
    shutdown_system()
    click.echo("all services stopped; system actors removed")


def _add_subsystem_commands() -> None:
    """Each subsystem owns its command group; the top level only gathers them."""
    from ray_enterprise.alerts.cli import alerts as alerts_group
    from ray_enterprise.config.cli import config as config_group
    from ray_enterprise.registry import cli as deploy_cli
    from ray_enterprise.security.cli import audit as audit_group
    from ray_enterprise.security.cli import keys as keys_group

    main.add_command(config_group)
    main.add_command(alerts_group)
    main.add_command(keys_group)
    main.add_command(audit_group)
    for command in (deploy_cli.deploy, deploy_cli.rollback, deploy_cli.scale, deploy_cli.history):
        main.add_command(command)


_add_subsystem_commands()


DEBUG_ENV = "RAY_ENTERPRISE_DEBUG"


def run() -> None:
    """Entry point that turns any error into one clear line instead of a traceback.

    Ours say what to do; anything else (Ray unreachable mid-command, a database refusing, a
    file unreadable) is named by its type and message. ``RAY_ENTERPRISE_DEBUG=1`` shows the
    traceback for a bug report.
    """
    try:
        main(standalone_mode=True)
    except RayEnterpriseError as exc:
        # An error raised inside an actor arrives wrapped with its remote traceback.
        fail(str(getattr(exc, "cause", None) or exc))
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        fail(f"{_one_line(exc)} (set {DEBUG_ENV}=1 to see the traceback)", 1)


def _one_line(exc: BaseException) -> str:
    """The innermost cause of a remote error, first line only: its traceback is noise here."""
    cause = getattr(exc, "cause", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0]}" if text else type(cause).__name__


if __name__ == "__main__":
    run()
