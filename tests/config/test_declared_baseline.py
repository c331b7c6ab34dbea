"""A history that starts from tables made by ``metadata.create_all()`` (issue #12 item 4).

The baseline_create_all scenario's first revision alters ``accounts``, which no revision
creates: its databases are made with ``legacy_models.metadata.create_all()`` first, then
``alembic upgrade head``. With ``baseline = "legacy_models:metadata"`` declared (its
abmigrate.toml, or ``$ABMIGRATE_BASELINE``), every replay starts from that baseline; without
it, diagnose says so instead of calling the baseline's tables hand changes or advising a
restore or a forced stamp.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

HEAD = "ba5e00000003"
Cli = Callable[..., Any]


@pytest.fixture(params=["pg_url", "sqlite_url"])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(request.param))


@pytest.fixture
def project(copy_scenario: Any) -> Path:
    root: Path = copy_scenario("baseline_create_all")
    return root


def make_baseline(url: str) -> None:
    """What the project itself does to a new database before `alembic upgrade head`."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "legacy_models_for_test",
        Path(__file__).parent.parent / "scenarios" / "baseline_create_all" / "legacy_models.py",
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        module.metadata.create_all(engine)
    finally:
        engine.dispose()


def cli_in(run_cli: Any, project: Path, url: str, cwd: Path, **env: str | None) -> Cli:
    """abmigrate with --alembic-ini/--url, run in ``cwd`` (the project: its abmigrate.toml
    declares the baseline; elsewhere: no configuration at all)."""

    def cli(*args: str) -> Any:
        return run_cli(
            "--alembic-ini", project / "alembic.ini", "--url", url, *args, cwd=cwd, env=env
        )

    return cli


def versions(url: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("alembic_version"):
                return []
            rows = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            return sorted(str(value) for value in rows.scalars())
    finally:
        engine.dispose()


def diagnosis(cli: Cli) -> tuple[int, dict[str, Any]]:
    result = cli("diagnose", "--format", "json")
    assert result.exit_code in (0, 1), result
    return result.exit_code, json.loads(result.stdout)


def upgraded_the_projects_way(cli: Cli, url: str) -> None:
    make_baseline(url)
    upgraded = cli("upgrade")
    assert upgraded.exit_code == 0, upgraded
    assert versions(url) == [HEAD]


def test_declared_baseline_diagnose_drift_and_check_pass(
    run_cli: Any, project: Path, db_url: str
) -> None:
    cli = cli_in(run_cli, project, db_url, project)
    upgraded_the_projects_way(cli, db_url)

    code, report = diagnosis(cli)
    assert (code, report["state"]) == (0, "up_to_date"), report
    assert report["exact_matches"] == [HEAD]
    assert "legacy_models:metadata" in report["baseline"]
    human = cli("diagnose")
    assert "replays start from the baseline = 'legacy_models:metadata'" in human.stdout, human

    drift = cli("drift", "--against", "head")
    assert drift.exit_code == 0, drift
    assert "no drift" in drift.stdout
    # "base" is the baseline's schema: the database has the baseline plus three revisions.
    drift_base = cli("drift", "--against", "base", "--format", "json")
    assert drift_base.exit_code == 1, drift_base
    described = [d["description"] for d in json.loads(drift_base.stdout)["differences"]]
    assert not any("accounts " in text and "table" in text for text in described), described

    checked = cli("check", "--skip", "lint", "--format", "json")
    assert checked.exit_code == 0, checked
    outcomes = {c["name"]: c for c in json.loads(checked.stdout)["checks"]}
    assert outcomes["round_trip"]["status"] == "passed", outcomes["round_trip"]
    assert outcomes["round_trip"]["summary"] == "3 revision(s) round-tripped"
    assert versions(db_url) == [HEAD]  # the checks ran on scratch databases


def test_a_downgrade_that_forgets_is_still_found_from_the_baseline(
    run_cli: Any, project: Path, db_url: str
) -> None:
    # The first revision's downgrade leaves accounts.email behind: the round trip compares
    # with the baseline (not with an empty database) and names exactly that column.
    first = project / "migrations" / "versions" / "ba5e00000001.py"
    first.write_text(first.read_text().replace('batch.drop_column("email")', "pass"))
    cli = cli_in(run_cli, project, db_url, project)
    checked = cli("check", "--checks", "round_trip", "--format", "json")
    assert checked.exit_code == 1, checked
    (round_trip,) = json.loads(checked.stdout)["checks"]
    (failure,) = round_trip["failures"]
    assert failure["revision"] == "ba5e00000001", failure
    assert any("accounts.email" in line for line in failure["differences"]), failure


def test_without_a_declaration_diagnose_names_the_baseline_not_a_restore(
    run_cli: Any, project: Path, db_url: str, tmp_path: Path
) -> None:
    upgraded_the_projects_way(cli_in(run_cli, project, db_url, project), db_url)
    # Run outside the project: no configuration, so no baseline is declared.
    cli = cli_in(run_cli, project, db_url, tmp_path)

    code, report = diagnosis(cli)
    assert code == 1
    assert report["state"] == "baseline_undeclared", report
    summary = report["recommendation"]["summary"]
    assert "cannot be replayed on an empty database" in summary
    assert "ba5e00000001" in summary
    assert "baseline = 'package.module:Base.metadata'" in summary
    assert "ABMIGRATE_BASELINE" in summary
    commands = " ".join(report["recommendation"]["commands"])
    assert "restore" not in commands and "stamp" not in commands, report
    assert versions(db_url) == [HEAD]
    human = cli("diagnose")
    assert "state: baseline_undeclared" in human.stdout, human
    assert "in [tool.abmigrate] (or $ABMIGRATE_BASELINE)" in human.stdout, human
    assert "2 later revision(s) not replayed: an ancestor failed" in human.stdout, human

    drift = cli("drift", "--against", "head")
    assert drift.exit_code == 1, drift
    assert "declare how with baseline = " in drift.stderr, drift
    assert "Traceback" not in drift.stderr

    # The same declaration through the environment, still without a configuration file.
    declared = cli_in(
        run_cli,
        project,
        db_url,
        tmp_path,
        ABMIGRATE_BASELINE="legacy_models:make_baseline",
        PYTHONPATH=str(project),
    )
    code, report = diagnosis(declared)
    assert (code, report["state"]) == (0, "up_to_date"), report


def test_a_database_at_the_baseline_only_is_uninitialized(
    run_cli: Any, project: Path, sqlite_url: str
) -> None:
    make_baseline(sqlite_url)
    cli = cli_in(run_cli, project, sqlite_url, project)
    code, report = diagnosis(cli)
    assert (code, report["state"]) == (0, "uninitialized"), report
    assert report["exact_matches"] == ["base"]
    assert report["recommendation"]["commands"] == ["abmigrate upgrade"]


def test_a_partial_history_is_not_called_hand_changes(
    run_cli: Any, project: Path, sqlite_url: str, tmp_path: Path
) -> None:
    # Only the LAST revision needs the baseline (accounts made outside the history, used by
    # an index): the first two replay on an empty database, so "nearest" would be an earlier
    # revision plus "hand-made" accounts, and a forced stamp below the recorded one.
    versions_dir = project / "migrations" / "versions"
    first = versions_dir / "ba5e00000001.py"
    first.write_text(
        first.read_text()
        .replace(
            '    with op.batch_alter_table("accounts") as batch:\n'
            '        batch.add_column(sa.Column("email", sa.String(255), nullable=True))',
            '    op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True))',
        )
        .replace(
            '    with op.batch_alter_table("accounts") as batch:\n'
            '        batch.drop_column("email")',
            '    op.drop_table("notes")',
        )
    )
    second = versions_dir / "ba5e00000002.py"
    second.write_text(
        second.read_text().replace(
            '            sa.ForeignKey("accounts.id", name="fk_orders_account_id"),\n', ""
        )
    )
    third = versions_dir / "ba5e00000003.py"
    third.write_text(third.read_text().replace('["email"]', '["name"]'))
    make_baseline(sqlite_url)
    upgraded = cli_in(run_cli, project, sqlite_url, project)("upgrade")
    assert upgraded.exit_code == 0, upgraded

    code, report = diagnosis(cli_in(run_cli, project, sqlite_url, tmp_path))
    assert code == 1
    assert report["state"] == "baseline_undeclared", report
    assert "ba5e00000003" in report["recommendation"]["summary"]
    commands = " ".join(report["recommendation"]["commands"])
    assert "stamp" not in commands and "restore" not in commands, report


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("'not a reference'", "cannot read baseline = 'not a reference'"),
        ("'missing.sql'", "baseline SQL file not found"),
        ("42", "baseline must be a non-empty string"),
        ("'legacy_models:nothing_here'", "legacy_models has no nothing_here"),
    ],
)
def test_a_bad_baseline_is_one_line_and_exit_2(
    run_cli: Any, project: Path, sqlite_url: str, value: str, message: str
) -> None:
    (project / "abmigrate.toml").write_text(f'alembic_ini = "alembic.ini"\nbaseline = {value}\n')
    result = cli_in(run_cli, project, sqlite_url, project)("drift", "--against", "head")
    assert result.exit_code == 2, result
    assert message in result.stderr, result
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: "), result


def test_a_sql_file_baseline(run_cli: Any, project: Path, db_url: str) -> None:
    # The same table create_all makes (SERIAL: what an Integer primary key is on PostgreSQL).
    key = "SERIAL" if db_url.startswith("postgresql") else "INTEGER NOT NULL"
    (project / "baseline.sql").write_text(
        "-- the tables the first revision expects\n"
        f"CREATE TABLE accounts (\n    id {key} PRIMARY KEY,\n"
        "    name VARCHAR(100) NOT NULL\n);\n"
        "CREATE TABLE audit (id INTEGER PRIMARY KEY);\nDROP TABLE audit;\n"
    )
    (project / "abmigrate.toml").write_text(
        'alembic_ini = "alembic.ini"\nbaseline = "baseline.sql"\n'
    )
    cli = cli_in(run_cli, project, db_url, project)
    upgraded_the_projects_way(cli, db_url)
    code, report = diagnosis(cli)
    assert (code, report["state"]) == (0, "up_to_date"), report
