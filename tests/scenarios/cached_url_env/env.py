"""Shaped like prefect's env.py: the engine comes from the application's settings
(app_settings, read once per process), whatever sqlalchemy.url says or whatever connection
is handed to it. With $APP_RUN_LOG set, each online run appends a line to that file: the
process id, the database it reaches, and the process's command line."""

import os
from pathlib import Path

import app_settings
from alembic import context
from app_models import metadata
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import make_url

config = context.config
target_metadata = metadata


def run_migrations_offline() -> None:
    context.configure(
        url=app_settings.DATABASE_URL,
        target_metadata=target_metadata,
        literal_binds=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = app_settings.DATABASE_URL
    log = os.environ.get("APP_RUN_LOG")
    if log:
        command_line = Path("/proc/self/cmdline").read_bytes().replace(b"\0", b" ").decode()
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"{os.getpid()}\t{make_url(url).database}\t{command_line}\n")
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                transaction_per_migration=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
