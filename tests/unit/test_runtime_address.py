"""Which Ray addresses name this machine's loopback (joined with Ray's node IP 127.0.0.1).

``"auto"`` follows the cluster file this machine has, so it is not fixed here.
"""

from __future__ import annotations

import pytest

from ray_enterprise.runtime import _on_loopback


@pytest.mark.parametrize(
    "address", ["127.0.0.1:6379", "ray://127.0.0.1:10001", "localhost:6379", "[::1]:6379"]
)
def test_loopback_addresses(address: str) -> None:
    assert _on_loopback(address)


@pytest.mark.parametrize("address", ["192.0.2.2:6379", "head.example:6379", "10.0.0.5:1"])
def test_other_addresses(address: str) -> None:
    assert not _on_loopback(address)
