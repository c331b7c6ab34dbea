"""Every command of the guide's "Migration Commands Reference", end to end through the real
CLI, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

BACKENDS = ["sqlite_url", "pg_url"]


@pytest.fixture(params=BACKENDS, ids=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(request.param))


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return set(sa.inspect(connection).get_table_names())
    finally:
        engine.dispose()


def version_rows(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return sorted(
                connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
            )
    finally:
        engine.dispose()


def execute(url: str, statement: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(statement))
    finally:
        engine.dispose()


@pytest.fixture
def linear(copy_scenario, run_cli, db_url):  # type: ignore[no-untyped-def]
    project = copy_scenario("linear")

    def cli(*args: str, **kwargs):  # type: ignore[no-untyped-def]
        return run_cli(
            "--alembic-ini", project / "alembic.ini", "--url", db_url, *args, cwd=project, **kwargs
        )

    return cli


def test_status_of_an_empty_database_lists_pending_in_apply_order(linear, db_url):
    result = linear("status", "--format", "json")
    assert result.exit_code == 0, result
    status = json.loads(result.stdout)
    assert status["state"] == "uninitialized"
    assert status["current"] == []
    assert status["heads"] == ["a1f0c0de0003"]
    assert [p["revision"] for p in status["pending"]] == [
        "a1f0c0de0001",
        "a1f0c0de0002",
        "a1f0c0de0003",
    ]
    assert status["pending"][0]["message"] == "create accounts"
    assert status["dialect"] == db_url.split(":")[0].split("+")[0]


def test_upgrade_current_history_downgrade_round_trip(linear, db_url):
    upgraded = linear("upgrade")
    assert upgraded.exit_code == 0, upgraded
    # progress per revision: revision, message, elapsed time
    assert "upgrade a1f0c0de0001  create accounts" in upgraded.stderr
    assert "✓ upgrade a1f0c0de0003" in upgraded.stderr
    assert "now at a1f0c0de0003" in upgraded.stdout
    assert version_rows(db_url) == ["a1f0c0de0003"]
    assert "accounts" in tables(db_url)

    current = linear("current", "--format", "json")
    assert json.loads(current.stdout)["current"] == ["a1f0c0de0003"]

    status = json.loads(linear("status", "--format", "json").stdout)
    assert status["state"] == "up_to_date"
    assert status["pending"] == []

    back = linear("downgrade", "-1")
    assert back.exit_code == 0, back
    assert version_rows(db_url) == ["a1f0c0de0002"]

    history = json.loads(linear("history", "--format", "json").stdout)["revisions"]
    applied = {entry["revision"]: entry["applied"] for entry in history}
    assert applied == {"a1f0c0de0001": True, "a1f0c0de0002": True, "a1f0c0de0003": False}
    head = history[0]
    assert head["revision"] == "a1f0c0de0003"
    assert head["is_head"] is True and head["is_merge"] is False
    assert head["down_revisions"] == ["a1f0c0de0002"]

    assert json.loads(linear("status", "--format", "json").stdout)["state"] == "behind"

    to_base = linear("downgrade", "base")
    assert to_base.exit_code == 0, to_base
    assert "accounts" not in tables(db_url)

    plus_one = linear("upgrade", "+1")
    assert plus_one.exit_code == 0, plus_one
    assert version_rows(db_url) == ["a1f0c0de0001"]

    by_prefix = linear("upgrade", "a1f0c0de0002")
    assert by_prefix.exit_code == 0, by_prefix
    assert version_rows(db_url) == ["a1f0c0de0002"]

    to_revision = linear("downgrade", "a1f0c0de0001")
    assert to_revision.exit_code == 0, to_revision
    assert version_rows(db_url) == ["a1f0c0de0001"]


def test_plan_sql_renders_each_revision_under_its_own_header(linear, db_url):
    result = linear("plan", "--sql")
    assert result.exit_code == 0, result
    out = result.stdout
    for revision, message in (
        ("a1f0c0de0001", "create accounts"),
        ("a1f0c0de0002", "add accounts email"),
        ("a1f0c0de0003", "index accounts email"),
    ):
        assert f"-- ===== upgrade {revision}: {message} =====" in out
    first = out.index("upgrade a1f0c0de0001:")
    second = out.index("upgrade a1f0c0de0002:")
    assert "CREATE TABLE accounts" in out[first:second]
    assert "ADD COLUMN email" in out[second:]
    assert "CREATE INDEX ix_accounts_email" in out

    as_json = json.loads(linear("plan", "--sql", "--format", "json").stdout)
    assert as_json["direction"] == "upgrade"
    assert as_json["target"] == "head"
    assert [step["revision"] for step in as_json["steps"]] == [
        "a1f0c0de0001",
        "a1f0c0de0002",
        "a1f0c0de0003",
    ]
    assert "CREATE INDEX" in as_json["steps"][2]["sql"]
    assert "CREATE INDEX" not in as_json["steps"][1]["sql"]


def test_plan_of_a_downgrade(linear, db_url):
    assert linear("upgrade").exit_code == 0
    plan = json.loads(linear("plan", "--down", "-2", "--format", "json").stdout)
    assert plan["direction"] == "downgrade"
    assert [step["revision"] for step in plan["steps"]] == ["a1f0c0de0003", "a1f0c0de0002"]
    assert plan["target_revisions"] == ["a1f0c0de0001"]
    assert version_rows(db_url) == ["a1f0c0de0003"]


def test_stamp_records_a_revision_without_running_it(linear, db_url):
    # abmigrate's stamp is guarded: an empty database is not at a1f0c0de0002.
    refused = linear("stamp", "a1f0c0de0002")
    assert refused.exit_code == 1, refused
    assert "missing table accounts" in refused.stderr
    assert "alembic_version" not in tables(db_url) or version_rows(db_url) == []
    result = linear("stamp", "a1f0c0de0002", "--force", "--reason", "schema made elsewhere")
    assert result.exit_code == 0, result
    assert version_rows(db_url) == ["a1f0c0de0002"]
    assert "accounts" not in tables(db_url)


def test_revision_creates_an_empty_script_that_becomes_the_head(linear):
    created = linear("revision", "-m", "manual changes", "--format", "json")
    assert created.exit_code == 0, created
    record = json.loads(created.stdout)
    assert record["down_revisions"] == ["a1f0c0de0003"]
    assert Path(record["path"]).is_file()
    heads = json.loads(linear("heads", "--format", "json").stdout)
    assert [head["revision"] for head in heads["heads"]] == [record["revision"]]


@pytest.fixture
def two_heads(copy_scenario, run_cli, db_url):  # type: ignore[no-untyped-def]
    project = copy_scenario("two_heads")

    def cli(*args: str, **kwargs):  # type: ignore[no-untyped-def]
        return run_cli(
            "--alembic-ini", project / "alembic.ini", "--url", db_url, *args, cwd=project, **kwargs
        )

    return cli


def test_two_heads_are_reported_and_merge_fixes_them(two_heads, db_url):
    heads = two_heads("heads")
    assert heads.exit_code == 0, heads
    assert "b200000left1" in heads.stdout and "b20000right1" in heads.stdout
    assert "abmigrate merge" in heads.stdout

    refused = two_heads("upgrade")
    assert refused.exit_code == 1, refused
    assert "several head revisions" in refused.stderr
    assert "b200000left1" in refused.stderr and "b20000right1" in refused.stderr
    assert "abmigrate merge" in refused.stderr
    assert "Traceback" not in refused.stderr
    status = json.loads(two_heads("status", "--format", "json").stdout)
    assert sorted(status["heads"]) == ["b200000left1", "b20000right1"]
    assert any(p["code"] == "multiple_heads" for p in status["graph_problems"])

    merged = two_heads("merge", "-m", "merge team branches", "--format", "json")
    assert merged.exit_code == 0, merged
    merge_record = json.loads(merged.stdout)
    assert sorted(merge_record["down_revisions"]) == ["b200000left1", "b20000right1"]

    upgraded = two_heads("upgrade")
    assert upgraded.exit_code == 0, upgraded
    assert version_rows(db_url) == [merge_record["revision"]]
    assert {"items", "tags"} <= tables(db_url)
    history = json.loads(two_heads("history", "--format", "json").stdout)["revisions"]
    assert history[0]["is_merge"] is True
    assert all(entry["applied"] for entry in history)

    # downgrading the merge leaves both branches applied
    assert two_heads("downgrade", "-1").exit_code == 0
    assert version_rows(db_url) == ["b200000left1", "b20000right1"]


def test_merge_with_a_single_head_is_refused(linear):
    result = linear("merge")
    assert result.exit_code == 1, result
    assert "nothing to merge" in result.stderr


def test_unknown_revision_in_the_database_is_named(linear, db_url):
    assert linear("upgrade").exit_code == 0
    execute(db_url, "UPDATE alembic_version SET version_num = 'renamed0bad1'")
    status = linear("status", "--format", "json")
    assert status.exit_code == 0, status
    record = json.loads(status.stdout)
    assert record["state"] == "unknown_revision"
    assert record["unknown"] == ["renamed0bad1"]
    human = linear("status")
    assert "renamed0bad1" in human.stdout and "no script defines" in human.stdout

    refused = linear("upgrade")
    assert refused.exit_code == 1, refused
    assert "renamed0bad1" in refused.stderr
    assert "abmigrate diagnose" in refused.stderr
    assert version_rows(db_url) == ["renamed0bad1"]


def test_a_migration_that_raises_names_the_revision_and_where_the_database_stands(
    copy_scenario, run_cli, db_url
):
    project = copy_scenario("raises")
    result = run_cli("--alembic-ini", project / "alembic.ini", "--url", db_url, "upgrade")
    assert result.exit_code == 1, result
    assert "c30000000bad" in result.stderr
    assert "data conflict: 3 orders have no customer" in result.stderr
    assert "now records c3000000good" in result.stderr
    assert "Traceback" not in result.stderr
    assert version_rows(db_url) == ["c3000000good"]
    if db_url.startswith("postgresql"):
        # transactional DDL: the failed revision left nothing behind (abmigrate_journal is
        # abmigrate's record of the run, written in every environment)
        assert tables(db_url) == {"alembic_version", "abmigrate_journal", "orders"}

    debug = run_cli("--debug", "--alembic-ini", project / "alembic.ini", "--url", db_url, "upgrade")
    assert debug.exit_code != 0
    assert "Traceback" in debug.stderr


READ_ONLY_COMMANDS = [
    ("current",),
    ("status",),
    ("history",),
    ("heads",),
    ("plan",),
    ("plan", "--sql"),
]


def test_read_only_commands_create_nothing_on_an_empty_database(linear, db_url):
    for command in READ_ONLY_COMMANDS:
        result = linear(*command)
        assert result.exit_code == 0, result
    if db_url.startswith("sqlite"):
        assert not Path(db_url.removeprefix("sqlite:///")).exists()
    else:
        assert tables(db_url) == set()


def test_read_only_commands_change_no_row(linear, db_url):
    assert linear("upgrade", "a1f0c0de0002").exit_code == 0
    execute(db_url, "INSERT INTO accounts (id, name, email) VALUES (1, 'oraseas', 'a@b.c')")

    def snapshot() -> tuple[set[str], list[str], list[tuple[object, ...]]]:
        engine = sa.create_engine(db_url)
        try:
            with engine.connect() as connection:
                rows = list(connection.execute(sa.text("SELECT * FROM accounts ORDER BY id")))
        finally:
            engine.dispose()
        return tables(db_url), version_rows(db_url), [tuple(row) for row in rows]

    before = snapshot()
    for command in READ_ONLY_COMMANDS:
        assert linear(*command).exit_code == 0
    assert snapshot() == before
