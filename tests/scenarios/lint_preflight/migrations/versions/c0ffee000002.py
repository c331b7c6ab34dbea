"""tighten parts and orders

Revision ID: c0ffee000002
Revises: c0ffee000001
"""
from alembic import op
import sqlalchemy as sa

revision = "c0ffee000002"
down_revision = "c0ffee000001"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("SET LOCAL lock_timeout = '2s'")
    op.alter_column("parts", "name", existing_type=sa.String(100), nullable=False)
    op.create_unique_constraint("uq_parts_code", "parts", ["code"])
    op.create_foreign_key(
        "fk_orders_customer", "orders", "customers", ["customer_id"], ["id"]
    )
    op.create_check_constraint("ck_parts_qty", "parts", "qty >= 0")
    op.alter_column("parts", "code", existing_type=sa.String(20), type_=sa.String(5))
    # abmigrate: ignore[AM202] reason: legacy has been unused since v2 and is backed up
    op.drop_column("parts", "legacy")
    op.add_column("customers", sa.Column("email", sa.String(200), nullable=False))


def downgrade():
    op.drop_column("customers", "email")
    op.add_column("parts", sa.Column("legacy", sa.Text()))
    op.alter_column("parts", "code", existing_type=sa.String(5), type_=sa.String(20))
    op.drop_constraint("ck_parts_qty", "parts")
    op.drop_constraint("fk_orders_customer", "orders")
    op.drop_constraint("uq_parts_code", "parts")
    op.alter_column("parts", "name", existing_type=sa.String(100), nullable=True)
