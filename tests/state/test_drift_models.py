"""Live schema vs models through Alembic's autogenerate comparison, on real databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from runner_helpers import execute_all as execute
from sqlalchemy.pool import NullPool

from abmigrate.bridge.models import load_models
from abmigrate.config.workspace import Workspace
from abmigrate.db.fingerprint import fingerprint_url
from abmigrate.state.drift import compare_url_to_models

ABPARTS_INI = Path(__file__).resolve().parents[2] / "examples" / "abparts" / "alembic.ini"


def build_metadata() -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
        "orgs",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
    )
    sa.Table(
        "users",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=True),
        sa.Column("email", sa.String(255), nullable=False, index=True),
        sa.Column(
            "status",
            sa.Enum("active", "inactive", name="userstatus"),
            nullable=False,
            server_default="active",
        ),
    )
    return metadata


def create_all(url: str, metadata: sa.MetaData) -> None:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite_url", "pg_url"], ids=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(request.param))


def test_matching_schema_has_no_drift_and_bookkeeping_is_ignored(db_url: str) -> None:
    metadata = build_metadata()
    create_all(db_url, metadata)
    execute(
        db_url,
        [
            "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)",
            "CREATE TABLE abmigrate_journal (id INTEGER PRIMARY KEY)",
        ],
    )
    assert compare_url_to_models(db_url, metadata) == []


def test_hand_made_changes_are_listed_and_nothing_is_written(db_url: str) -> None:
    metadata = build_metadata()
    create_all(db_url, metadata)
    execute(
        db_url,
        [
            "CREATE TABLE audit (id INTEGER PRIMARY KEY, note TEXT)",
            "ALTER TABLE users ADD COLUMN nickname VARCHAR(50)",
            "CREATE INDEX ix_users_nickname ON users (nickname)",
        ],
    )
    before = fingerprint_url(db_url)
    found = {d.describe() for d in compare_url_to_models(db_url, metadata)}
    assert "extra table audit (2 columns: id, note) (in the database only)" in found
    assert "extra column users.nickname: VARCHAR(50) NULL (in the database only)" in found
    assert any(line.startswith("extra index users.ix_users_nickname") for line in found)
    assert fingerprint_url(db_url).digest == before.digest


def test_postgresql_type_default_and_enum_value_drift(pg_url: str) -> None:
    metadata = build_metadata()
    create_all(pg_url, metadata)
    execute(
        pg_url,
        [
            "ALTER TABLE users ALTER COLUMN email TYPE VARCHAR(100)",
            "ALTER TABLE users ALTER COLUMN status SET DEFAULT 'inactive'",
            "ALTER TABLE orgs ALTER COLUMN name DROP NOT NULL",
        ],
    )
    execute(pg_url, ["ALTER TYPE userstatus ADD VALUE 'locked'"])
    differences = {d.name: d for d in compare_url_to_models(pg_url, metadata)}
    email = differences["users.email"]
    assert email.change == "changed"
    assert email.changed_attributes()["type"] == ("VARCHAR(255)", "VARCHAR(100)")
    assert "default" in differences["users.status"].changed_attributes()
    assert differences["orgs.name"].changed_attributes()["nullable"] == (False, True)
    assert differences["userstatus"].describe() == (
        "changed enum userstatus: values (active, inactive) → (active, inactive, locked)"
    )


def test_abparts_models_from_env_py_and_from_settings(tmp_path: Path) -> None:
    workspace = Workspace.open(alembic_ini=ABPARTS_INI, url=f"sqlite:///{tmp_path / 'a.db'}")
    source = load_models(workspace)
    assert source is not None
    assert source.origin == "env.py target_metadata"
    assert "users" in source.metadata[0].tables
    # env.py's own include_object keeps abmigrate_* tables out, and is passed on.
    assert source.include_object is not None

    config = tmp_path / "abmigrate.toml"
    config.write_text(
        f'alembic_ini = "{ABPARTS_INI}"\nmodels = "app.models:Base.metadata"\n'
        "[environments.development]\n"
        f'url = "sqlite:///{tmp_path / "b.db"}"\n'
    )
    configured = load_models(Workspace.open(config=config))
    assert configured is not None
    assert configured.origin == "models = 'app.models:Base.metadata'"
    assert set(configured.metadata[0].tables) == set(source.metadata[0].tables)


def test_an_env_py_that_cannot_run_offline_is_not_said_to_set_no_models(
    copy_scenario: Any, run_cli: Any, sqlite_url: str
) -> None:
    # env.py sets a target_metadata but raises without a connection in config.attributes
    # (dagster's): abmigrate's offline look at it fails, and the message says so.
    project = copy_scenario("handed_connection_env")
    args = ("--alembic-ini", project / "alembic.ini", "--url", sqlite_url)
    assert run_cli(*args, "upgrade", cwd=project).exit_code == 0
    result = run_cli(*args, "drift", cwd=project)
    assert result.exit_code == 2, result
    assert "sets no target_metadata" not in result.stderr
    assert (
        "env.py could not be run offline to read its target_metadata (Exception: No connection"
        " set in alembic config: read the README.)"
    ) in " ".join(result.stderr.split())
