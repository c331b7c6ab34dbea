"""Engine and session for the ABParts API, built from ``DATABASE_URL``.

Nothing is created at import time; ``get_engine()`` builds (and caches) the
engine on first use, so importing the models (as Alembic's env.py does) never
needs a database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_DATABASE_URL = "sqlite:///abparts_dev.db"


def normalize_url(url: str) -> str:
    """Map driver-less PostgreSQL URLs (``postgres://``, ``postgresql://``) to psycopg 3.

    The backend depends on psycopg 3, not psycopg2 (SQLAlchemy's default driver).
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed.render_as_string(hide_password=False)
    return url


def get_database_url() -> str:
    return normalize_url(os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL)


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    return create_engine(get_database_url(), pool_pre_ping=True)


def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


def get_db() -> Iterator[Session]:
    """FastAPI dependency: one session per request."""
    with get_sessionmaker()() as session:
        yield session
