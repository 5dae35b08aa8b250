"""`python -m ray_enterprise` is the `ray-enterprise` command."""

from ray_enterprise.cli import run

run()
