"""adapt the legacy events table, when there is one

Revision ID: 6a0000000001
Revises: None

Guarded by a look at the tables, as dagster's first revisions are: on an empty database it
changes nothing, so an empty database has the schema of the base and of this revision alike.
"""

import sqlalchemy as sa
from alembic import op

revision = "6a0000000001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "legacy_events" in sa.inspect(op.get_bind()).get_table_names():
        op.add_column("legacy_events", sa.Column("kind", sa.String(40)))


def downgrade() -> None:
    if "legacy_events" in sa.inspect(op.get_bind()).get_table_names():
        with op.batch_alter_table("legacy_events") as batch:
            batch.drop_column("kind")
