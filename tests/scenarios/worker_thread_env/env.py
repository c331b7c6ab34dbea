"""Shaped like prefect 3's env.py: the online run is an async function handed to
``anyio.from_thread.run`` at module level, which only works from an AnyIO worker thread
(prefect runs its migrations from one); the engine is async, the migrations run through
``connection.run_sync``."""

from alembic import context
from shop_models import metadata
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

config = context.config
target_metadata = metadata


def dry_run_migrations() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        include_schemas=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_schemas=True,
        transaction_per_migration=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def apply_migrations() -> None:
    engine = create_async_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    dry_run_migrations()
else:
    # prefect.utilities.asyncutils.run_async_from_worker_thread(apply_migrations)
    import anyio.from_thread

    anyio.from_thread.run(apply_migrations)
