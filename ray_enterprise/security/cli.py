"""`ray-enterprise keys` and `ray-enterprise audit`: manage API keys and check the audit trail.

Both work on the database directly (``--db URL``, default the platform's durable store), so
they need no running cluster. A secret is printed exactly once, by ``create`` or ``rotate``, on
stdout and alone on its line (``KEY=$(ray-enterprise keys create ...)`` works); everything else
goes to stderr, and nothing else ever prints a secret: keys are stored only as hashes.
"""

from __future__ import annotations

import getpass
import json
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

import click

from ray_enterprise.cli_common import chosen_format, output_options, render
from ray_enterprise.security.errors import SecurityError
from ray_enterprise.security.scopes import ALL_SCOPES

if TYPE_CHECKING:  # the stores import SQLAlchemy: loaded when a command runs, not for --help
    from ray_enterprise.security.apikeys import ApiKey, ApiKeyStore, IssuedKey
    from ray_enterprise.security.audit import AuditLog

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")

_DB = click.option(
    "--db",
    "db_url",
    default=None,
    help="SQLAlchemy URL; default RAY_ENTERPRISE_DB_URL or ~/.ray_enterprise/state.db.",
)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print a machine-readable document.")


#: The longest lifetime or overlap a key may be given: past it a date no longer prints (a key
#: stored with 999999999999999999w broke `keys list`), and nobody means it.
MAX_DURATION_S = 100 * 365 * 86400


def parse_duration(text: str, *, option: str = "duration", positive: bool = False) -> float:
    """Seconds in ``30d``, ``12h``, ``15m``, ``45s`` or ``2w``, at most 100 years; with
    ``positive``, more than zero. ``option`` names the option in the error."""
    match = _DURATION.match(text)
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration like 30d, 12h, 15m or 45s")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_DURATION_S:
        raise click.BadParameter(
            f"{option} {text!r} is longer than 100 years (36500d); give a shorter one, or "
            "leave --expires out for a key that never expires"
        )
    if positive and seconds <= 0:
        raise click.BadParameter(f"{option} {text!r} must be longer than 0s")
    return seconds


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _who() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in some containers
        return "cli"


@contextmanager
def _stores(db_url: str | None) -> Iterator[tuple[ApiKeyStore, AuditLog]]:
    import sqlalchemy as sa  # here, not at the top: `ray-enterprise --help` must stay quick

    from ray_enterprise.security.apikeys import ApiKeyStore
    from ray_enterprise.security.audit import platform_audit_log
    from ray_enterprise.storage import make_engine

    try:
        engine = make_engine(db_url, create=False)
        audit = platform_audit_log(engine)
        store = ApiKeyStore(engine, audit=audit)
    except sa.exc.SQLAlchemyError as exc:
        where = sa.make_url(db_url).render_as_string(hide_password=True) if db_url else "default"
        _fail(f"cannot open the database ({where}): {type(exc).__name__}; check --db")
    try:
        yield store, audit
    except SecurityError as exc:
        _fail(str(exc))
    finally:
        engine.dispose()


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
    except (OverflowError, OSError, ValueError):  # a key stored before lifetimes were bounded
        return "never (beyond year 9999)"


def _issued(issued: IssuedKey, verb: str, as_json: bool) -> None:
    key = issued.key
    if as_json:
        click.echo(json.dumps({"key": key.to_dict(), "secret": issued.secret}, indent=2))
    else:
        click.echo(issued.secret)
    click.echo(
        f"{verb} key {key.key_id} ({key.name or 'unnamed'}), scopes "
        f"{' '.join(sorted(s.value for s in key.scopes))}, expires {_when(key.expires_at)}.\n"
        "Store the secret now: it is shown only this once and cannot be recovered.",
        err=True,
    )


@click.group("keys")
def keys() -> None:
    """Create, list, rotate and revoke API keys."""


@keys.command()
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(sorted(ALL_SCOPES)),
    help="A scope the key grants; repeat for several.",
)
@click.option("--name", default="", help="What the key is for (shown in lists and the audit).")
@click.option("--expires", default=None, help="Lifetime such as 30d or 12h; default never.")
@_JSON
@_DB
def create(
    scopes: tuple[str, ...], name: str, expires: str | None, as_json: bool, db_url: str | None
) -> None:
    """Create a key; its secret is printed once, on stdout."""
    lifetime = parse_duration(expires, option="--expires", positive=True) if expires else None
    with _stores(db_url) as (store, _):
        issued = store.create(scopes, name=name, expires_in_s=lifetime, actor=_who())
    _issued(issued, "created", as_json)


@keys.command("list")
@output_options
@_DB
def list_keys(fmt: str, as_json: bool, db_url: str | None) -> None:
    """List keys (never their secrets) with their status."""
    now = time.time()
    with _stores(db_url) as (store, _):
        found = store.list_keys()
    doc = [{**k.to_dict(), "status": k.status(now)} for k in found]
    click.echo(render(doc, chosen_format(fmt, as_json), lambda: _key_table(found, now)))


def _key_table(found: list[ApiKey], now: float) -> str:
    rows = [("ID", "NAME", "STATUS", "SCOPES", "CREATED", "EXPIRES")]
    for k in found:
        scopes = ",".join(sorted(s.value for s in k.scopes))
        created, expires = _when(k.created_at), _when(k.expires_at)
        rows.append((k.key_id, k.name or "-", k.status(now), scopes, created, expires))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    return "\n".join(line.rstrip() for line in lines)


@keys.command()
@click.argument("key_id")
@click.option("--overlap", default="1h", help="How long the old key stays valid (e.g. 1h).")
@click.option("--expires", default=None, help="Lifetime of the new key; default the old one's.")
@_JSON
@_DB
def rotate(
    key_id: str, overlap: str, expires: str | None, as_json: bool, db_url: str | None
) -> None:
    """Replace KEY_ID by a new key with the same scopes; prints the new secret once."""
    overlap_s = parse_duration(overlap, option="--overlap")
    lifetime = parse_duration(expires, option="--expires", positive=True) if expires else None
    with _stores(db_url) as (store, _):
        issued = store.rotate(key_id, overlap_s=overlap_s, expires_in_s=lifetime, actor=_who())
    _issued(issued, f"rotated {key_id} (valid {overlap} more) into", as_json)


@keys.command()
@click.argument("key_id")
@_DB
def revoke(key_id: str, db_url: str | None) -> None:
    """Revoke KEY_ID at once."""
    with _stores(db_url) as (store, _):
        key = store.revoke(key_id, actor=_who())
    click.echo(f"revoked key {key.key_id} at {_when(key.revoked_at)}")


@click.group("audit")
def audit() -> None:
    """Check and read the tamper-evident audit trail."""


@audit.command()
@_JSON
@_DB
def verify(as_json: bool, db_url: str | None) -> None:
    """Check every record's MAC and link, and the trail's end against its signed checkpoint;
    exit 1 naming each damaged or missing record."""
    with _stores(db_url) as (_, log):
        report = log.verify()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": report.ok,
                    "checked": report.checked,
                    "anchored_at": report.anchored_at,
                    "checkpoint": report.checkpoint,
                    "problems": [p.__dict__ for p in report.problems],
                },
                indent=2,
            )
        )
    elif report.ok:
        anchor = f", from retention anchor {report.anchored_at}" if report.anchored_at else ""
        click.echo(f"audit trail intact: {report.checked} records verified{anchor}")
        if report.checkpoint is not None:
            click.echo(
                f"the trail reaches the signed checkpoint at record {report.checkpoint['seq']} "
                f"({report.checkpoint['where']})"
            )
        elif report.checked:
            click.echo(
                "warning: no signed checkpoint of this trail on this machine: records cut off "
                "its end cannot be ruled out (verify where the trail is written)",
                err=True,
            )
    else:
        for problem in report.problems:
            click.echo(f"{problem.kind.upper()}: {problem.message}")
        click.echo(f"audit trail DAMAGED: {len(report.problems)} problem(s)", err=True)
    if not report.ok:
        sys.exit(1)


@audit.command("list")
@click.option("--limit", default=50, show_default=True, help="The newest this many records.")
@_JSON
@_DB
def list_records(limit: int, as_json: bool, db_url: str | None) -> None:
    """Print the newest records, oldest first."""
    with _stores(db_url) as (_, log):
        records = log.records(limit=limit)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in records], indent=2))
        return
    for r in records:
        click.echo(
            f"{r.seq:>6}  {_when(r.at)}  {r.actor:<20}  {r.action:<16}  {r.target:<14}  "
            f"{r.outcome:<8}  {r.details}"
        )


__all__ = ["audit", "keys", "parse_duration"]
