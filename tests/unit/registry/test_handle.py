"""ServiceHandle without a cluster: what travels when it is pickled, which names it routes."""

from __future__ import annotations

import copy
import pickle

import pytest

from ray_enterprise.registry.handle import ServiceHandle


def test_it_pickles_as_just_the_service_name() -> None:
    handle = ServiceHandle("api")
    handle._turn = 41  # state of this caller, not of the service
    clone = pickle.loads(pickle.dumps(handle))
    assert clone.service == "api" and clone._turn == 0 and clone._table is None
    assert copy.copy(handle).service == "api"


def test_probes_of_python_and_ray_are_not_taken_for_methods() -> None:
    handle = ServiceHandle("api")
    for probe in ("__len__", "__array__", "_ray_is_cross_language"):
        with pytest.raises(AttributeError):
            getattr(handle, probe)
    assert not hasattr(handle, "__iter__")


def test_user_methods_and_rays_actor_methods_are_routed() -> None:
    handle = ServiceHandle("api")
    for method in ("work", "_re_health", "__ray_call__"):
        assert hasattr(getattr(handle, method), "remote")
    assert hasattr(handle.work.options(num_returns=1), "remote")
