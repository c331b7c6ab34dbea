"""Data preflight against real databases seeded with conflicting rows, through ``plan``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

SEED = [
    "INSERT INTO customers (id, name) VALUES (1, 'acme'), (2, 'globex')",
    "INSERT INTO parts (id, name, code, qty, legacy) VALUES"
    " (1, 'bolt', 'AAA', 5, 'x'), (2, NULL, 'AAA', -1, 'x'), (3, NULL, 'AAA', 3, NULL),"
    " (4, 'nut', 'BBB', -2, 'y'), (5, 'washer', 'BBB', 1, 'z'), (6, 'gear', 'LONGCODE', 0, NULL),"
    " (7, 'pin', NULL, NULL, NULL)",
    "INSERT INTO orders (id, customer_id) VALUES (1, 1), (2, 99), (3, 99), (4, NULL)",
]


def _execute(url: str, statements: list[str]) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def _snapshot(url: str) -> dict[str, Any]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            tables = sorted(inspect(connection).get_table_names())
            return {
                table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar()
                for table in tables
            }
    finally:
        engine.dispose()


def _seeded(run_cli, copy_scenario, url: str) -> Path:
    project = copy_scenario("lint_preflight")
    up = run_cli("--alembic-ini", project / "alembic.ini", "--url", url, "upgrade", "c0ffee000001")
    assert up.exit_code == 0, up
    _execute(url, SEED)
    return project


def _plan(run_cli, project: Path, url: str, *args: str) -> dict[str, Any]:
    result = run_cli(
        "--alembic-ini", project / "alembic.ini", "--url", url, "plan", *args, "--format", "json"
    )
    assert result.exit_code == 0, result
    return dict(json.loads(result.stdout))


def _by_check(step: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["check"]: check for check in step["preflight"]}


def test_preflight_predicts_each_conflict_on_postgresql(run_cli, copy_scenario, pg_url) -> None:
    project = _seeded(run_cli, copy_scenario, pg_url)
    before = _snapshot(pg_url)
    plan = _plan(run_cli, project, pg_url, "c0ffee000002")
    assert _snapshot(pg_url) == before  # plan is read-only: no table, no row changed
    (step,) = plan["steps"]
    checks = _by_check(step)
    expected = {
        "not_null": 2,  # parts.name NULL in rows 2 and 3
        "unique_duplicates": 5,  # AAA x3, BBB x2
        "foreign_key_orphans": 2,  # orders 2 and 3 name customer 99
        "check_violations": 2,  # qty -1 and -2
        "type_narrowing": 1,  # 'LONGCODE' does not fit varchar(5)
        "drop_column_values": 4,  # parts.legacy holds 4 values
        "not_null_column_without_default": 2,  # customers has 2 rows
    }
    assert {name: check["count"] for name, check in checks.items()} == expected
    assert checks["not_null"]["sample"] == [2, 3]
    assert checks["foreign_key_orphans"]["sample"] == [2, 3]
    assert checks["type_narrowing"]["sample"] == [6]
    assert sorted(checks["unique_duplicates"]["sample"]) == [["AAA", 3], ["BBB", 2]]
    assert checks["not_null"]["ok"] is False
    assert checks["drop_column_values"]["ok"] is True  # data loss, not a failure
    assert checks["not_null"]["columns"] == ["name"] and checks["not_null"]["table"] == "parts"
    assert checks["not_null"]["offending_rows"] == 2
    # findings ride along on the same step (the suppressed AM202 does not)
    codes = {finding["code"] for finding in step["findings"]}
    assert {"AM107", "AM109", "AM304"} <= codes and "AM202" not in codes


def test_preflight_reports_clean_data_as_ok(run_cli, copy_scenario, pg_url) -> None:
    project = copy_scenario("lint_preflight")
    up = run_cli(
        "--alembic-ini", project / "alembic.ini", "--url", pg_url, "upgrade", "c0ffee000001"
    )
    assert up.exit_code == 0, up
    plan = _plan(run_cli, project, pg_url, "c0ffee000002")
    checks = _by_check(plan["steps"][0])
    assert all(check["count"] == 0 and check["ok"] for check in checks.values()), checks


def test_downgrade_plan_counts_the_rows_it_deletes(run_cli, copy_scenario, pg_url) -> None:
    project = _seeded(run_cli, copy_scenario, pg_url)
    plan = _plan(run_cli, project, pg_url, "base", "--down")
    drops = {
        check["table"]: check["count"]
        for check in plan["steps"][0]["preflight"]
        if check["check"] == "drop_table_rows"
    }
    assert drops == {"orders": 4, "parts": 7, "customers": 2}


def test_preflight_on_sqlite(run_cli, copy_scenario, sqlite_url) -> None:
    project = _seeded(run_cli, copy_scenario, sqlite_url)
    before = _snapshot(sqlite_url)
    checks = _by_check(_plan(run_cli, project, sqlite_url, "c0ffee000002")["steps"][0])
    assert _snapshot(sqlite_url) == before
    for name, count in {
        "not_null": 2,
        "unique_duplicates": 5,
        "foreign_key_orphans": 2,
        "check_violations": 2,
        "type_narrowing": 1,
    }.items():
        assert checks[name]["count"] == count, checks[name]


def test_preflight_on_mariadb(run_cli, copy_scenario, mariadb_url) -> None:
    project = _seeded(run_cli, copy_scenario, mariadb_url)
    before = _snapshot(mariadb_url)
    checks = _by_check(_plan(run_cli, project, mariadb_url, "c0ffee000002")["steps"][0])
    assert _snapshot(mariadb_url) == before
    for name, count in {
        "not_null": 2,
        "unique_duplicates": 5,
        "foreign_key_orphans": 2,
        "check_violations": 2,
        "type_narrowing": 1,
        "drop_column_values": 4,
    }.items():
        assert checks[name]["count"] == count, checks[name]


def test_plan_on_a_missing_sqlite_file_creates_nothing(
    run_cli, copy_scenario, tmp_path: Path
) -> None:
    project = copy_scenario("lint_preflight")
    url = f"sqlite:///{tmp_path / 'absent.db'}"
    plan = _plan(run_cli, project, url, "c0ffee000002")
    assert plan["steps"][0]["preflight"] == []
    assert plan["steps"][1]["findings"]
    assert not (tmp_path / "absent.db").exists()


def test_a_backfill_before_set_not_null_is_not_predicted_to_fail() -> None:
    from abmigrate.lint.model import Statement
    from abmigrate.lint.preflight import checks_for
    from abmigrate.lint.sql import parse_statements

    sql = (
        "UPDATE parts SET name = 'unnamed' WHERE name IS NULL;"
        "ALTER TABLE parts ALTER COLUMN name SET NOT NULL;"
        "ALTER TABLE parts ALTER COLUMN code SET NOT NULL"
    )
    statements = [
        Statement(index, text, node, None, True)
        for index, (text, node, _) in enumerate(parse_statements(sql))
    ]
    checks = list(checks_for(statements, direction="upgrade"))
    assert [(c.check, c.columns) for c in checks] == [("not_null", ["code"])]


def test_a_partial_unique_index_counts_only_its_rows() -> None:
    from abmigrate.lint.model import Statement
    from abmigrate.lint.preflight import checks_for
    from abmigrate.lint.sql import parse_statements

    sql = "CREATE UNIQUE INDEX uq ON parts (code) WHERE qty > 0"
    statements = [Statement(0, text, node, None, True) for text, node, _ in parse_statements(sql)]
    (check,) = checks_for(statements, direction="upgrade")
    assert check.where == "{col0} IS NOT NULL AND (qty > 0)"


def test_upgrade_refuses_when_preflight_predicts_failure(run_cli, copy_scenario, pg_url) -> None:
    project = _seeded(run_cli, copy_scenario, pg_url)
    args = ("--alembic-ini", project / "alembic.ini", "--url", pg_url)
    refused = run_cli(*args, "upgrade", "c0ffee000002", "--yes")
    assert refused.exit_code == 1, refused
    assert "preflight predicts failure" in refused.stderr
    assert "SET NOT NULL on parts.name fails on 2 row(s)" in refused.stderr
    assert _snapshot(pg_url)["parts"] == 7  # nothing ran
    status = run_cli(*args, "current", "--format", "json")
    assert json.loads(status.stdout)["current"] == ["c0ffee000001"]


def test_override_goes_past_the_preflight_refusal(run_cli, copy_scenario, pg_url) -> None:
    project = _seeded(run_cli, copy_scenario, pg_url)
    args = ("--alembic-ini", project / "alembic.ini", "--url", pg_url)
    result = run_cli(
        *args, "upgrade", "c0ffee000002", "--yes", "--override", "testing the prediction"
    )
    # past the gate, PostgreSQL itself refuses the NOT NULL the preflight predicted
    assert result.exit_code == 1, result
    assert "refused by its policy" not in result.stderr
    assert "failed" in result.stderr and "null values" in result.stderr
