"""check's starting point on PostgreSQL (issue #14 item 4): with a declared baseline and more
than one check needing a database, the scratch databases are copies of one template database
at the baseline. A template left behind by a killed run is dropped by the next run on the
same host; another live run's is never touched; two checks running at once each have their
own scratch databases."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from abmigrate.db.scratch import SCRATCH_PREFIX, TEMPLATE_PREFIX, starting_point

CHECKS = "models_match_head,round_trip"


@pytest.fixture
def project(copy_scenario: Any) -> Path:
    root: Path = copy_scenario("baseline_create_all")
    return root


def _admin(server_url: str, statement: str, **params: Any) -> list[Any]:
    engine = sa.create_engine(server_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            result = connection.execute(sa.text(statement), params)
            return list(result.all()) if result.returns_rows else []
    finally:
        engine.dispose()


def databases(server_url: str, prefix: str) -> set[str]:
    rows = _admin(
        server_url,
        "SELECT datname FROM pg_database WHERE starts_with(datname, :prefix)",
        prefix=prefix,
    )
    return {str(row[0]) for row in rows}


@pytest.fixture
def left_behind(pg_server_url: str) -> Iterator[list[str]]:
    """Names of template databases a test makes as if other runs had left them; dropped
    afterwards whatever the test did."""
    made: list[str] = []
    yield made
    for name in made:
        _admin(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def leave_template(server_url: str, made: list[str], host: str, pid: int) -> str:
    name = f"{TEMPLATE_PREFIX}{pid}_{os.urandom(4).hex()}"
    made.append(name)
    _admin(server_url, f'CREATE DATABASE "{name}"')
    _admin(
        server_url,
        f"COMMENT ON DATABASE \"{name}\" IS 'abmigrate starting point; host={host}; pid={pid}'",
    )
    return name


def checked(run_cli: Any, project: Path, server_url: str) -> tuple[int, dict[str, Any]]:
    """``check --checks CHECKS`` on the project: the exit code and each check's record."""
    result = run_cli(
        "--alembic-ini", project / "alembic.ini", "--url", server_url,
        "check", "--checks", CHECKS, "--format", "json",
        cwd=project,
    )  # fmt: skip
    assert result.stdout, result
    return result.exit_code, {c["name"]: c for c in json.loads(result.stdout)["checks"]}


def a_finished_process() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_check_with_a_baseline_passes_from_one_starting_point_and_leaves_nothing(
    run_cli: Any, project: Path, pg_server_url: str
) -> None:
    before = databases(pg_server_url, SCRATCH_PREFIX)
    code, outcomes = checked(run_cli, project, pg_server_url)
    assert code == 0, outcomes
    assert outcomes["round_trip"]["summary"] == "3 revision(s) round-tripped"
    mine = f"_{os.getpid()}_"
    assert not {name for name in databases(pg_server_url, SCRATCH_PREFIX) - before if mine in name}


def test_a_downgrade_that_forgets_is_found_when_the_scratch_database_is_a_copy(
    run_cli: Any, project: Path, pg_server_url: str
) -> None:
    # The walk rebuilds its scratch database after the failing revision: as a copy of the
    # starting point, the baseline included.
    first = project / "migrations" / "versions" / "ba5e00000001.py"
    first.write_text(first.read_text().replace('batch.drop_column("email")', "pass"))
    code, outcomes = checked(run_cli, project, pg_server_url)
    assert code == 1, outcomes
    round_trip = outcomes["round_trip"]
    assert round_trip["summary"] == "1 of 3 revision(s) fail", round_trip
    (failure,) = round_trip["failures"]
    assert failure["revision"] == "ba5e00000001"
    assert any("accounts.email" in line for line in failure["differences"]), failure


def test_a_template_left_by_a_killed_run_is_dropped_and_a_live_runs_is_kept(
    run_cli: Any, project: Path, pg_server_url: str, left_behind: list[str]
) -> None:
    host = socket.gethostname()
    killed = leave_template(pg_server_url, left_behind, host, a_finished_process())
    live = leave_template(pg_server_url, left_behind, host, os.getpid())
    elsewhere = leave_template(pg_server_url, left_behind, "another-host", a_finished_process())

    result = run_cli(
        "--alembic-ini", project / "alembic.ini", "--url", pg_server_url,
        "check", "--checks", CHECKS,
        cwd=project,
    )  # fmt: skip
    assert result.exit_code == 0, result
    remaining = databases(pg_server_url, TEMPLATE_PREFIX)
    assert killed not in remaining
    # A run that still runs, or one on another machine (whose processes this host cannot
    # see), may be using its template: never dropped.
    assert {live, elsewhere} <= remaining


def test_two_checks_at_once_each_have_their_own_databases(
    project: Path, pg_server_url: str
) -> None:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("ABMIGRATE_ENV", "ENVIRONMENT", "DATABASE_URL")
    }
    command = [
        sys.executable, "-m", "abmigrate", "--alembic-ini", str(project / "alembic.ini"),
        "--url", pg_server_url, "check", "--checks", CHECKS, "--format", "json",
    ]  # fmt: skip
    runs = [
        subprocess.Popen(
            command, cwd=project, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    pids = {run.pid for run in runs}
    for run in runs:
        stdout, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, (stdout, stderr)
        outcomes = {c["name"]: c for c in json.loads(stdout)["checks"]}
        assert outcomes["round_trip"]["status"] == "passed", outcomes
    # Every scratch and template database carries its run's process id: none is left.
    leftovers = databases(pg_server_url, SCRATCH_PREFIX)
    assert not {name for name in leftovers for pid in pids if f"_{pid}_" in name}


def test_starting_points_opened_at_once_are_distinct_and_closed(pg_server_url: str) -> None:
    def baseline(url: str) -> None:
        _admin(url, "CREATE TABLE accounts (id integer PRIMARY KEY)")

    with (
        starting_point(pg_server_url, baseline) as first,
        starting_point(pg_server_url, baseline) as second,
    ):
        assert first is not None and second is not None and first != second
        assert {first, second} <= databases(pg_server_url, TEMPLATE_PREFIX)
        # Closed to connections: copying it can never find a session inside.
        (allowed,) = _admin(
            pg_server_url, "SELECT datallowconn FROM pg_database WHERE datname = :n", n=first
        )
        assert allowed[0] is False
    assert not {first, second} & databases(pg_server_url, TEMPLATE_PREFIX)


def test_no_starting_point_where_it_would_not_help(sqlite_url: str, pg_server_url: str) -> None:
    with starting_point(sqlite_url, lambda url: None) as on_sqlite:
        assert on_sqlite is None
    with starting_point(pg_server_url, None) as without_baseline:
        assert without_baseline is None
    assert make_url(pg_server_url).get_backend_name() == "postgresql"
