"""A database per tenant, or a schema per tenant (`-x tenant=NAME`, Alembic's cookbook
recipe): the version table lives with the tenant's tables."""

from alembic import context
from sqlalchemy import create_engine, pool

config = context.config


def tenant() -> str | None:
    name = context.get_x_argument(as_dictionary=True).get("tenant")
    if name is not None and not name.isidentifier():
        raise SystemExit("-x tenant=NAME needs an identifier")
    return name


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        literal_binds=True,
        version_table_schema=tenant(),
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    schema = tenant()
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            if schema is not None:
                connection.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                connection.exec_driver_sql(f'SET search_path TO "{schema}"')
                connection.commit()
                connection.dialect.default_schema_name = schema
            context.configure(
                connection=connection,
                version_table_schema=schema,
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
