"""create annotations (bigserial), add spans.kind

Revision ID: t3
Revises: t2
"""
import sqlalchemy as sa
from alembic import op

revision = "t3"
down_revision = "t2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "annotations",
        sa.Column("id", sa.BigInteger, primary_key=True),  # BIGSERIAL on PostgreSQL
        sa.Column("span_id", sa.BigInteger, sa.ForeignKey("spans.id"), nullable=False),
        sa.Column("label", sa.String(50)),
    )
    op.add_column("spans", sa.Column("kind", sa.String(20), nullable=False, server_default="llm"))


def downgrade() -> None:
    with op.batch_alter_table("spans") as batch:
        batch.drop_column("kind")
    op.drop_table("annotations")
