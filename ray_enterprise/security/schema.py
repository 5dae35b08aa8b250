"""The security tables' own MetaData, apart from :mod:`ray_enterprise.storage`.

Keys and the audit trail live in the same database as the rest of the durable history (one
SQLAlchemy URL), but on their own MetaData so that this package creates exactly its tables and
does not depend on which other subsystems are imported.
"""

from __future__ import annotations

import sqlalchemy as sa

security_metadata = sa.MetaData()

__all__ = ["security_metadata"]
