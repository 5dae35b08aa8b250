"""`ray-enterprise alerts`: list, acknowledge, silence and look back at alerts.

Every command talks to the running alert actor (``alertmanager`` in namespace
``ray_enterprise``) on the cluster given by ``--address``, ``RAY_ADDRESS`` or the local one; it
never starts one, because a CLI that silently booted an empty alert manager would show "no
alerts" on a cluster that has some. Tables are views over the same JSON that ``--json`` prints.

    python -m ray_enterprise.alerts.cli list --json
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Sequence
from datetime import datetime, timezone
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
from ray_enterprise.errors import RayEnterpriseError


def _alert_actor(address: str | None) -> Any:
    """Join the cluster and find the alert actor; a clear error when either is missing."""
    from ray_enterprise.alerts.actor import get_alert_handle

    join_cluster(address)
    try:
        return get_alert_handle(create=False)
    except ValueError:
        fail(
            "no alert manager runs on this Ray cluster; start the system with "
            "ray_enterprise.connect() or `ray-enterprise up SPEC`",
            1,
        )


def _call(method: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the actor; its errors (unknown id, bad matcher) become one line, exit code 1."""
    import ray

    try:
        return ray.get(method.remote(*args, **kwargs), timeout=60)
    except RayEnterpriseError as exc:
        fail(str(getattr(exc, "cause", None) or exc), 1)


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    return "\n".join(line.rstrip() for line in lines)


def render_alerts(alerts: list[dict[str, Any]]) -> str:
    """Open (or resolved) alerts as a table, one row each."""
    if not alerts:
        return "no alerts"
    rows = [("ID", "STATE", "SEVERITY", "ALERT", "SERVICE", "SINCE (UTC)", "ACK BY", "SUMMARY")]
    for a in alerts:
        state = a["state"] + (" (silenced)" if a.get("suppressed") else "")
        rows.append(
            (
                a["id"],
                state,
                a["severity"],
                a["labels"].get("alertname", ""),
                a["labels"].get("service", "-"),
                _when(a["starts_at"]),
                a.get("acknowledged_by") or "-",
                a["annotations"].get("summary", "")[:60],
            )
        )
    return _table(rows)


def _by() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "cli"


@click.group()
def alerts() -> None:
    """List, acknowledge and silence alerts; show their history and trends."""


@alerts.command("list")
@output_options
@click.option(
    "--state",
    type=click.Choice(["firing", "acknowledged", "resolved"]),
    default=None,
    help="Only alerts in this state (default: every open alert).",
)
@click.option("--service", default=None, help="Only alerts of this service.")
@click.option("--address", default=None, help=ADDRESS_HELP)
def list_alerts(
    fmt: str, as_json: bool, state: str | None, service: str | None, address: str | None
) -> None:
    """Show alerts, most severe and oldest first."""
    handle = _alert_actor(address)
    found = _call(handle.alerts, state, service=service)
    click.echo(render(found, chosen_format(fmt, as_json), lambda: render_alerts(found)))


@alerts.command()
@click.argument("alert_id")
@click.option("--by", default=None, help="Who takes it (default: your login name).")
@click.option("--reason", default="", help="Why, for the history.")
@click.option("--address", default=None, help=ADDRESS_HELP)
def ack(alert_id: str, by: str | None, reason: str, address: str | None) -> None:
    """Acknowledge ALERT_ID: escalation and repeats stop until it is unacknowledged."""
    handle = _alert_actor(address)
    alert = _call(handle.acknowledge, alert_id, by or _by(), reason)
    click.echo(
        f"acknowledged {alert['id']} ({alert['labels']['alertname']}) by {alert['acknowledged_by']}"
    )


@alerts.command()
@click.argument("alert_id")
@click.option("--by", default=None, help="Who hands it back (default: your login name).")
@click.option("--reason", default="", help="Why, for the history.")
@click.option("--address", default=None, help=ADDRESS_HELP)
def unack(alert_id: str, by: str | None, reason: str, address: str | None) -> None:
    """Hand ALERT_ID back: escalation resumes with its next step."""
    handle = _alert_actor(address)
    alert = _call(handle.unacknowledge, alert_id, by or _by(), reason)
    click.echo(f"unacknowledged {alert['id']} ({alert['labels']['alertname']})")


@alerts.command(short_help="Mute alerts matching MATCHERS for a while.")
@click.argument("matchers")
@click.option("--for", "duration", required=True, help="How long, e.g. 30m, 1h, 2d.")
@click.option("--comment", default="", help="Why, for the people who see it muted.")
@click.option("--by", default=None, help="Who silences (default: your login name).")
@click.option("--address", default=None, help=ADDRESS_HELP)
def silence(
    matchers: str, duration: str, comment: str, by: str | None, address: str | None
) -> None:
    """Mute alerts matching MATCHERS, e.g. 'service="api", severity=~"low|medium"'."""
    handle = _alert_actor(address)
    made = _call(handle.silence, matchers, duration, by or _by(), comment)
    click.echo(
        f"silence {made['id']} on {', '.join(made['matchers'])} until {_when(made['ends_at'])} UTC"
    )


@alerts.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--address", default=None, help=ADDRESS_HELP)
def silences(as_json: bool, address: str | None) -> None:
    """Show silences that have not ended."""
    handle = _alert_actor(address)
    found = _call(handle.silences)
    if as_json:
        click.echo(json.dumps(found, indent=2, sort_keys=True))
        return
    if not found:
        click.echo("no silences")
        return
    rows = [("ID", "MATCHERS", "UNTIL (UTC)", "BY", "COMMENT")]
    for s in found:
        rows.append(
            (s["id"], ", ".join(s["matchers"]), _when(s["ends_at"]), s["created_by"], s["comment"])
        )
    click.echo(_table(rows))


@alerts.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--address", default=None, help=ADDRESS_HELP)
def rules(as_json: bool, address: str | None) -> None:
    """Metric rule series that are pending (their `for` not yet passed) or firing."""
    found = _call(_alert_actor(address).rule_states)
    if as_json:
        click.echo(json.dumps(found, indent=2, sort_keys=True))
        return
    if not found:
        click.echo("no rule is pending or firing")
        return
    rows = [("RULE", "STATE", "SINCE (UTC)", "VALUE", "SERIES")]
    for r in found:
        state = r["state"] + (" (keep_firing_for)" if r["keep_firing_since"] is not None else "")
        value = "-" if r["value"] is None else f"{r['value']:g}"
        series = ", ".join(f"{k}={v}" for k, v in r["series"].items())
        rows.append((r["rule"], state, _when(r["active_since"]), value, series))
    click.echo(_table(rows))


@alerts.command()
@click.argument("silence_id")
@click.option("--address", default=None, help=ADDRESS_HELP)
def expire(silence_id: str, address: str | None) -> None:
    """End silence SILENCE_ID now."""
    handle = _alert_actor(address)
    _call(handle.expire_silence, silence_id)
    click.echo(f"silence {silence_id} expired")


@alerts.command(short_help="Recent changes, trends, MTTA and MTTR.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option("--days", type=float, default=7.0, show_default=True, help="How far back.")
@click.option("--limit", type=int, default=50, show_default=True, help="Events to show.")
@click.option("--address", default=None, help=ADDRESS_HELP)
def history(as_json: bool, days: float, limit: int, address: str | None) -> None:
    """Recent state changes, alerts per day/service/severity, MTTA and MTTR."""
    handle = _alert_actor(address)
    events = _call(handle.history, days, limit=limit)
    trends = _call(handle.trends, days)
    if as_json:
        click.echo(json.dumps({"events": events, "trends": trends}, indent=2, sort_keys=True))
        return
    rows = [("WHEN (UTC)", "CHANGE", "ALERT ID", "ALERT", "SERVICE", "SEVERITY", "BY", "REASON")]
    for e in events:
        rows.append(
            (
                _when(e["at"]),
                e["kind"],
                e["alert_id"],
                e["alertname"],
                e["service"] or "-",
                e["severity"],
                e["actor"] or "-",
                (e["reason"] or "")[:40],
            )
        )
    click.echo(_table(rows) if events else f"no alert changes in the last {days:g} days")
    click.echo("")
    counts = [("DAY", "SERVICE", "SEVERITY", "FIRED")]
    counts += [
        (r["day"], r["service"] or "-", r["severity"], str(r["count"])) for r in trends["by_day"]
    ]
    if len(counts) > 1:
        click.echo(_table(counts))
    click.echo(
        f"mean time to acknowledge: {_duration(trends['mean_time_to_acknowledge_ms'])}   "
        f"mean time to resolve: {_duration(trends['mean_time_to_resolve_ms'])}"
    )


def _duration(ms: float | None) -> str:
    if ms is None:
        return "-"
    seconds = ms / 1000
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def run() -> None:
    """Entry point of ``python -m ray_enterprise.alerts.cli``."""
    alerts(standalone_mode=True)


if __name__ == "__main__":
    run()
