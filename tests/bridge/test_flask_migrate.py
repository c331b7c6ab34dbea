"""Flask-Migrate projects: env.py runs inside the Flask application's context.

The scenario ``flask_migrate_app`` is what ``flask db init`` and two ``flask db migrate``
wrote for a small application factory with Flask-SQLAlchemy models: its env.py reads the
engine, the URL and the metadata from ``flask.current_app``, and its alembic.ini names no
script_location. abmigrate finds the application as the ``flask`` command does ($FLASK_APP,
or the ``flask_app`` setting), and migrates the database it was told, never the one the
application's own configuration names (``$FLASKR_DATABASE_URL`` here, a SQLite file that
must be left untouched).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect

pytest.importorskip("flask_migrate")

HEAD = "a1f0c0de0002"
FIRST = "a1f0c0de0001"
FACTORY = "flaskr:create_app()"


@pytest.fixture
def project(copy_scenario: Any) -> Path:
    return Path(copy_scenario("flask_migrate_app"))


@pytest.fixture
def app_db(tmp_path: Path) -> Path:
    """The application's own database: a SQLite file holding one table of its own."""
    path = tmp_path / "app_own.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE untouched (id INTEGER PRIMARY KEY)")
    return path


def _env(app_db: Path, *, flask_app: str | None = FACTORY) -> dict[str, str | None]:
    return {"FLASK_APP": flask_app, "FLASKR_DATABASE_URL": f"sqlite:///{app_db}"}


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _app_db_untouched(app_db: Path) -> None:
    with sqlite3.connect(app_db) as connection:
        names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert names == {"untouched"}


def _versions(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [row[0] for row in connection.exec_driver_sql("SELECT * FROM alembic_version")]
    finally:
        engine.dispose()


def _lifecycle(run_cli: Any, project: Path, url: str, app_db: Path) -> None:
    args = ("--alembic-ini", project / "migrations" / "alembic.ini", "--url", url)
    env = _env(app_db)

    status = run_cli(*args, "status", cwd=project, env=env)
    assert status.exit_code == 0, status
    assert "uninitialized" in status.stdout

    plan = run_cli(*args, "plan", "--sql", cwd=project, env=env)
    assert plan.exit_code == 0, plan
    assert "CREATE TABLE author" in plan.stdout
    assert "CREATE TABLE post" in plan.stdout

    upgrade = run_cli(*args, "upgrade", cwd=project, env=env)
    assert upgrade.exit_code == 0, upgrade
    assert _versions(url) == [HEAD]
    assert {"author", "post", "alembic_version"} <= _tables(url)

    drift = run_cli(*args, "drift", cwd=project, env=env)
    assert drift.exit_code == 0, drift
    assert "no drift" in drift.stdout

    downgrade = run_cli(*args, "downgrade", "-1", "--yes", cwd=project, env=env)
    assert downgrade.exit_code == 0, downgrade
    assert _versions(url) == [FIRST]
    assert "post" not in _tables(url)

    again = run_cli(*args, "upgrade", cwd=project, env=env)
    assert again.exit_code == 0, again
    assert _versions(url) == [HEAD]
    _app_db_untouched(app_db)


def test_flask_migrate_lifecycle_on_sqlite(
    project: Path, run_cli: Any, sqlite_url: str, app_db: Path
) -> None:
    _lifecycle(run_cli, project, sqlite_url, app_db)


def test_flask_migrate_lifecycle_on_postgres(
    project: Path, run_cli: Any, pg_url: str, app_db: Path
) -> None:
    _lifecycle(run_cli, project, pg_url, app_db)


def test_check_round_trip_and_models_on_postgres(
    project: Path, run_cli: Any, pg_server_url: str, app_db: Path
) -> None:
    # Scratch databases on the server: each run of env.py reaches the scratch database,
    # not the application's.
    result = run_cli(
        "--alembic-ini",
        project / "migrations" / "alembic.ini",
        "--url",
        pg_server_url,
        "check",
        "--checks",
        "round_trip,models_match_head",
        cwd=project,
        env=_env(app_db),
    )
    assert result.exit_code == 0, result
    assert "round_trip" in result.stdout and "models_match_head" in result.stdout
    _app_db_untouched(app_db)


def test_drift_reports_a_model_the_migrations_lack(
    project: Path, run_cli: Any, run_cli_process: Any, sqlite_url: str, app_db: Path
) -> None:
    args = ("--alembic-ini", project / "migrations" / "alembic.ini", "--url", sqlite_url)
    env = _env(app_db)
    assert run_cli(*args, "upgrade", cwd=project, env=env).exit_code == 0
    models = project / "flaskr" / "models.py"
    models.write_text(
        models.read_text()
        + "\n\nclass Tag(db.Model):\n"
        + '    __tablename__ = "tag"\n'
        + "    id = db.Column(db.Integer, primary_key=True)\n"
    )
    # A new process: the application (and its models) is loaded once per process.
    drift = run_cli_process(*args, "drift", cwd=project, env=env)
    assert drift.exit_code == 1, drift
    assert "tag" in drift.stdout


def test_the_flask_app_setting_names_the_application(
    project: Path, run_cli: Any, tmp_path: Path, app_db: Path
) -> None:
    target = tmp_path / "target.db"
    (project / "pyproject.toml").write_text(
        "[tool.abmigrate]\n"
        'alembic_ini = "migrations/alembic.ini"\n'
        f'flask_app = "{FACTORY}"\n'
        "[tool.abmigrate.environments.development]\n"
        f'url = "sqlite:///{target}"\n'
    )
    # From a sub-folder, without FLASK_APP: the setting's module is found from the
    # configuration file's folder.
    elsewhere = project / "migrations" / "versions"
    env = _env(app_db, flask_app=None)
    upgrade = run_cli("upgrade", cwd=elsewhere, env=env)
    assert upgrade.exit_code == 0, upgrade
    assert _versions(f"sqlite:///{target}") == [HEAD]
    check = run_cli("check", "--checks", "round_trip", cwd=elsewhere, env=env)
    assert check.exit_code == 0, check
    _app_db_untouched(app_db)


def test_a_per_environment_flask_app_wins(
    project: Path, run_cli: Any, tmp_path: Path, app_db: Path
) -> None:
    target = tmp_path / "target.db"
    (project / "pyproject.toml").write_text(
        "[tool.abmigrate]\n"
        'alembic_ini = "migrations/alembic.ini"\n'
        'flask_app = "nowhere:create_app()"\n'
        "[tool.abmigrate.environments.development]\n"
        f'url = "sqlite:///{target}"\n'
        f'flask_app = "{FACTORY}"\n'
    )
    upgrade = run_cli("upgrade", cwd=project, env=_env(app_db, flask_app=None))
    assert upgrade.exit_code == 0, upgrade


def test_without_an_application_one_line_and_a_hint(
    project: Path, run_cli: Any, sqlite_url: str, app_db: Path
) -> None:
    args = ("--alembic-ini", project / "migrations" / "alembic.ini", "--url", sqlite_url)
    result = run_cli(*args, "upgrade", cwd=project, env=_env(app_db, flask_app=None))
    assert result.exit_code == 2, result
    assert "Traceback" not in result.stderr
    assert "error: env.py needs a Flask application: Could not locate a Flask application" in (
        result.stderr
    )
    assert 'hint: name the application with flask_app = "module:create_app()"' in result.stderr
    assert "alembic_version" not in _tables(sqlite_url)


def test_an_application_that_fails_to_load(
    project: Path, run_cli: Any, sqlite_url: str, app_db: Path
) -> None:
    args = ("--alembic-ini", project / "migrations" / "alembic.ini", "--url", sqlite_url)
    env = _env(app_db, flask_app="flaskr:make_app()")
    result = run_cli(*args, "plan", "--sql", cwd=project, env=env)
    assert result.exit_code == 2, result
    assert "Traceback" not in result.stderr
    assert "error: env.py needs a Flask application 'flaskr:make_app()'" in result.stderr


def test_without_flask_installed(
    project: Path, run_cli_process: Any, sqlite_url: str, tmp_path: Path, app_db: Path
) -> None:
    # A folder first on the path whose `flask` cannot be imported: as if Flask were not
    # installed where abmigrate runs.
    hidden = tmp_path / "no_flask" / "flask"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('No module named flask')\n")
    args = ("--alembic-ini", project / "migrations" / "alembic.ini", "--url", sqlite_url)
    env = {**_env(app_db), "PYTHONPATH": str(hidden.parent)}
    result = run_cli_process(*args, "upgrade", cwd=project, env=env)
    assert result.exit_code == 2, result
    assert "Traceback" not in result.stderr
    assert "Flask is not installed here" in result.stderr


def test_a_plain_env_py_loads_no_flask(copy_scenario: Any) -> None:
    from abmigrate.bridge.project import AlembicProject

    plain = Path(copy_scenario("linear"))
    ini = next(plain.rglob("alembic.ini"))
    assert not AlembicProject(ini).needs_flask_app
    flask_ini = Path(copy_scenario("flask_migrate_app")) / "migrations" / "alembic.ini"
    assert AlembicProject(flask_ini).needs_flask_app
