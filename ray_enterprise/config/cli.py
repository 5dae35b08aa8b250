"""`ray-enterprise config`: look at, change and roll back the running configuration.

Every command talks to the cluster's ConfigActor, which only ever hands out redacted documents
for display, so no secret value reaches this process's output, even by mistake.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click
import yaml

from ray_enterprise.cli_common import (
    ADDRESS_HELP,
    chosen_format,
    fail,
    join_cluster,
    output_options,
    render,
)
from ray_enterprise.errors import NotConnectedError

_ADDRESS = click.option("--address", default=None, help=ADDRESS_HELP)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print a machine-readable document.")


def _handle(address: str | None) -> Any:
    from ray_enterprise.config.actor import get_config_handle

    join_cluster(address)
    try:
        return get_config_handle(create=False)
    except ValueError:
        fail(
            str(
                NotConnectedError(
                    "no ConfigActor runs on this Ray cluster; ray_enterprise.connect() "
                    "or load_enterprise_configuration() boots it"
                )
            ),
            1,
        )


def _call(method: Any, *args: Any) -> Any:
    """Run an actor method; its error (already free of secrets) becomes one line, exit 1."""
    import ray

    try:
        return ray.get(method.remote(*args))
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None) or exc
        fail(str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__, 1)


def _dump(value: Any, as_json: bool) -> str:
    if as_json:
        return json.dumps(value, indent=2, sort_keys=True, default=str)
    return yaml.safe_dump(value, sort_keys=True, default_flow_style=False).rstrip()


@click.group("config")
def config() -> None:
    """Show, change and roll back the cluster's configuration."""


@config.command()
@click.argument("section", required=False)
@output_options
@_ADDRESS
def show(section: str | None, fmt: str, as_json: bool, address: str | None) -> None:
    """Print the running configuration (or one SECTION, e.g. cache), secrets masked."""
    doc = _call(_handle(address).show, section)
    if doc["value"] is None:
        fail(f"no config section {section!r}", 1)

    def table() -> str:  # the document itself reads best as YAML under its version
        head = f"# version {doc['version']}" + (f", section {section}" if section else "")
        return head + "\n" + _dump(doc["value"], False)

    click.echo(render(doc, chosen_format(fmt, as_json), table))


@config.command()
@click.option("--limit", type=int, default=None, help="Only the newest N versions.")
@output_options
@_ADDRESS
def history(limit: int | None, fmt: str, as_json: bool, address: str | None) -> None:
    """List applied versions: when, from which source, which sections changed."""
    records = _call(_handle(address).history, limit)

    def table() -> str:
        rows = [("VERSION", "TIME", "SOURCE", "CHANGED")]
        for r in records:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["created_at"]))
            rows.append((str(r["version"]), when, r["source"], ", ".join(r["diff"]) or "-"))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        return "\n".join(
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
        )

    click.echo(render(records, chosen_format(fmt, as_json), table))


@config.command()
@click.argument("a", type=int)
@click.argument("b", type=int)
@_JSON
@_ADDRESS
def diff(a: int, b: int, as_json: bool, address: str | None) -> None:
    """What changed from version A to version B."""
    result = _call(_handle(address).diff, a, b)
    click.echo(_dump(result["sections"], True) if as_json else result["text"])


@config.command()
@click.argument("version", type=int)
@_ADDRESS
def rollback(version: int, address: str | None) -> None:
    """Run VERSION's document again, as a new version, until a source changes."""
    new = _call(_handle(address).rollback, version)
    click.echo(f"rolled back to the document of version {version}: now version {new}")


@config.command("set")
@click.argument("key")
@click.argument("value")
@_ADDRESS
def set_(key: str, value: str, address: str | None) -> None:
    """Write KEY (dotted, e.g. cache.default_ttl_seconds) to the database source.

    VALUE is read as a YAML scalar or flow list/map: 30, true, [a, b]. The change is
    validated first; a refused value is not written. Put -- before a negative VALUE.
    """
    from ray_enterprise.config.sources import parse_env_value

    new = _call(_handle(address).set_value, key, parse_env_value(value))
    click.echo(f"{key} written to the database source: now version {new}")


@config.command()
@click.option("--environment", default=None, help="Judge as if running in this environment.")
@_JSON
@_ADDRESS
def compliance(environment: str | None, as_json: bool, address: str | None) -> None:
    """Check the running configuration against the compliance rules; exit 1 on failures."""
    report = _call(_handle(address).compliance, environment)
    text = report.pop("text")
    click.echo(_dump(report, True) if as_json else text)
    if not report["passed"]:
        sys.exit(1)


@config.command()
@_JSON
@_ADDRESS
def sources(as_json: bool, address: str | None) -> None:
    """Each source's health, what it reads and its last error."""
    rows = _call(_handle(address).sources)
    if as_json:
        click.echo(_dump(rows, True))
        return
    for s in rows:
        state = "ok" if s["ok"] else f"FAILING ({s['consecutive_failures']}x)"
        click.echo(f"{s['layer']:<12} {state:<16} {s['target']}")
        if s["last_error"]:
            click.echo(f"{'':<12} last error: {s['last_error']}")
