"""What every `ray-enterprise` command group shares: joining a running cluster, failing
clearly, and printing a read command's document as a table, JSON or YAML."""

from __future__ import annotations

import io
import json
import os
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TextIO, TypeVar

import click
import yaml

ADDRESS_HELP = "Ray address; default RAY_ADDRESS or 'auto' (the cluster on this machine)."
FORMATS = ("table", "json", "yaml")
F = TypeVar("F", bound=Callable[..., Any])


def output_options(command: F) -> F:
    """``--format table|json|yaml`` (Ray's CLI has the same) and ``--json``, kept as its alias."""
    command = click.option(
        "--json", "as_json", is_flag=True, help="Print JSON (the same as --format json)."
    )(command)
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="Output format; json and yaml print the same document.",
    )(command)


def chosen_format(fmt: str, as_json: bool) -> str:
    return "json" if as_json else fmt


def render(doc: Any, fmt: str, table: Callable[[], str]) -> str:
    """``doc`` in ``fmt``; ``table`` draws the human view only when that is what was asked."""
    if fmt == "json":
        return json.dumps(doc, indent=2, sort_keys=True, default=str)
    if fmt == "yaml":
        plain = json.loads(json.dumps(doc, default=str))  # what JSON would print, in YAML
        return yaml.safe_dump(plain, sort_keys=True, allow_unicode=True).rstrip("\n")
    return table()


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


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class PlainText(io.TextIOBase):
    """A text stream that drops terminal escape codes before they reach a file or a pipe."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(_ANSI.sub("", text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")
