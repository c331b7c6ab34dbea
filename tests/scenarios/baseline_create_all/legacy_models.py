"""The tables this project's databases start with: made by ``metadata.create_all()`` before
the first revision runs (as mlflow and Alembic's cookbook do), never by a revision."""

import sqlalchemy as sa

metadata = sa.MetaData()

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
)


def make_baseline(connection: sa.Connection) -> None:
    """The same baseline as a callable (``baseline = "legacy_models:make_baseline"``)."""
    metadata.create_all(connection)
