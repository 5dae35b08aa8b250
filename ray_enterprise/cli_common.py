"""What every `ray-enterprise` command group shares: joining a running cluster, failing clearly."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click

ADDRESS_HELP = "Ray address; default RAY_ADDRESS or 'auto' (the cluster on this machine)."


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr and an exit code, instead of a traceback."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def join_cluster(address: str | None) -> None:
    """Join the Ray cluster a command talks to; exit 1 with a hint when there is none.

    A command's output is its own (``--json`` is parsed): workers' log lines stay in their
    log files instead of being echoed here.
    """
    from ray_enterprise.runtime import init_ray

    try:
        init_ray(address or os.environ.get("RAY_ADDRESS") or "auto", log_to_driver=False)
    except ConnectionError as exc:
        fail(f"cannot reach a Ray cluster ({exc}); pass --address or start one", 1)
