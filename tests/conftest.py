"""Session-wide settings: Ray without token auth or usage reports.

No ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` here: keeping a local Ray on loopback is
``init_ray``'s job, tested as a user meets it (tests/integration/test_loopback.py).
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Durable state (SQLite history, API keys, audit) goes to a throwaway home, not the user's.
os.environ.setdefault("RAY_ENTERPRISE_HOME", tempfile.mkdtemp(prefix="ray-enterprise-test-"))
# Anomaly shards learn from every series of the session's shared observability actor and send
# what they find to the alert manager; tests that are about shards boot them explicitly, the
# others must not see alerts or health-score changes from series of unrelated tests.
os.environ.setdefault("RAY_ENTERPRISE_ANOMALY_SHARDS", "0")
