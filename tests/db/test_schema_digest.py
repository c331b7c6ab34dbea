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


def test_digest_sees_each_index_its_kind_columns_and_predicate(pg_url: str) -> None:
    base = _digest_after(pg_url, "CREATE TABLE parts (id integer PRIMARY KEY, name text, n int)")
    seen = {base}
    for index in (
        "CREATE INDEX ix_parts ON parts (name)",
        "CREATE UNIQUE INDEX ix_parts ON parts (name)",
        "CREATE INDEX ix_parts ON parts USING hash (name)",
        "CREATE INDEX ix_parts ON parts (n)",
        "CREATE INDEX ix_parts ON parts (name) WHERE n > 0",
        "CREATE INDEX ix_parts ON parts (lower(name))",
    ):
        digest = _digest_after(pg_url, index)
        assert digest not in seen, index
        seen.add(digest)
        assert _digest_after(pg_url, "DROP INDEX ix_parts") == base
    # An index in another schema is not this schema's difference.
    other = _digest_after(
        pg_url,
        "CREATE SCHEMA other",
        "CREATE TABLE other.parts (id integer, name text)",
        "CREATE INDEX ix_other ON other.parts (name)",
    )
    assert other == base
