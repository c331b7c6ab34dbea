"""A guarded environment refuses a SQLite downgrade that would destroy data, even though
SQLite's batch-mode SQL cannot be rendered offline (the estimate comes from the preflight)."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa


def test_staging_refuses_dropping_a_column_that_holds_data(  # type: ignore[no-untyped-def]
    copy_scenario, run_cli, tmp_path: Path
) -> None:
    project = copy_scenario("linear")
    database = tmp_path / "staging.db"
    (project / "abmigrate.toml").write_text(
        f'alembic_ini = "alembic.ini"\n\n[environments.staging]\nurl = "sqlite:///{database}"\n'
    )
    # (the scenario's plain CREATE INDEX is a lint error staging refuses: override it here)
    upgraded = run_cli(
        "--env", "staging", "upgrade", "--yes", "--override", "table is tiny", cwd=project
    )
    assert upgraded.exit_code == 0, upgraded
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO accounts (id, name, email) VALUES (1, 'oraseas', 'ops@oraseas.ee')"
            )
        )
    engine.dispose()

    plan = run_cli("--env", "staging", "plan", "--down", "-2", "--format", "json", cwd=project)
    assert plan.exit_code == 0, plan
    losses = json.loads(plan.stdout)["data_loss"]
    assert [(loss["table"], loss["column"], loss["rows"]) for loss in losses] == [
        ("accounts", "email", 1)
    ]

    refused = run_cli("--env", "staging", "downgrade", "--yes", "-2", cwd=project)
    assert refused.exit_code == 1, refused
    assert "accounts.email (1 non-null values)" in refused.stderr
    status = run_cli("--env", "staging", "status", "--format", "json", cwd=project)
    assert json.loads(status.stdout)["current"] == ["a1f0c0de0003"]

    overridden = run_cli(
        "--env",
        "staging",
        "downgrade",
        "--yes",
        "-2",
        "--override",
        "email moved to contacts",
        cwd=project,
    )
    assert overridden.exit_code == 0, overridden
    status = run_cli("--env", "staging", "status", "--format", "json", cwd=project)
    assert json.loads(status.stdout)["current"] == ["a1f0c0de0001"]
