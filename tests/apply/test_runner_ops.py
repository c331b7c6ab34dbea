"""abmigrate.ops in real revisions: concurrent index (with an invalid leftover cleaned up),
NOT VALID + VALIDATE constraints, batched backfill and SET NOT NULL through a CHECK."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from runner_helpers import query
from sqlalchemy.pool import NullPool


def test_safe_operations_on_postgres(copy_scenario, run_cli, pg_url):
    root = copy_scenario("runner_ops")
    env = {"DATABASE_URL": pg_url}
    assert run_cli("upgrade", "o1", cwd=root, env=env).exit_code == 0
    # A concurrent build that failed half way leaves an INVALID index behind.
    engine = sa.create_engine(pg_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with pytest.raises(sa.exc.IntegrityError), engine.connect() as connection:
            connection.execute(
                sa.text("CREATE UNIQUE INDEX CONCURRENTLY ix_parts_name ON parts (name)")
            )
    finally:
        engine.dispose()
    assert query(
        pg_url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_parts_name'::regclass"
    ) == [(False,)]

    result = run_cli("upgrade", cwd=root, env=env)
    assert result.exit_code == 0, result
    assert "dropped invalid index ix_parts_name" in result.stderr
    assert "backfill parts: batch 8, 50 rows" in result.stderr
    assert "CREATE INDEX CONCURRENTLY ix_parts_name" in result.stderr
    assert "NOT VALID" in result.stderr and "VALIDATE CONSTRAINT" in result.stderr
    assert query(
        pg_url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_parts_name'::regclass"
    ) == [(True,)]
    constraints = dict(
        query(
            pg_url,
            "SELECT conname, convalidated FROM pg_constraint"
            " WHERE conrelid = 'parts'::regclass AND contype IN ('f', 'c')",
        )
    )
    # Both validated; set_not_null's helper CHECK is gone once the column is NOT NULL.
    assert constraints == {"fk_parts_machine": True, "ck_parts_qty": True}
    assert query(pg_url, "SELECT count(*) FROM parts WHERE unit = 'pcs'") == [(50,)]
    assert query(
        pg_url,
        "SELECT is_nullable FROM information_schema.columns"
        " WHERE table_name = 'parts' AND column_name = 'unit'",
    ) == [("NO",)]

    # The rendered SQL shows what runs (offline mode of the same operations).
    plan = run_cli("plan", "--down", "o1", "--sql", cwd=root, env=env)
    assert plan.exit_code == 0, plan
    assert "DROP INDEX CONCURRENTLY" in plan.stdout


def test_safe_operations_fall_back_on_sqlite(copy_scenario, run_cli, sqlite_url):
    root = copy_scenario("runner_ops")
    result = run_cli("upgrade", cwd=root, env={"DATABASE_URL": sqlite_url})
    assert result.exit_code == 0, result
    engine = sa.create_engine(sqlite_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            columns = {c["name"]: c for c in inspector.get_columns("parts")}
            assert columns["unit"]["nullable"] is False
            assert [fk["name"] for fk in inspector.get_foreign_keys("parts")] == [
                "fk_parts_machine"
            ]
            assert [i["name"] for i in inspector.get_indexes("parts")] == ["ix_parts_name"]
            assert (
                connection.execute(
                    sa.text("SELECT count(*) FROM parts WHERE unit = 'pcs'")
                ).scalar()
                == 50
            )
    finally:
        engine.dispose()
