"""The one-query PostgreSQL schema digest `check`'s round trip compares between steps: it must
change with every schema difference a downgrade can leave behind, comments included."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from abmigrate.check.roundtrip import schema_digest


def _digest_after(url: str, *statements: str) -> str:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(sa.text(statement))
            return schema_digest(connection)
    finally:
        engine.dispose()


def test_digest_sees_columns_defaults_and_comments(pg_url: str) -> None:
    base = _digest_after(
        pg_url, "CREATE TABLE parts (id integer PRIMARY KEY, name text DEFAULT 'x')"
    )
    assert _digest_after(pg_url) == base  # nothing changed, same digest
    table_comment = _digest_after(pg_url, "COMMENT ON TABLE parts IS 'inventory'")
    assert table_comment != base
    column_comment = _digest_after(pg_url, "COMMENT ON COLUMN parts.name IS 'shown to users'")
    assert column_comment not in (base, table_comment)
    # Undoing both comments restores the digest exactly: what a correct downgrade does.
    assert (
        _digest_after(
            pg_url, "COMMENT ON TABLE parts IS NULL", "COMMENT ON COLUMN parts.name IS NULL"
        )
        == base
    )
    assert _digest_after(pg_url, "ALTER TABLE parts ALTER COLUMN name SET DEFAULT 'y'") != base
