"""Lint findings judged against the live database, through the real CLI on real databases.

The ``judge_gate`` scenario: j1 creates customers, orders and legacy; j2 indexes orders
without CONCURRENTLY (AM101, error), j3 drops legacy (AM201, error, destructive), j4 adds a
NOT NULL column without default to orders (AM304, error). Its production environment
forbids destructive changes, so an error finding refuses the upgrade.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from abmigrate.lint.judge import PlanTables, judge_finding
from abmigrate.lint.model import Finding, Statement
from abmigrate.lint.preflight_run import LiveTables
from abmigrate.lint.sql import parse_statements


def _project(copy_scenario: Any, **production: Any) -> Path:
    root: Path = copy_scenario("judge_gate")
    if production:  # production is the configuration's last table
        with (root / "abmigrate.toml").open("a", encoding="utf-8") as handle:
            for key, value in production.items():
                handle.write(f"{key} = {json.dumps(value)}\n")
    return root


def _execute(url: str, *statements: str, rows: int = 0) -> None:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            if rows:
                connection.execute(
                    sa.text("INSERT INTO orders (id, customer_id, qty) VALUES (:id, 1, :qty)"),
                    [{"id": n, "qty": n % 50} for n in range(1, rows + 1)],
                )
            for statement in statements:
                connection.execute(sa.text(statement))
    finally:
        engine.dispose()


def _versions(url: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("alembic_version"):
                return []
            return [
                str(v)
                for v in connection.execute(
                    sa.text("SELECT version_num FROM alembic_version")
                ).scalars()
            ]
    finally:
        engine.dispose()


def _findings(run_cli: Any, root: Path, url: str, *args: str) -> dict[str, dict[str, Any]]:
    """The production plan's findings, by code."""
    result = run_cli(
        "--env", "production", "plan", *args, "--format", "json",
        cwd=root, env={"DATABASE_URL": url},
    )  # fmt: skip
    assert result.exit_code == 0, result
    plan = json.loads(result.stdout)
    return {finding["code"]: finding for step in plan["steps"] for finding in step["findings"]}


def _upgrade(run_cli: Any, root: Path, url: str, *args: str) -> Any:
    return run_cli(
        "--env", "production", "upgrade", *args, "--yes", "--format", "json",
        cwd=root, env={"DATABASE_URL": url},
    )  # fmt: skip


def test_fresh_install_goes_through_production_on_postgresql(
    run_cli, copy_scenario, pg_url
) -> None:
    root = _project(copy_scenario)
    findings = _findings(run_cli, root, pg_url)
    assert set(findings) == {"AM101", "AM201", "AM304"}
    for code, finding in findings.items():
        judged = finding["judged"]
        assert finding["severity"] == "info", code
        assert judged["decision"] == "downgraded", code
        assert judged["before"]["severity"] == "error", code
        assert judged["reason"].startswith("orders is created earlier in this plan (j1)") or (
            judged["reason"].startswith("legacy is created earlier in this plan (j1)")
        ), judged
        [table] = judged["tables"]
        assert table["state"] == "created_in_plan" and table["rows"] == 0
    # the destructive DROP TABLE of a table the plan creates loses nothing
    assert findings["AM201"]["destructive"] is False
    assert findings["AM201"]["judged"]["before"]["destructive"] is True

    human = run_cli("--env", "production", "plan", cwd=root, env={"DATABASE_URL": pg_url})
    assert "AM101 info: CREATE INDEX ix_orders_qty" in human.stdout, human
    assert (
        "downgraded from error: orders is created earlier in this plan (j1): it holds no rows"
        in human.stdout
    )
    assert "downgraded from error, destructive: legacy is created earlier" in human.stdout

    done = _upgrade(run_cli, root, pg_url)  # no --override
    assert done.exit_code == 0, done
    assert json.loads(done.stdout)["overrides"] == []
    assert _versions(pg_url) == ["j4"]


def test_a_table_with_many_rows_keeps_the_finding_on_postgresql(
    run_cli, copy_scenario, pg_url
) -> None:
    root = _project(copy_scenario)
    assert run_cli("upgrade", "j1", cwd=root, env={"DATABASE_URL": pg_url}).exit_code == 0
    # no autovacuum: the table stays never analysed until the test says ANALYZE
    _execute(pg_url, "ALTER TABLE orders SET (autovacuum_enabled = false)", rows=20_000)

    counted = _findings(run_cli, root, pg_url, "j2")["AM101"]
    assert counted["severity"] == "error"
    assert counted["judged"]["decision"] == "kept"
    assert counted["judged"]["tables"][0]["rows_from"] == "count_limit"
    assert "orders has at least 10,000 rows" in counted["judged"]["reason"]

    _execute(pg_url, "ANALYZE orders")
    estimated = _findings(run_cli, root, pg_url, "j2")["AM101"]
    assert estimated["severity"] == "error"
    assert estimated["judged"]["reason"] == (
        "orders has ~20,000 rows (planner estimate), not under small_table_rows = 10,000"
    )
    assert estimated["judged"]["tables"] == [
        {"table": "orders", "state": "large", "rows": 20_000, "rows_from": "estimate"}
    ]
    human = run_cli("--env", "production", "plan", "j2", cwd=root, env={"DATABASE_URL": pg_url})
    assert "kept: orders has ~20,000 rows (planner estimate)" in human.stdout, human

    refused = _upgrade(run_cli, root, pg_url, "j2")
    assert refused.exit_code == 1, refused
    assert "j2 AM101" in refused.stderr
    assert _versions(pg_url) == ["j1"]

    # a dozen rows left: the same revision goes through
    _execute(pg_url, "DELETE FROM orders WHERE id > 12", "ANALYZE orders")
    small = _findings(run_cli, root, pg_url, "j2")["AM101"]
    assert small["severity"] == "info"
    assert small["judged"]["reason"] == (
        "orders has 12 row(s) (counted), under small_table_rows = 10,000"
    )
    done = _upgrade(run_cli, root, pg_url, "j2")
    assert done.exit_code == 0, done
    assert _versions(pg_url) == ["j2"]


def test_existing_empty_tables_on_postgresql(run_cli, copy_scenario, pg_url) -> None:
    root = _project(copy_scenario)
    assert run_cli("upgrade", "j1", cwd=root, env={"DATABASE_URL": pg_url}).exit_code == 0
    findings = _findings(run_cli, root, pg_url)
    # lock and "fails on any row" findings on an empty table: downgraded
    assert findings["AM101"]["severity"] == "info"
    assert findings["AM101"]["judged"]["reason"] == (
        "orders is empty (counted), under small_table_rows = 10,000"
    )
    assert findings["AM304"]["severity"] == "info"
    assert findings["AM304"]["judged"]["reason"] == "orders is empty (counted)"
    # a destructive finding on an existing empty table is kept, and says why
    dropped = findings["AM201"]
    assert dropped["severity"] == "error" and dropped["destructive"] is True
    assert dropped["judged"]["decision"] == "kept"
    assert dropped["judged"]["reason"] == (
        "legacy is empty (counted): nothing would be lost, but destructive changes stay the"
        " policy's decision (allow_destructive)"
    )
    refused = _upgrade(run_cli, root, pg_url)
    assert refused.exit_code == 1, refused
    assert "j3 AM201" in refused.stderr and "forbids destructive changes" in refused.stderr
    assert "AM101" not in refused.stderr and "AM304" not in refused.stderr

    # with rows, the NOT NULL column without default is kept (it would fail), the index is not
    _execute(pg_url, rows=3)
    findings = _findings(run_cli, root, pg_url)
    assert findings["AM101"]["severity"] == "info"
    assert findings["AM304"]["severity"] == "error"
    assert findings["AM304"]["judged"]["reason"] == (
        "orders has 3 row(s) (counted): the statement fails on a table with any row"
    )


def test_sqlite_fresh_install_and_a_threshold(run_cli, copy_scenario, sqlite_url) -> None:
    root = _project(copy_scenario, small_table_rows=100)
    # the file does not exist yet: plan does not create it, every table is new
    assert _findings(run_cli, root, sqlite_url, "j3")["AM101"]["severity"] == "info"
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()
    done = _upgrade(run_cli, root, sqlite_url, "j3")
    assert done.exit_code == 0, done

    other = sqlite_url.replace("test.db", "filled.db")
    assert run_cli("upgrade", "j1", cwd=root, env={"DATABASE_URL": other}).exit_code == 0
    _execute(other, rows=150)
    kept = _findings(run_cli, root, other, "j2")["AM101"]
    assert kept["severity"] == "error"
    assert kept["judged"]["reason"] == (
        "orders has at least 100 rows (the count stops there), not under small_table_rows = 100"
    )
    refused = _upgrade(run_cli, root, other, "j2")
    assert refused.exit_code == 1, refused
    assert "j2 AM101" in refused.stderr
    _execute(other, "DELETE FROM orders WHERE id > 99")
    assert _findings(run_cli, root, other, "j2")["AM101"]["severity"] == "info"


def test_small_table_rows_zero_judges_only_tables_the_plan_creates(
    run_cli, copy_scenario, sqlite_url
) -> None:
    root = _project(copy_scenario, small_table_rows=0)
    assert _findings(run_cli, root, sqlite_url, "j2")["AM101"]["severity"] == "info"
    assert run_cli("upgrade", "j1", cwd=root, env={"DATABASE_URL": sqlite_url}).exit_code == 0
    kept = _findings(run_cli, root, sqlite_url, "j2")["AM101"]
    assert kept["severity"] == "error"
    assert kept["judged"]["reason"] == (
        "orders exists; small_table_rows = 0 leaves existing tables unjudged"
    )


def test_mariadb_table_rows_estimate(run_cli, copy_scenario, mariadb_url) -> None:
    root = _project(copy_scenario)
    fresh = _upgrade(run_cli, root, mariadb_url, "j2")
    assert fresh.exit_code == 0, fresh

    # undo j2 (development), fill orders, let MariaDB count it
    down = run_cli("downgrade", "j1", "--yes", cwd=root, env={"DATABASE_URL": mariadb_url})
    assert down.exit_code == 0, down
    _execute(mariadb_url, rows=20_000)
    _execute(mariadb_url, "ANALYZE TABLE orders")
    kept = _findings(run_cli, root, mariadb_url, "j2")["AM101"]
    assert kept["severity"] == "error"
    assert kept["judged"]["tables"][0]["rows_from"] == "estimate"
    assert "(TABLE_ROWS estimate), not under small_table_rows = 10,000" in kept["judged"]["reason"]
    refused = _upgrade(run_cli, root, mariadb_url, "j2")
    assert refused.exit_code == 1, refused
    assert "j2 AM101" in refused.stderr


def test_plain_lint_keeps_its_severities(run_cli, copy_scenario) -> None:
    root = _project(copy_scenario)
    result = run_cli("lint", "--format", "json", cwd=root, env={"DATABASE_URL": None})
    assert result.exit_code == 1, result
    findings = json.loads(result.stdout)
    assert {f["code"]: f["severity"] for f in findings} == {
        "AM101": "error",
        "AM201": "error",
        "AM304": "error",
    }
    assert all("judged" not in f for f in findings)
    assert {f["code"]: f["tables"] for f in findings}["AM201"] == ["legacy"]


# -- the plan's own tables: renames and copies (a real SQLite database) --------------------


def _statements(sql: str) -> list[Statement]:
    return [
        Statement(index, text, node, None, True, error)
        for index, (text, node, error) in enumerate(parse_statements(sql))
    ]


def _finding(code: str, table: str, *, destructive: bool = False) -> Finding:
    return Finding(
        code=code,
        name="a-rule",
        severity="error",
        message="",
        hint="",
        revision="r2",
        path=None,
        line=None,
        destructive=destructive,
        tables=(table,),
    )


def test_renamed_and_copied_tables_are_judged_by_their_live_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE orders (id INTEGER PRIMARY KEY, qty INT)"))
            connection.execute(sa.text("CREATE TABLE tiny (id INTEGER PRIMARY KEY)"))
            connection.execute(
                sa.text("INSERT INTO orders (id, qty) VALUES (:id, 1)"),
                [{"id": n} for n in range(1, 201)],
            )
            connection.execute(sa.text("INSERT INTO tiny (id) VALUES (1), (2)"))
        with engine.connect() as connection:
            live = LiveTables(connection)
            tables = PlanTables(live)
            # a batch rebuild of orders (copy, drop, rename), a rename of tiny, a seeded table
            tables.advance(
                "r1",
                _statements(
                    "CREATE TABLE _alembic_tmp_orders (id INT, qty INT);"
                    " INSERT INTO _alembic_tmp_orders (id, qty) SELECT id, qty FROM orders;"
                    " DROP TABLE orders;"
                    " ALTER TABLE _alembic_tmp_orders RENAME TO orders;"
                    " ALTER TABLE tiny RENAME TO small;"
                    " CREATE TABLE kinds (id INT); INSERT INTO kinds (id) VALUES (1), (2);"
                    " CREATE TABLE fresh (id INT)",
                ),
            )
            state = tables.snapshot()

            def judged(finding: Finding) -> dict[str, Any]:
                judged_by = {"AM304": "any_row", "AM201": "in_use"}.get(finding.code, "size")
                return judge_finding(finding, judged_by, state, state, live, 100).to_record()

            rebuilt = judged(_finding("AM101", "orders"))
            assert rebuilt["severity"] == "error"
            assert rebuilt["judged"]["reason"] == (
                "orders holds rows copied from orders earlier in this plan (r1): orders has"
                " at least 100 rows (the count stops there), not under small_table_rows = 100"
            )
            renamed = judged(_finding("AM101", "small"))
            assert renamed["severity"] == "info"
            assert renamed["judged"]["reason"] == (
                "small is the live table tiny, renamed earlier in this plan (r1): tiny has 2"
                " row(s) (counted), under small_table_rows = 100"
            )
            assert judged(_finding("AM101", "kinds"))["severity"] == "info"
            seeded = judged(_finding("AM304", "kinds"))
            assert seeded["severity"] == "error"
            assert seeded["judged"]["reason"] == (
                "kinds is created earlier in this plan (r1), but r1 inserts rows into it"
            )
            assert judged(_finding("AM304", "fresh"))["severity"] == "info"
            gone = judged(_finding("AM101", "tiny"))
            assert gone["judged"]["reason"] == "tiny is dropped earlier in this plan (r1)"
            missing = judged(_finding("AM101", "nowhere"))
            assert missing["severity"] == "error"
            assert "neither in the database nor created" in missing["judged"]["reason"]
            dropped = judged(_finding("AM201", "small", destructive=True))
            assert dropped["severity"] == "error" and dropped["destructive"] is True
            connection.rollback()
    finally:
        engine.dispose()
