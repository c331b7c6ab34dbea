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

import json
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


# -- what pgAdmin's history taught (corpus/projects/pgadmin4.toml) -----------------------

THIRD = '''"""tags

Revision ID: a1f0c0de0003
Revises: a1f0c0de0002
"""
from alembic import op
import sqlalchemy as sa

{imports}

revision = 'a1f0c0de0003'
down_revision = 'a1f0c0de0002'
branch_labels = None
depends_on = None


def upgrade():
{body}
    op.create_table('tag', sa.Column('id', sa.Integer(), nullable=False),
                    sa.PrimaryKeyConstraint('id'))


def downgrade():
    op.drop_table('tag')
'''


def _third_revision(project: Path, *, imports: str = "", body: str = "    pass") -> None:
    versions = project / "migrations" / "versions"
    (versions / "a1f0c0de0003_tags.py").write_text(THIRD.format(imports=imports, body=body))


def test_revisions_import_what_the_application_puts_on_the_path(
    project: Path, run_cli: Any, sqlite_url: str, app_db: Path
) -> None:
    # pgAdmin's revisions `import config`, a module its application's folder holds: the
    # `flask` command loads the application before any revision is imported, and so must
    # abmigrate (else `plan` and `lint` fail with ModuleNotFoundError).
    extra = project / "site"
    extra.mkdir()
    (extra / "site_settings.py").write_text("TAG_TABLE = 'tag'\n")
    factory = project / "flaskr" / "__init__.py"
    factory.write_text(
        factory.read_text().replace(
            "    app = Flask(__name__)\n",
            "    import sys\n\n"
            "    sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'site'))\n"
            "    app = Flask(__name__)\n",
        )
    )
    _third_revision(project, imports="import site_settings  # noqa: F401")
    args = ("--alembic-ini", project / "migrations" / "alembic.ini", "--url", sqlite_url)
    env = _env(app_db)
    plan = run_cli(*args, "plan", "--sql", cwd=project, env=env)
    assert plan.exit_code == 0, plan
    assert "CREATE TABLE tag" in plan.stdout
    lint = run_cli(*args, "lint", cwd=project, env=env)
    assert lint.exit_code in (0, 1), lint
    assert "ModuleNotFoundError" not in lint.stdout + lint.stderr


def test_an_offline_render_never_connects_through_the_application(
    project: Path, run_cli: Any, sqlite_url: str, app_db: Path
) -> None:
    # pgAdmin's 09d53fca90c7 runs create_all on Flask-SQLAlchemy's engine when it cannot
    # read its version row (offline): `plan --sql` must not write to the target through
    # the engine abmigrate points at it, nor to the application's own database.
    _third_revision(
        project,
        imports="from flaskr.models import db, Post",
        body="    db.metadata.create_all(db.engine, tables=[Post.__table__])",
    )
    args = ("--alembic-ini", project / "migrations" / "alembic.ini", "--url", sqlite_url)
    plan = run_cli(*args, "--format", "json", "plan", "--sql", cwd=project, env=_env(app_db))
    assert plan.exit_code == 0, plan
    assert "tag" not in _tables(sqlite_url) and "post" not in _tables(sqlite_url)
    _app_db_untouched(app_db)
    assert "engine was asked for a connection while abmigrate renders SQL offline" in (plan.stdout)
    # Online, the same revision runs on the target, as `flask db upgrade` runs it.
    upgrade = run_cli(*args, "upgrade", cwd=project, env=_env(app_db))
    assert upgrade.exit_code == 0, upgrade
    assert {"post", "tag"} <= _tables(sqlite_url)
    _app_db_untouched(app_db)


def test_models_from_flask_migrate_when_env_py_sets_none_offline(
    project: Path, run_cli: Any, sqlite_url: str, app_db: Path
) -> None:
    # pgAdmin's env.py configures no target_metadata offline: the models are then
    # Flask-Migrate's db.metadata, what its template hands autogenerate.
    env_py = project / "migrations" / "env.py"
    text = env_py.read_text()
    offline = "url=url, target_metadata=get_metadata(), literal_binds=True"
    assert offline in text
    env_py.write_text(text.replace(offline, "url=url, literal_binds=True"))
    args = ("--alembic-ini", project / "migrations" / "alembic.ini", "--url", sqlite_url)
    assert run_cli(*args, "upgrade", cwd=project, env=_env(app_db)).exit_code == 0
    drift = run_cli(*args, "drift", cwd=project, env=_env(app_db))
    assert drift.exit_code == 0, drift
    assert "Flask-Migrate's db.metadata" in drift.stdout


def test_the_applications_prints_stay_off_standard_output(
    project: Path, run_cli: Any, sqlite_url: str, app_db: Path
) -> None:
    # pgAdmin's create_app() prints while it migrates its own database: standard output
    # carries abmigrate's JSON.
    factory = project / "flaskr" / "__init__.py"
    factory.write_text(
        factory.read_text().replace(
            "    return app\n", "    print('NOTE: the application is ready')\n    return app\n"
        )
    )
    args = ("--alembic-ini", project / "migrations" / "alembic.ini", "--url", sqlite_url)
    plan = run_cli(*args, "--format", "json", "plan", cwd=project, env=_env(app_db))
    assert plan.exit_code == 0, plan
    assert json.loads(plan.stdout)["steps"]
    assert "NOTE: the application is ready" in plan.stderr
