"""Schema per tenant, as in Alembic's cookbook: `-x tenant=NAME` selects the schema; env.py
creates it, sets the search_path on its own connection and keeps the version table there."""

from alembic import context
from sqlalchemy import create_engine, pool

config = context.config


def tenant() -> str:
    name = context.get_x_argument(as_dictionary=True).get("tenant")
    if not name or not name.isidentifier():
        raise SystemExit("pass -x tenant=NAME")
    return name


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        literal_binds=True,
        version_table_schema=tenant(),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    schema = tenant()
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            connection.exec_driver_sql(f'SET search_path TO "{schema}"')
            connection.commit()
            connection.dialect.default_schema_name = schema
            context.configure(connection=connection, version_table_schema=schema)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
