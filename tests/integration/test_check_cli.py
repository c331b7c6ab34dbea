"""`abmigrate check` end to end on the scenario projects: each failure named precisely
(revision, SQL, difference), exit codes, output formats, and the URL's own database left
alone."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

BACKENDS = ["sqlite", "postgresql", "mariadb"]


@pytest.fixture(params=BACKENDS)
def server_args(request: pytest.FixtureRequest) -> list[str]:
    """The --url option pointing check at a server (none: temporary SQLite files)."""
    if request.param == "sqlite":
        return []
    fixture = "pg_url" if request.param == "postgresql" else "mariadb_url"
    return ["--url", request.getfixturevalue(fixture)]


def run_check(
    run_cli: Callable[..., Any], project: Path, *args: str, output: str = "json"
) -> tuple[Any, Any]:
    result = run_cli("--alembic-ini", project / "alembic.ini", "check", "--format", output, *args)
    data = json.loads(result.stdout) if output == "json" and result.stdout.strip() else None
    return result, data


def outcome(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(check for check in data["checks"] if check["name"] == name)


def test_downgrade_that_forgets_an_index_is_named_with_sql_and_difference(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path], server_args: list[str]
) -> None:
    project = copy_scenario("check_index_left")
    result, data = run_check(run_cli, project, "--checks", "round_trip", *server_args)
    assert result.exit_code == 1, result
    round_trip = outcome(data, "round_trip")
    assert round_trip["status"] == "failed"
    [failure] = round_trip["failures"]
    assert failure["revision"] == "c1a0000000a2"
    assert failure["path"].endswith("c1a0000000a2.py")
    assert any("index items.ix_items_name" in line for line in failure["differences"])
    assert "DROP COLUMN sku" in failure["sql"]
    # The walk went on after the failure: the next revision was checked too.
    assert round_trip["summary"] == "1 of 3 revision(s) fail"


def test_downgrade_raising_not_implemented_is_named_and_the_walk_goes_on(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path], server_args: list[str]
) -> None:
    project = copy_scenario("check_not_implemented")
    result, data = run_check(run_cli, project, "--checks", "round_trip", *server_args)
    assert result.exit_code == 1, result
    [failure] = outcome(data, "round_trip")["failures"]
    assert failure["revision"] == "c2b0000000b2"
    assert "the downgrade fails" in failure["message"]
    assert failure["detail"] == "NotImplementedError: prices cannot be undone"
    # c2b0000000b3 (after the broken one) was round-tripped and passed.
    assert outcome(data, "round_trip")["summary"] == "1 of 3 revision(s) fail"


def test_branched_history_with_a_merge_round_trips_each_revision_once(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path], server_args: list[str]
) -> None:
    project = copy_scenario("check_branched_merge")
    result, data = run_check(
        run_cli,
        project,
        "--checks",
        "single_head,single_root,graph_integrity,round_trip",
        *server_args,
    )
    assert result.exit_code == 0, result
    assert outcome(data, "round_trip")["summary"] == "5 revision(s) round-tripped"
    assert data["passed"] is True


def test_two_heads_fail_single_head_naming_both(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path]
) -> None:
    project = copy_scenario("check_two_heads")
    result, data = run_check(run_cli, project, "--checks", "single_head,single_root")
    assert result.exit_code == 1, result
    heads = outcome(data, "single_head")
    assert heads["status"] == "failed"
    assert sorted(f["revision"] for f in heads["failures"]) == ["c3c0000000c2", "c3c0000000c3"]
    assert "abmigrate merge" in heads["failures"][0]["hint"]
    assert outcome(data, "single_root")["status"] == "passed"


def test_human_output_shows_revision_difference_and_sql(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path]
) -> None:
    project = copy_scenario("check_index_left")
    result, _ = run_check(run_cli, project, "--checks", "round_trip", output="human")
    assert result.exit_code == 1, result
    assert "✗ round_trip" in result.stdout
    assert "revision c1a0000000a2 (add sku with an index on name)" in result.stdout
    assert "extra index items.ix_items_name: (name) — left behind by the downgrade" in result.stdout
    assert "ALTER TABLE items DROP COLUMN sku" in result.stdout
    assert "FAILED: round_trip" in result.stdout


def test_github_format_annotates_the_revision_file(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path], tmp_path: Path
) -> None:
    project = copy_scenario("check_not_implemented")
    result, _ = run_check(run_cli, project, "--checks", "round_trip", output="github")
    assert result.exit_code == 1, result
    [annotation] = [line for line in result.stdout.splitlines() if line.startswith("::error ")]
    assert annotation.startswith(
        "::error file=check_not_implemented/migrations/versions/c2b0000000b2.py,"
        "title=abmigrate check round_trip::"
    )
    assert "%0Aerror: NotImplementedError: prices cannot be undone" in annotation
    assert "\n" not in annotation


def test_unknown_check_is_a_usage_error_listing_the_valid_ones(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path]
) -> None:
    project = copy_scenario("check_branched_merge")
    result, _ = run_check(run_cli, project, "--checks", "round_trip,single_heads", output="human")
    assert result.exit_code == 2, result
    assert "unknown check 'single_heads'" in result.stderr
    assert "single_head, single_root, graph_integrity" in result.stderr
    assert result.stdout == ""


def test_check_never_changes_the_database_the_url_names(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path], pg_url: str
) -> None:
    project = copy_scenario("check_branched_merge")
    result, _ = run_check(run_cli, project, "--checks", "round_trip", "--url", pg_url)
    assert result.exit_code == 0, result
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            assert sa.inspect(connection).get_table_names() == []
            leftovers = connection.execute(
                sa.text("SELECT count(*) FROM pg_database WHERE datname LIKE 'abm_scratch_%'")
            ).scalar_one()
    finally:
        engine.dispose()
    del leftovers  # other tests may hold scratch databases right now; ours is checked below
    assert "abm_scratch" not in result.stdout


def test_list_shows_every_check_with_its_rationale(
    run_cli: Callable[..., Any], copy_scenario: Callable[..., Path]
) -> None:
    project = copy_scenario("check_branched_merge")
    result = run_cli("--alembic-ini", project / "alembic.ini", "check", "--list")
    assert result.exit_code == 0, result
    assert "round_trip: Every downgrade exactly undoes its upgrade." in result.stdout
    assert "single_head: The history has exactly one head." in result.stdout


def test_abparts_history_round_trips_on_postgresql(
    run_cli: Callable[..., Any], pg_url: str
) -> None:
    # Real-world revisions: enum types dropped in downgrades and created again by the next
    # upgrade, a merge, an autocommit block. Each revision is round-tripped once.
    project = Path(__file__).resolve().parents[2] / "examples" / "abparts"
    result, data = run_check(run_cli, project, "--checks", "round_trip", "--url", pg_url)
    assert result.exit_code == 0, result
    assert outcome(data, "round_trip")["summary"] == "10 revision(s) round-tripped"
