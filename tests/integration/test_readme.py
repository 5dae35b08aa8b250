"""The README's Python example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import ray_enterprise

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_python_example_runs(
    registry: ray_enterprise.EnterpriseServiceRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = next(b for b in blocks if "asyncio.run(main())" in b)
    exec(compile(example, str(README), "exec"), {"__name__": "readme_example"})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "hello"
    assert "'healthy': True" in out[1]
    assert out[2] == "healthy"
