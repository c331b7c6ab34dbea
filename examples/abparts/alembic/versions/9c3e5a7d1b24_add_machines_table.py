"""add_machines_table

AutoBoss machines sold to customer organizations.

Revision ID: 9c3e5a7d1b24
Revises: 4f2a9c1e7b30
Create Date: 2025-01-21 15:40:02.907113

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "9c3e5a7d1b24"
down_revision: Union[str, Sequence[str], None] = "4f2a9c1e7b30"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "machines",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_organization_id", sa.Uuid(), nullable=False),
        sa.Column("model_type", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("serial_number", sa.String(length=255), nullable=False),
        sa.Column("purchase_date", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_organization_id"],
            ["organizations.id"],
            name=op.f("fk_machines_customer_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_machines")),
        sa.UniqueConstraint("serial_number", name=op.f("uq_machines_serial_number")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("machines")
