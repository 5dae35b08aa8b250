"""The registry's control state in two places: Ray's GCS key-value store and the durable store.

The GCS KV is where a restarted registry reads its specs, generations and the desired state,
as Ray Serve's controller does; with GCS fault tolerance (Redis) it survives the head node too.
Without it, losing every Ray process loses the KV, so the keys that say *what should run*
(specs at their last deployed version, each service's generation and restarts, the desired
state) are also written to the ``control_state`` table of the durable store (SQLite or
PostgreSQL). ``ray-enterprise up --restore`` copies them back into an empty KV before the
registry boots, and the registry's own recovery does the rest.

Durable writes go through one writer thread, in order, latest value per key, so the reconcile
loop never waits on the database; a write that fails (database down) is kept and retried, and a
newer value for the key replaces it. ``flush`` waits for them, so ``down`` erases the durable
copy before it returns.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from ray_enterprise import _kv
from ray_enterprise.storage import control_state, create_tables, make_engine

logger = logging.getLogger("ray_enterprise.registry")

SPEC_PREFIX = "registry/spec/"  # + service: its spec at the version last deployed
RECORD_PREFIX = "registry/record/"  # + service: its generation, restarts, whether FAILED
DESIRED_KEY = "registry/desired"  # running | stopping | stopped
APP_KEY = "registry/app"  # the application's own settings: {"auto_shutdown": ...}
SHUTDOWN_KEY = "registry/shutdown"  # why the application stopped itself (auto_shutdown)

#: The keys that say what should run; the rest of the registry's keys are live bookkeeping
#: (what was told to the alerts, routes) that a restored application rebuilds by itself.
DURABLE_PREFIXES = (SPEC_PREFIX, RECORD_PREFIX, DESIRED_KEY, APP_KEY)

_RETRY_S = 1.0


def is_durable(key: str) -> bool:
    return key.startswith(DURABLE_PREFIXES)


class DurableMirror:
    """Writes control keys to the ``control_state`` table on a writer thread of its own."""

    def __init__(
        self,
        engine_factory: Callable[[], sa.Engine] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine_factory = engine_factory or (lambda: make_engine(create=False))
        self._engine: sa.Engine | None = None
        self._clock = clock
        self._pending: dict[str, Any] = {}  # key -> its newest value, in arrival order
        self._prefix_deletes: list[str] = []
        self._cond = threading.Condition()
        self._busy = False
        self._thread: threading.Thread | None = None
        self.failures = 0

    def put(self, key: str, value: Any) -> None:
        with self._cond:
            self._pending.pop(key, None)  # re-inserted last: the newest write of a key wins
            self._pending[key] = value
            self._wake()

    def delete_prefix(self, prefix: str) -> None:
        with self._cond:
            for key in [k for k in self._pending if k.startswith(prefix)]:
                del self._pending[key]
            self._prefix_deletes.append(prefix)
            self._wake()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued write reached the database; False on the deadline."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._pending or self._prefix_deletes or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def _wake(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="ray-enterprise-control-state", daemon=True
            )
            self._thread.start()
        self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._prefix_deletes:
                    self._cond.wait()
                writes, self._pending = self._pending, {}
                prefixes, self._prefix_deletes = self._prefix_deletes, []
                self._busy = True
            try:
                self._write(prefixes, writes)
            except Exception as exc:
                self.failures += 1
                logger.warning(
                    "control state not written to the durable store (%s); retrying in %.0f s",
                    type(exc).__name__,
                    _RETRY_S,
                )
                with self._cond:  # put them back, unless a newer write replaced them
                    erased = tuple(self._prefix_deletes)  # or a newer delete erased them
                    for key, value in writes.items():
                        if not key.startswith(erased):
                            self._pending.setdefault(key, value)
                    self._prefix_deletes[:0] = prefixes
                time.sleep(_RETRY_S)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _write(self, prefixes: list[str], writes: Mapping[str, Any]) -> None:
        if self._engine is None:
            self._engine = self._engine_factory()
            create_tables(self._engine)
        now = self._clock()
        with self._engine.begin() as conn:
            for prefix in prefixes:
                conn.execute(control_state.delete().where(control_state.c.key.startswith(prefix)))
            for key, value in writes.items():
                conn.execute(control_state.delete().where(control_state.c.key == key))
                row = {"key": key, "value": json.dumps(value), "updated_at": now}
                conn.execute(control_state.insert().values(**row))


class ControlState:
    """What the registry writes: to the KV always, and to the durable store when it says what
    should run."""

    def __init__(self, mirror: DurableMirror | None = None) -> None:
        self.mirror = mirror or DurableMirror()

    def put(self, key: str, value: Any) -> None:
        _kv.put(key, value)
        if is_durable(key):
            self.mirror.put(key, value)

    def delete_prefix(self, prefix: str) -> None:
        _kv.delete_prefix(prefix)
        self.mirror.delete_prefix(prefix)


def read_durable(engine: sa.Engine) -> dict[str, Any]:
    """Every durable control key with its value (empty when nothing was ever kept)."""
    create_tables(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(control_state.c.key, control_state.c.value)).all()
    return {key: json.loads(value) for key, value in rows}


def restore_into_kv(saved: Mapping[str, Any], *, desired: str = "stopped") -> list[str]:
    """Copy the kept specs, records and app settings into the GCS KV; returns the services
    restored.

    The desired state is written as ``desired`` (``stopped``: the registry adopts nothing and
    ``start_all`` then starts every service in dependency order, as a cold ``up`` would, at
    the spec last deployed).
    """
    services = []
    for key, value in saved.items():
        if key.startswith(SPEC_PREFIX):
            services.append(key.removeprefix(SPEC_PREFIX))
        if key.startswith((SPEC_PREFIX, RECORD_PREFIX, APP_KEY)):  # the app's auto_shutdown too
            _kv.put(key, value)
    _kv.put(DESIRED_KEY, desired)
    return sorted(services)
