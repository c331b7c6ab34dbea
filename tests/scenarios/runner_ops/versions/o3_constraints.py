"""foreign key and check, added NOT VALID then validated

Revision ID: o3
Revises: o2
"""
from alembic import op

from abmigrate import ops

revision = "o3"
down_revision = "o2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ops.add_foreign_key("fk_parts_machine", "parts", "machines", ["machine_id"], ["id"])
    ops.add_check("ck_parts_qty", "parts", "qty >= 0")


def downgrade() -> None:
    with op.batch_alter_table("parts") as batch:
        batch.drop_constraint("ck_parts_qty", type_="check")
        batch.drop_constraint("fk_parts_machine", type_="foreignkey")
