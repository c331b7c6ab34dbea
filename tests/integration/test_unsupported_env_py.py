"""env.py setups abmigrate cannot follow yet are refused before any revision runs, with what
env.py configures, instead of being migrated and then reported at "no revision"."""

from __future__ import annotations

from pathlib import Path

from runner_helpers import make_project, query, versions


def _patch_env(root: Path, old: str, new: str) -> None:
    env_py = root / "env.py"
    text = env_py.read_text()
    assert old in text
    env_py.write_text(text.replace(old, new))


def test_a_custom_version_table_is_refused_before_anything_runs(copy_scenario, run_cli, sqlite_url):
    root = make_project(copy_scenario)
    _patch_env(
        root,
        "context.configure(connection=connection, transaction_per_migration=True)",
        "context.configure(connection=connection, transaction_per_migration=True,"
        ' version_table="schema_revisions")',
    )
    env = {"DATABASE_URL": sqlite_url}
    for args in (("upgrade",), ("upgrade", "--dry-run")):
        result = run_cli(*args, cwd=root, env=env)
        assert result.exit_code == 2, result
        assert "env.py records revisions in 'schema_revisions'" in result.stderr
        assert "hint: run this project with plain alembic" in result.stderr
        assert "Traceback" not in result.stderr
    assert query(sqlite_url, "SELECT name FROM sqlite_master WHERE name = 'items'") == []


def test_a_search_path_set_by_env_py_is_refused(copy_scenario, run_cli, pg_url):
    root = make_project(copy_scenario)
    _patch_env(
        root,
        "        with engine.connect() as connection:\n",
        "        with engine.connect() as connection:\n"
        '            connection.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS app")\n'
        '            connection.exec_driver_sql("SET search_path TO app")\n'
        "            connection.commit()\n",
    )
    env = {"DATABASE_URL": pg_url}
    for args in (("upgrade",), ("upgrade", "--dry-run")):
        result = run_cli(*args, cwd=root, env=env)
        assert result.exit_code == 2, result
        assert "env.py sets search_path to 'app'" in result.stderr
        assert "ALTER ROLE" in result.stderr  # the way that works
    assert query(pg_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'app'") == [(0,)]
    assert versions(pg_url) == []
