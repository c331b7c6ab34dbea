"""add_unit_of_measure_to_parts

Data migration in three steps, so that it works on a table that already has
rows:

1. add ``parts.unit_of_measure`` as NULLable;
2. backfill it: bulk materials (oil, detergent) are measured in liters,
   everything else in pieces;
3. make it NOT NULL (batch mode, so that SQLite recreates the table).

Revision ID: 0b4d8f2c6e35
Revises: e3a7c0d5f914
Create Date: 2025-03-19 13:16:40.008261

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "0b4d8f2c6e35"
down_revision: Union[str, Sequence[str], None] = "e3a7c0d5f914"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("parts", sa.Column("unit_of_measure", sa.String(length=50), nullable=True))

    op.execute(
        "UPDATE parts SET unit_of_measure = CASE "
        "WHEN part_type = 'bulk_material' THEN 'liters' "
        "ELSE 'pieces' END "
        "WHERE unit_of_measure IS NULL"
    )

    with op.batch_alter_table("parts") as batch_op:
        batch_op.alter_column(
            "unit_of_measure", existing_type=sa.String(length=50), nullable=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("parts") as batch_op:
        batch_op.drop_column("unit_of_measure")
