"""What the project prints on standard output stays off abmigrate's.

Airflow's revisions print progress while they migrate ("converting dag run conf. batch=1"),
and SQL comments in offline mode meant for ``alembic upgrade --sql``'s script; its structlog
writes its log lines on ``sys.stdout``. With ``--format json`` a program parses abmigrate's
standard output: the project's lines go to standard error, where the user still sees them.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

PRINTING_REVISION = textwrap.dedent(
    '''\
    """add accounts email, printing as it goes

    Revision ID: a1f0c0de0002
    Revises: a1f0c0de0001
    """

    import sqlalchemy as sa
    from alembic import op

    revision = "a1f0c0de0002"
    down_revision = "a1f0c0de0001"
    branch_labels = None
    depends_on = None


    def upgrade() -> None:
        if op.get_context().as_sql:
            print("-- WARNING: the emails are not backfilled in offline mode")
        else:
            print("backfilling emails, batch=1")
        op.add_column("accounts", sa.Column("email", sa.String(120)))


    def downgrade() -> None:
        print("dropping emails")
        with op.batch_alter_table("accounts") as batch:
            batch.drop_column("email")
    '''
)

PRINTED = (
    "-- WARNING: the emails are not backfilled in offline mode",
    "backfilling emails, batch=1",
    "dropping emails",
)


@pytest.fixture
def printing_project(copy_scenario: Any) -> Path:
    project: Path = copy_scenario("linear")
    (project / "migrations" / "versions" / "a1f0c0de0002.py").write_text(PRINTING_REVISION)
    env_py = project / "migrations" / "env.py"
    env_py.write_text('print("env.py starting")\n' + env_py.read_text())
    return project


def test_json_output_stays_json_when_migrations_print(
    printing_project, run_cli_process, sqlite_url
):
    ini = printing_project / "alembic.ini"

    def abmigrate(*args: str) -> Any:
        result = run_cli_process(
            "--alembic-ini",
            ini,
            "--url",
            sqlite_url,
            "--format",
            "json",
            *args,
            cwd=printing_project,
        )
        assert result.exit_code in ((0, 1) if args == ("lint",) else (0,)), result
        leaked = [line for line in (*PRINTED, "env.py starting") if line in result.stdout]
        assert not leaked, f"abmigrate {' '.join(args)}: printed on standard output {leaked}"
        json.loads(result.stdout)
        return result

    # lint's offline capture of every revision (exit 1: the scenario has a finding of its
    # own), offline rendering on Alembic's offline context, the upgrade itself.
    assert "not backfilled in offline mode" in abmigrate("lint").stderr
    assert "not backfilled in offline mode" in abmigrate("plan", "--sql").stderr
    assert "backfilling emails, batch=1" in abmigrate("upgrade").stderr
    # Replays on scratch databases (diagnose) and check's round trips run the revisions
    # again, up and down.
    abmigrate("diagnose")
    assert "dropping emails" in abmigrate("check", "--skip", "lint,models_match_head").stderr
    assert "dropping emails" in abmigrate("downgrade", "a1f0c0de0001", "--yes").stderr
