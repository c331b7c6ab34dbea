"""add_unit_of_measure_to_parts

Data migration in three steps, so that it works on a table that already has
rows:

1. add ``parts.unit_of_measure`` as NULLable;
2. backfill it: bulk materials (oil, detergent) are measured in liters,
   everything else in pieces;
3. make it NOT NULL.

Steps 2 and 3 use abmigrate's safe operations (``abmigrate.ops``), because
``parts`` is a live table that the API writes to all day:

- ``ops.backfill`` updates the rows in committed batches of 1000 instead of one
  UPDATE holding a lock on every row (and the ADD COLUMN's ACCESS EXCLUSIVE
  lock) until the end; it resumes where it stopped, because its WHERE clause
  selects only the rows still to do;
- ``ops.set_not_null`` first validates ``CHECK (unit_of_measure IS NOT NULL)``
  (a scan that does not block writers), so that ``SET NOT NULL`` needs no scan
  under its ACCESS EXCLUSIVE lock (PostgreSQL 12+).

On SQLite and MariaDB both fall back to the plain operation (SQLite in batch
mode, which recreates the table).

Revision ID: 0b4d8f2c6e35
Revises: e3a7c0d5f914
Create Date: 2025-03-19 13:16:40.008261

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

from abmigrate import ops


# revision identifiers, used by Alembic.
revision: str = "0b4d8f2c6e35"
down_revision: Union[str, Sequence[str], None] = "e3a7c0d5f914"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # The backfill commits as it goes, so on PostgreSQL a run stopped half way (a lock
    # timeout retried by abmigrate, a kill) leaves the column in place: IF NOT EXISTS lets
    # the next run carry on instead of failing on "column already exists".
    op.add_column(
        "parts",
        sa.Column("unit_of_measure", sa.String(length=50), nullable=True),
        if_not_exists=op.get_context().dialect.name == "postgresql",
    )

    # Batched and resumable instead of one UPDATE of the whole table (see the docstring).
    ops.backfill(
        "parts",
        "unit_of_measure = CASE "
        "WHEN part_type = 'bulk_material' THEN 'liters' "
        "ELSE 'pieces' END",
        where="unit_of_measure IS NULL",
        batch_size=1000,
    )

    # NOT NULL proven by a validated CHECK first: no table scan under ACCESS EXCLUSIVE.
    ops.set_not_null("parts", "unit_of_measure", existing_type=sa.String(length=50))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("parts") as batch_op:
        batch_op.drop_column("unit_of_measure")
