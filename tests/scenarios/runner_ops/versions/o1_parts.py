"""parts and machines

Revision ID: o1
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "o1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("machines", sa.Column("id", sa.Integer, primary_key=True))
    parts = op.create_table(
        "parts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("machine_id", sa.Integer),
        sa.Column("name", sa.String(50)),
        sa.Column("unit", sa.String(10)),
        sa.Column("qty", sa.Integer, nullable=False, server_default="0"),
    )
    op.bulk_insert(sa.table("machines", sa.column("id", sa.Integer)), [{"id": i} for i in range(1, 4)])
    op.bulk_insert(
        parts,
        [{"id": i, "machine_id": 1 + i % 3, "name": f"part {i % 10}", "qty": i} for i in range(1, 51)],
    )


def downgrade() -> None:
    op.drop_table("parts")
    op.drop_table("machines")
