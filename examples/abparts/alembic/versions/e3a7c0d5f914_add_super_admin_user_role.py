"""add_super_admin_user_role

Adds 'super_admin' to the user role enum.

PostgreSQL: a value added by ``ALTER TYPE ... ADD VALUE`` cannot be used until
the transaction that added it commits (and before PostgreSQL 12 the statement
cannot run in a transaction block at all), so it runs in an autocommit block;
IF NOT EXISTS makes a re-run (or a value already added by hand in production)
harmless.
Other databases (SQLite): the enum is a plain VARCHAR sized to its longest
value and without a CHECK constraint; it only has to be widened (VARCHAR(5) ->
VARCHAR(11)), in batch mode so that SQLite recreates the table.

Downgrade on PostgreSQL: values cannot be removed from an enum type, so the
type is rebuilt without it. Existing super_admins are demoted to admin first.

Revision ID: e3a7c0d5f914
Revises: 5d9b1e3f6a82
Create Date: 2025-03-10 10:44:12.590336

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "e3a7c0d5f914"
down_revision: Union[str, Sequence[str], None] = "5d9b1e3f6a82"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

OLD_ROLE = sa.Enum("user", "admin", name="userrole")
NEW_ROLE = sa.Enum("user", "admin", "super_admin", name="userrole")


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_context().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.execute("ALTER TYPE userrole ADD VALUE IF NOT EXISTS 'super_admin'")
    else:
        with op.batch_alter_table("users") as batch_op:
            batch_op.alter_column(
                "role", existing_type=OLD_ROLE, type_=NEW_ROLE, existing_nullable=False
            )


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("UPDATE users SET role = 'admin' WHERE role = 'super_admin'")
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TYPE userrole RENAME TO userrole_old")
        op.execute("CREATE TYPE userrole AS ENUM ('user', 'admin')")
        op.execute(
            "ALTER TABLE users ALTER COLUMN role TYPE userrole USING role::text::userrole"
        )
        op.execute("DROP TYPE userrole_old")
    else:
        with op.batch_alter_table("users") as batch_op:
            batch_op.alter_column(
                "role", existing_type=NEW_ROLE, type_=OLD_ROLE, existing_nullable=False
            )
