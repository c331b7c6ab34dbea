"""add_transactions_table

Every stock movement (creation, transfer, consumption, adjustment) is recorded
as a transaction.

Revision ID: b6d1f8e2a947
Revises: 9c3e5a7d1b24
Create Date: 2025-02-03 11:05:37.215870

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "b6d1f8e2a947"
down_revision: Union[str, Sequence[str], None] = "9c3e5a7d1b24"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "transactions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "transaction_type",
            sa.Enum("creation", "transfer", "consumption", "adjustment", name="transactiontype"),
            nullable=False,
        ),
        sa.Column("part_id", sa.Uuid(), nullable=False),
        sa.Column("from_warehouse_id", sa.Uuid(), nullable=True),
        sa.Column("to_warehouse_id", sa.Uuid(), nullable=True),
        sa.Column("machine_id", sa.Uuid(), nullable=True),
        sa.Column("quantity", sa.Numeric(precision=14, scale=3), nullable=False),
        sa.Column("performed_by_user_id", sa.Uuid(), nullable=False),
        sa.Column("transaction_date", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("reference_number", sa.String(length=100), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["from_warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_transactions_from_warehouse_id_warehouses"),
        ),
        sa.ForeignKeyConstraint(
            ["machine_id"], ["machines.id"], name=op.f("fk_transactions_machine_id_machines")
        ),
        sa.ForeignKeyConstraint(["part_id"], ["parts.id"], name=op.f("fk_transactions_part_id_parts")),
        sa.ForeignKeyConstraint(
            ["performed_by_user_id"],
            ["users.id"],
            name=op.f("fk_transactions_performed_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["to_warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_transactions_to_warehouse_id_warehouses"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactions")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("transactions")
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TYPE IF EXISTS transactiontype")
