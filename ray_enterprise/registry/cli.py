"""`ray-enterprise deploy | rollback | scale | history`: change what runs, without downtime.

Each joins the running cluster (``--address``, default RAY_ADDRESS or this machine's) and asks
its registry; the registry does the work, so a command that is interrupted leaves an upgrade
to finish (or roll back) on its own.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from ray_enterprise.cli_common import (
    ADDRESS_HELP,
    chosen_format,
    fail,
    join_cluster,
    output_options,
    render,
)
from ray_enterprise.cli_progress import follow, service_stages
from ray_enterprise.errors import NotConnectedError, SpecError

_ADDRESS = click.option("--address", default=None, help=ADDRESS_HELP)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print a machine-readable document.")


def _new_deployment_id() -> str:
    # Imported here: the history module loads SQLAlchemy, which `--help` must not pay for.
    from ray_enterprise.registry.history import new_deployment_id

    return new_deployment_id()


def _registry(address: str | None) -> Any:
    from ray_enterprise.registry.client import EnterpriseServiceRegistry
    from ray_enterprise.runtime import registry_actor

    join_cluster(address)
    try:
        return EnterpriseServiceRegistry(registry_actor())
    except NotConnectedError as exc:
        fail(str(exc), 1)


def _progress(registry: Any, quiet: bool) -> Any:
    """Stage lines go to stderr, so that stdout stays the result (and ``--json`` parses)."""

    def snapshot() -> dict[str, str]:
        import ray

        phases = ray.get(registry.actor.upgrade_phases.remote(), timeout=10)
        return service_stages(registry.list_services_sync(), phases)

    def echo(line: str) -> None:
        if not quiet:
            click.echo(line, err=True)

    return lambda pending: follow(pending, snapshot, echo)


def _outcome_line(row: dict[str, Any]) -> str:
    took = f" in {row['duration_s']:.1f} s" if "duration_s" in row else ""
    why = f": {row['reason']}" if row.get("reason") else ""
    return (
        f"{row['service']}: {row['kind']} {row['outcome']}{took} "
        f"(generation {row['from_generation']} -> {row['to_generation']}){why}"
    )


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--bake", type=float, default=None, help="Bake period (s); default from config.")
@click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
@_ADDRESS
@_JSON
def deploy(spec: str, bake: float | None, quiet: bool, address: str | None, as_json: bool) -> None:
    """Bring the running services to SPEC: upgrade the changed ones, add the new ones.

    Services are upgraded one at a time in dependency order; a failed gate rolls that one back
    and stops the deploy (exit 1), leaving the rest as they were. While it runs, each change of
    a service's stage (upgrade starting, baking, committed; state; replicas) is a line on stderr.
    """
    from ray_enterprise.spec import load_app_spec

    try:
        app = load_app_spec(spec)
        for service in app.services:
            service.load_class()
    except SpecError as exc:
        fail(f"{exc}\nnothing was changed")
    registry = _registry(address)
    running = {s["name"]: s for s in registry.list_services_sync()}
    current = {s["name"]: s for s in _running_specs(registry, [s.name for s in app.services])}
    new = [s for s in app.services if s.name not in running]
    results: list[dict[str, Any]] = []
    if new:
        registry.register_app_sync(new)
        results.extend({"service": s.name, "kind": "add", "outcome": "registered"} for s in new)
    watch = _progress(registry, quiet)
    for service in app.services:
        if service.name in running and current.get(service.name) != service.to_json():
            pending = registry.actor.upgrade.remote(
                service.name, service.to_json(), bake, _new_deployment_id()
            )
            row = watch(pending)
            results.append(row)
            if row["outcome"] != "done":
                break
    if as_json:
        click.echo(json.dumps(results, indent=2, sort_keys=True, default=str))
    else:
        for row in results:
            if row["kind"] == "add":
                click.echo(f"{row['service']}: added (starts once its dependencies are up)")
            else:
                click.echo(_outcome_line(row))
        if not results:
            click.echo("nothing to do: every service already runs its spec")
    if any(r.get("outcome") == "rolled_back" for r in results):
        sys.exit(1)


def _running_specs(registry: Any, names: list[str]) -> list[dict[str, Any]]:
    """The running specs of ``names`` (those the registry knows)."""
    import ray

    specs: list[dict[str, Any]] = ray.get(registry.actor.get_specs.remote(names))
    return specs


@click.command()
@click.argument("name")
@_ADDRESS
@_JSON
def rollback(name: str, address: str | None, as_json: bool) -> None:
    """Return NAME to the spec its last finished upgrade replaced (blue-green, no bake)."""
    row = _registry(address).rollback_sync(name)
    click.echo(json.dumps(row, indent=2, default=str) if as_json else _outcome_line(row))


@click.command()
@click.argument("name")
@click.argument("replicas", type=click.IntRange(min=1))
@click.option("--wait", type=float, default=120.0, show_default=True, help="Seconds to wait.")
@click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
@_ADDRESS
def scale(name: str, replicas: int, wait: float, quiet: bool, address: str | None) -> None:
    """Run REPLICAS replicas of NAME; callers keep calling through the change.

    Each change of its replicas taking calls is a line on stderr while it runs."""
    registry = _registry(address)
    row = _progress(registry, quiet)(registry.actor.scale.remote(name, replicas, wait))
    click.echo(f"{name}: {row.get('reason', '')}")


@click.command()
@click.argument("name", required=False)
@click.option("--limit", type=int, default=20, show_default=True)
@_ADDRESS
@output_options
def history(name: str | None, limit: int, address: str | None, fmt: str, as_json: bool) -> None:
    """Upgrades, rollbacks and scales of NAME (or of every service), newest first."""
    rows = _registry(address).deployment_history_sync(name, limit)
    click.echo(render(rows, chosen_format(fmt, as_json), lambda: _history_table(rows)))


def _history_table(rows: list[dict[str, Any]]) -> str:
    lines = [("WHEN", "SERVICE", "KIND", "STRATEGY", "GENERATION", "OUTCOME", "REASON")]
    for row in rows:
        lines.append(
            (
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["started_at"])),
                row["service"],
                row["kind"],
                row["strategy"],
                f"{row['from_generation']}->{row['to_generation']}",
                row["outcome"],
                (row["reason"] or "")[:70],
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines
    )
