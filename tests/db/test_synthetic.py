"""Synthetic rows satisfy foreign keys, uniques (also over several foreign keys) and enums."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from abmigrate.db.synthetic import fill


def build(url: str) -> None:
    metadata = sa.MetaData()
    sa.Table(
        "warehouses",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(4), nullable=False, unique=True),
        sa.Column(
            "kind", sa.Enum("main", "satellite", name="warehousekind", create_constraint=True)
        ),
    )
    sa.Table(
        "parts",
        metadata,
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("number", sa.String(20), nullable=False, unique=True),
        sa.Column("price", sa.Numeric(10, 2), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("parent_id", sa.Uuid, sa.ForeignKey("parts.id"), nullable=True),
    )
    sa.Table(
        "inventory",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("warehouse_id", sa.Integer, sa.ForeignKey("warehouses.id"), nullable=False),
        sa.Column("part_id", sa.Uuid, sa.ForeignKey("parts.id"), nullable=False),
        sa.Column("quantity", sa.Numeric(14, 3), nullable=False),
        sa.Column("status", sa.String(10), server_default="ok", nullable=False),
        sa.UniqueConstraint("warehouse_id", "part_id"),
        sa.CheckConstraint("quantity >= 0"),
    )
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "pg_url", "mariadb_url"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'synthetic.db'}"
    return str(request.getfixturevalue(request.param))


def test_rows_respect_keys_uniques_and_enums(url: str) -> None:
    build(url)
    report = fill(url, 30)
    assert report.skipped == {}
    assert report.rows == {"warehouses": 30, "parts": 30, "inventory": 30}
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            kinds = set(connection.execute(sa.text("SELECT kind FROM warehouses")).scalars())
            assert kinds == {"main", "satellite"}
            orphans = connection.execute(
                sa.text(
                    "SELECT count(*) FROM inventory i LEFT JOIN parts p ON p.id = i.part_id"
                    " WHERE p.id IS NULL"
                )
            ).scalar()
            assert orphans == 0
            pairs = connection.execute(
                sa.text("SELECT count(DISTINCT warehouse_id * 1000 + 0) FROM inventory")
            ).scalar()
            assert pairs and pairs >= 1
            statuses = set(connection.execute(sa.text("SELECT status FROM inventory")).scalars())
            assert statuses == {"ok"}  # server defaults are left to the database
    finally:
        engine.dispose()
