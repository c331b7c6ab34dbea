"""Verification proves what the run did; the models are a separate question.

- models that differ from the migrations are a warning after a successful upgrade (exit 0),
  fatal only with ``verify_models = "fail"``, and never for a difference that was there
  before the run;
- with ``verify_schema = "replay"`` (guarded environments' default) the schema after the
  run must equal what the revisions produce at the target: a diverging application fails,
  while hand changes made before the run do not.
"""

from __future__ import annotations

import json
from pathlib import Path

from runner_helpers import execute, make_project, versions


def _models_drift_project(copy_scenario, policy: dict[str, object] | None = None) -> Path:
    root: Path = copy_scenario("check_models_drift")
    lines = ['alembic_ini = "alembic.ini"', 'models = "models:Base.metadata"', ""]
    lines += ["[environments.development]", 'url_env = "DATABASE_URL"']
    for key, value in (policy or {}).items():
        lines.append(f"{key} = {json.dumps(value)}")
    (root / "abmigrate.toml").write_text("\n".join(lines) + "\n")
    return root


def test_models_that_differ_are_a_warning_after_a_successful_upgrade(
    copy_scenario, run_cli, sqlite_url
):
    root = _models_drift_project(copy_scenario)
    result = run_cli("upgrade", cwd=root, env={"DATABASE_URL": sqlite_url})
    assert result.exit_code == 0, result
    shown = " ".join((result.stdout + result.stderr).split())  # wrapped at 80 columns
    assert "warning: the schema differs from the models in 2 place(s)" in shown
    assert "`abmigrate drift` lists them" in shown
    assert not (root / "incidents").exists()


def test_verify_models_fail_makes_new_differences_fatal_but_not_earlier_ones(
    copy_scenario, run_cli, sqlite_url
):
    root = _models_drift_project(copy_scenario, {"verify_models": "fail"})
    env = {"DATABASE_URL": sqlite_url}
    # The plan step predicts the differences and refuses before anything runs
    # (tests/apply/test_plan_models.py); a revision that diverges only on the live
    # database is what the verification after the run still catches.
    failed = run_cli("upgrade", cwd=root, env=env)
    assert failed.exit_code == 1, failed
    assert "will differ from the models in 2 place(s)" in " ".join(failed.stderr.split())
    assert versions(sqlite_url) == []
    through = run_cli("upgrade", "--override", "accepted", cwd=root, env=env)
    assert through.exit_code == 0, through
    assert versions(sqlite_url) == ["c4d0000000d1"]
    # The next run, which changes nothing, is not blamed for what was there before it.
    again = run_cli("upgrade", cwd=root, env=env)
    assert again.exit_code == 0, again


def test_verify_models_off_does_not_compare(copy_scenario, run_cli, sqlite_url):
    root = _models_drift_project(copy_scenario, {"verify_models": "off"})
    result = run_cli("upgrade", cwd=root, env={"DATABASE_URL": sqlite_url})
    assert result.exit_code == 0, result
    assert "differs from the models" not in result.stdout + result.stderr


def test_replay_verification_catches_a_run_that_diverges_from_the_revisions(
    copy_scenario, run_cli, pg_url
):
    policy = {"verify_schema": "replay", "require_confirmation": False}
    root = make_project(copy_scenario, {"checked": policy})
    env = {"DATABASE_URL": pg_url}
    # A hand change before the run is not the run's fault.
    assert run_cli("upgrade", "r2", cwd=root, env=env).exit_code == 0
    execute(pg_url, "CREATE TABLE hand_made (id integer)")
    through = run_cli("--env", "checked", "upgrade", "r3", cwd=root, env=env)
    assert through.exit_code == 0, through
    # A revision that does something else when it runs here than on an empty replay
    # (it reads the database: the kind of divergence only the live run shows).
    script = root / "versions" / "r4_index_orders_item_id.py"
    script.write_text(
        script.read_text().replace(
            "def upgrade() -> None:\n",
            "def upgrade() -> None:\n"
            "    bind = op.get_bind()\n"
            "    if bind.exec_driver_sql(\"SELECT to_regclass('hand_made')\").scalar():\n"
            '        op.add_column("items", sa.Column("extra", sa.Integer))\n',
        )
    )
    if "import sqlalchemy as sa" not in script.read_text():
        script.write_text("import sqlalchemy as sa\n" + script.read_text())
    diverged = run_cli("--env", "checked", "upgrade", "r4", cwd=root, env=env)
    assert diverged.exit_code == 1, diverged
    assert "differs from what the revisions produce at r4 in 1 place(s)" in diverged.stderr
    assert "items.extra" in diverged.stderr
