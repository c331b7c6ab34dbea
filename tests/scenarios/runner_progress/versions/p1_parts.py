"""parts: 400 rows, one per page, and a predicate that takes 10 ms per row

Revision ID: p1
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "p1"
down_revision = None
branch_labels = None
depends_on = None

# Declared IMMUTABLE so that an index may use it; the sleep makes every index build over
# parts take 400 x 10 ms = 4 s, long enough for the progress monitor to see it.
SLOW_TRUE = """
CREATE FUNCTION slow_true(i integer) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM pg_sleep(0.01);
    RETURN true;
END $$
"""


def upgrade() -> None:
    op.execute(SLOW_TRUE)
    # fillfactor 10 and 800-byte rows: one row per page, so block figures move row by row.
    op.create_table(
        "parts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("pad", sa.Text, nullable=False),
        postgresql_with={"fillfactor": 10},
    )
    op.execute("INSERT INTO parts SELECT i, repeat('x', 800) FROM generate_series(1, 400) AS i")


def downgrade() -> None:
    op.drop_table("parts")
    op.execute("DROP FUNCTION slow_true(integer)")
