"""Alembic environment for the ABParts backend.

Database URL, in order of precedence:

1. ``config.attributes["connection"]``: an open SQLAlchemy Connection handed over by
   a tool (Alembic cookbook, "Sharing a Connection with a Series of Migration
   Commands"); it is used as is and never closed here. Hand it over outside a
   transaction (``engine.connect()``, not ``engine.begin()``): on PostgreSQL three
   revisions (ADD VALUE; the backfill and VALIDATE CONSTRAINT of abmigrate.ops;
   CREATE INDEX CONCURRENTLY) use ``autocommit_block()``, which must commit the
   migration's own transaction;
2. ``sqlalchemy.url`` from the Config (``alembic.ini`` leaves it empty; tools and
   tests set it with ``cfg.set_main_option``);
3. the ``DATABASE_URL`` environment variable (what docker-compose provides).
"""

from __future__ import annotations

import os
import sys
from logging.config import fileConfig
from pathlib import Path

from alembic import context
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Connection, make_url

# examples/abparts/ (the directory holding the `app` package) must be importable
# however alembic was started (repo root, backend dir, a tool's process).
_PROJECT_DIR = str(Path(__file__).resolve().parent.parent)
if _PROJECT_DIR not in sys.path:
    sys.path.insert(0, _PROJECT_DIR)

from app.database import normalize_url  # noqa: E402
from app.models import Base  # noqa: E402

config = context.config

# A tool embedding Alembic can opt out of logging reconfiguration with
# config.attributes["configure_logger"] = False. Never disable existing loggers.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    """Keep abmigrate's own bookkeeping tables out of autogenerate."""
    return not (type_ == "table" and name is not None and name.startswith("abmigrate_"))


def get_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        url = os.environ.get("DATABASE_URL", "")
    if not url:
        raise RuntimeError(
            "ABParts: no database URL. Set the DATABASE_URL environment variable "
            "(e.g. DATABASE_URL=postgresql+psycopg://user@host/abparts) or sqlalchemy.url "
            "in the Alembic config."
        )
    return normalize_url(url)


def _configure_kwargs(dialect_name: str) -> dict[str, object]:
    return {
        "target_metadata": target_metadata,
        "include_object": include_object,
        # SQLite cannot ALTER most things: autogenerate batch operations there.
        "render_as_batch": dialect_name == "sqlite",
        "transaction_per_migration": True,
        "compare_type": True,
        "compare_server_default": True,
    }


def run_migrations_offline() -> None:
    """Render SQL (``alembic upgrade head --sql``) without a database connection."""
    connection = config.attributes.get("connection")
    if connection is not None:
        dialect_name = connection.dialect.name
        context.configure(
            dialect_name=dialect_name,
            literal_binds=True,
            **_configure_kwargs(dialect_name),
        )
    else:
        url = get_url()
        context.configure(
            url=url,
            literal_binds=True,
            dialect_opts={"paramstyle": "named"},
            **_configure_kwargs(make_url(url).get_backend_name()),
        )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, **_configure_kwargs(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return

    engine = create_engine(get_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            do_run_migrations(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
