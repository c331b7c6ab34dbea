"""An env.py that runs only on a connection handed over in config.attributes, offline too,
and raises without one (dagster's: its storage code always hands one over)."""

import sqlalchemy as sa
from alembic import context

target_metadata = sa.MetaData()
sa.Table("notes", target_metadata, sa.Column("id", sa.Integer, primary_key=True))

connection = context.config.attributes.get("connection")
if connection is None:
    raise Exception("No connection set in alembic config: read the README.")

if context.is_offline_mode():
    context.configure(
        url=connection.engine.url, target_metadata=target_metadata, literal_binds=True
    )
else:
    context.configure(connection=connection, target_metadata=target_metadata)
with context.begin_transaction():
    context.run_migrations()
