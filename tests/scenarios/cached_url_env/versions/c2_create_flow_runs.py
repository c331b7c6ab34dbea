"""create flow_runs

Revision ID: c2
Revises: c1
"""
import sqlalchemy as sa
from alembic import op

revision = "c2"
down_revision = "c1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flow_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("flow_id", sa.Integer, sa.ForeignKey("flows.id"), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
    )
    op.create_index("ix_flow_runs_flow_id", "flow_runs", ["flow_id"])


def downgrade() -> None:
    op.drop_index("ix_flow_runs_flow_id", table_name="flow_runs")
    op.drop_table("flow_runs")
