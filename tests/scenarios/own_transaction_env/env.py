"""Shaped like Arize Phoenix's env.py: the connection in config.attributes["connection"]
when given (else an engine from sqlalchemy.url); any transaction open on it is committed,
then env.py begins its own around the whole run (Alembic sees an external transaction and
runs every revision inside it) and commits it at the end."""

from alembic import context
from sqlalchemy import Connection, engine_from_config, pool

config = context.config


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        literal_binds=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations(connection: Connection) -> None:
    if connection.in_transaction():
        connection.commit()
    transaction = connection.begin()
    try:
        context.configure(
            connection=connection, transactional_ddl=True, transaction_per_migration=True
        )
        context.run_migrations()
        transaction.commit()
    except Exception:
        transaction.rollback()
        raise


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection", None)
    if connectable is not None:
        run_migrations(connectable)
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section) or {},
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    try:
        with engine.connect() as connection:
            run_migrations(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
