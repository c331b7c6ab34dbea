"""merge_migration_heads

Merge the customer-orders branch (2e7c4b9a0d13) and the procurement branch
(7a0f3d6c2e58 -> c8e5a2f4b761), which were developed in parallel and left the
repository with two heads ("Multiple head revisions are present").

Revision ID: 5d9b1e3f6a82
Revises: 2e7c4b9a0d13, c8e5a2f4b761
Create Date: 2025-03-03 08:58:26.441705

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "5d9b1e3f6a82"
down_revision: Union[str, Sequence[str], None] = ("2e7c4b9a0d13", "c8e5a2f4b761")
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    pass


def downgrade() -> None:
    """Downgrade schema."""
    pass
