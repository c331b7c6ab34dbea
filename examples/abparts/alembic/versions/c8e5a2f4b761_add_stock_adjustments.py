"""add_stock_adjustments

Stock-take adjustments: one header per count, one item per counted part.

Revision ID: c8e5a2f4b761
Revises: 7a0f3d6c2e58
Create Date: 2025-02-24 09:31:18.503377

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "c8e5a2f4b761"
down_revision: Union[str, Sequence[str], None] = "7a0f3d6c2e58"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "stock_adjustments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("warehouse_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("adjustment_date", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_stock_adjustments_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["warehouse_id"],
            ["warehouses.id"],
            name=op.f("fk_stock_adjustments_warehouse_id_warehouses"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_adjustments")),
    )
    op.create_table(
        "stock_adjustment_items",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("stock_adjustment_id", sa.Uuid(), nullable=False),
        sa.Column("part_id", sa.Uuid(), nullable=False),
        sa.Column("quantity_before", sa.Numeric(precision=14, scale=3), nullable=False),
        sa.Column("quantity_after", sa.Numeric(precision=14, scale=3), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["part_id"], ["parts.id"], name=op.f("fk_stock_adjustment_items_part_id_parts")
        ),
        sa.ForeignKeyConstraint(
            ["stock_adjustment_id"],
            ["stock_adjustments.id"],
            name=op.f("fk_stock_adjustment_items_stock_adjustment_id_stock_adjustments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_adjustment_items")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("stock_adjustment_items")
    op.drop_table("stock_adjustments")
