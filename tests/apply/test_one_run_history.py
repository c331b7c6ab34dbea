"""A plan runs the way `alembic upgrade head` runs it: one env.py run for the whole plan.

The one_run_history scenario's second revision reuses the enum its first created; Alembic
accepts that only within one run (plain `alembic upgrade e1` then `alembic upgrade head`
fails), as optuna's real history does. upgrade, check and diagnose must all get through.
"""

from __future__ import annotations

import json
import subprocess
import sys

from runner_helpers import query


def _alembic(root, url, *args):
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(root / "alembic.ini"), "-x", "unused=1", *args],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=False,
    )


def _tables(url: str) -> list[str]:
    rows = query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return sorted(str(row[0]) for row in rows)


def test_plain_alembic_fails_the_history_when_split(copy_scenario, pg_url):
    # The scenario is what it claims: split into two runs, Alembic itself fails.
    root = copy_scenario("one_run_history")
    url_ini = root / "alembic.ini"
    url_ini.write_text(
        url_ini.read_text().replace("sqlalchemy.url =", f"sqlalchemy.url = {pg_url}")
    )
    assert _alembic(root, pg_url, "upgrade", "e1").returncode == 0
    second = _alembic(root, pg_url, "upgrade", "head")
    assert second.returncode != 0
    assert 'type "studydirection" already exists' in second.stderr


def test_upgrade_check_and_diagnose_get_through_a_one_run_history(
    copy_scenario, run_cli, pg_url, pg_server_url
):
    root = copy_scenario("one_run_history")
    env = {"DATABASE_URL": pg_url}
    upgraded = run_cli("upgrade", cwd=root, env=env)
    assert upgraded.exit_code == 0, upgraded
    assert "✓ upgrade e2" in upgraded.stderr
    assert query(pg_url, "SELECT version_num FROM alembic_version") == [("e2",)]
    assert {"studies", "study_directions"} <= set(_tables(pg_url))
    diagnosed = run_cli("diagnose", "--format", "json", cwd=root, env=env)
    assert diagnosed.exit_code == 0, diagnosed
    assert json.loads(diagnosed.stdout)["state"] == "up_to_date"
    checked = run_cli(
        "check", "--url", pg_server_url, "--checks", "round_trip,single_head", cwd=root
    )
    assert checked.exit_code == 0, checked
