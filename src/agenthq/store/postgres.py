"""What only PostgreSQL needs: psycopg 3, a small pool, and time-outs that fail loudly.

Nothing about transactions differs from SQLite at this layer: PostgreSQL writers do not need
a lock up front, and the one place where writers must queue (the event chain head) already
reads its row FOR UPDATE. Statement and lock time-outs turn a stuck database into an error
that names it instead of a process that hangs.
"""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL

from agenthq.errors import StoreError

STATEMENT_TIMEOUT_MS = 60_000
LOCK_TIMEOUT_MS = 30_000


def postgres_engine(url: URL) -> Engine:
    """An engine on psycopg 3 (`postgresql+psycopg://`; a bare `postgresql://` means it too)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise StoreError(
            "PostgreSQL needs psycopg 3: pip install 'agenthq[postgres]' (or 'psycopg[binary]')"
        ) from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    elif url.drivername != "postgresql+psycopg":
        raise StoreError(
            f"agenthq talks to PostgreSQL through psycopg 3; write the URL as "
            f"postgresql+psycopg://… (got {url.drivername}://)"
        )
    options = f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={LOCK_TIMEOUT_MS}"
    return create_engine(
        url,
        pool_size=5,
        max_overflow=10,
        pool_pre_ping=True,  # a restarted server or a dropped connection is noticed, not raised
        connect_args={"options": options, "connect_timeout": 10},
    )
