"""A history that does not start from an empty database (its first tables come from
metadata.create_all or an older tool, as mlflow's does): diagnose on a database upgraded
correctly must not call it broken, must not recommend restoring a backup and must not advise
a forced stamp below the revision it records."""

from __future__ import annotations

import json

from runner_helpers import execute, make_project, versions


def test_diagnose_does_not_advise_a_restore_when_the_baseline_is_not_empty(
    copy_scenario, run_cli, pg_url
):
    root = make_project(copy_scenario)
    first = root / "versions" / "r1_create_items.py"
    # r1 now assumes a `legacy` table made outside the migrations.
    first.write_text(
        first.read_text().replace(
            "def upgrade() -> None:\n",
            "def upgrade() -> None:\n"
            '    op.add_column("legacy", sa.Column("note", sa.String(20)))\n',
        )
    )
    env = {"DATABASE_URL": pg_url}
    execute(pg_url, "CREATE TABLE legacy (id integer PRIMARY KEY)")
    upgraded = run_cli("upgrade", cwd=root, env=env)
    assert upgraded.exit_code == 0, upgraded
    assert versions(pg_url) == ["r5"]
    diagnosed = run_cli("diagnose", "--format", "json", cwd=root, env=env)
    report = json.loads(diagnosed.stdout)
    commands = " ".join(report["recommendation"]["commands"])
    assert "restore" not in commands, report
    assert "--force" not in commands, report
    assert "cannot be replayed on an empty database" in report["recommendation"]["summary"]
    assert report["state"] == "baseline_undeclared", report
    assert 'relation "legacy" does not exist' in report["recommendation"]["summary"]
    assert versions(pg_url) == ["r5"]  # diagnose only reads
