"""Bad input gets one clear line, a hint, the documented exit code and no traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def one_clear_error(result, exit_code: int) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == exit_code, result
    assert "Traceback" not in result.stderr, result
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: "), result
    return result.stderr


@pytest.fixture
def configured(copy_scenario, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    project = copy_scenario("linear")
    (project / "abmigrate.toml").write_text(
        """
alembic_ini = "alembic.ini"
default_env = "development"

[environments.development]
url = "sqlite:///dev.db"

[environments.production]
url_env = "PROD_URL"
"""
    )
    return project


def test_malformed_toml(run_cli, configured: Path) -> None:  # type: ignore[no-untyped-def]
    (configured / "abmigrate.toml").write_text("default_env = 'development\n")
    err = one_clear_error(run_cli("status", cwd=configured), 2)
    assert "malformed TOML" in err


def test_unknown_key_is_named(run_cli, configured: Path) -> None:  # type: ignore[no-untyped-def]
    path = configured / "abmigrate.toml"
    path.write_text(path.read_text() + "\nbackup_directory = 'x'\n")
    err = one_clear_error(run_cli("status", cwd=configured), 2)
    assert "unknown key 'backup_directory'" in err


def test_unknown_environment(run_cli, configured: Path) -> None:  # type: ignore[no-untyped-def]
    err = one_clear_error(run_cli("status", "--env", "prod", cwd=configured), 2)
    assert "unknown environment 'prod'" in err and "production" in err


def test_environment_variable_selects_the_environment(run_cli, configured: Path) -> None:  # type: ignore[no-untyped-def]
    err = one_clear_error(run_cli("status", cwd=configured, env={"ENVIRONMENT": "production"}), 2)
    assert "$PROD_URL, which is not set" in err


def test_missing_alembic_ini(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    err = one_clear_error(
        run_cli("--alembic-ini", "nowhere/alembic.ini", "--url", "sqlite:///x.db", "status"), 2
    )
    assert "nowhere/alembic.ini" in err


def test_unreachable_database_never_shows_the_password(run_cli, copy_scenario) -> None:  # type: ignore[no-untyped-def]
    project = copy_scenario("linear")
    url = "postgresql+psycopg://abparts:Sup3rSecret@127.0.0.1:1/abparts"
    for command in ("status", "upgrade", "history"):
        result = run_cli("--alembic-ini", project / "alembic.ini", "--url", url, command)
        err = one_clear_error(result, 2)
        assert "cannot connect" in err and "hint:" in err
        assert "Sup3rSecret" not in result.stdout + result.stderr


def test_a_role_the_server_rejects(run_cli, copy_scenario, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    project = copy_scenario("linear")
    url = pg_url.replace("postgres@", "no_such_role:Pw0rd@")
    result = run_cli("--alembic-ini", project / "alembic.ini", "--url", url, "status")
    err = one_clear_error(result, 2)
    assert "no_such_role" in err
    assert "Pw0rd" not in result.stdout + result.stderr


def test_not_a_url(run_cli, copy_scenario) -> None:  # type: ignore[no-untyped-def]
    project = copy_scenario("linear")
    err = one_clear_error(
        run_cli("--alembic-ini", project / "alembic.ini", "--url", "nonsense", "status"), 2
    )
    assert "not a database URL" in err


def test_unknown_revision_and_ambiguous_prefix(run_cli, configured: Path) -> None:  # type: ignore[no-untyped-def]
    err = one_clear_error(run_cli("upgrade", "ffff", cwd=configured), 2)
    assert "unknown revision 'ffff'" in err
    err = one_clear_error(run_cli("upgrade", "a1f0", cwd=configured), 2)
    assert "ambiguous revision prefix 'a1f0'" in err
    assert "a1f0c0de0001" in err and "a1f0c0de0003" in err
    assert not (configured / "dev.db").exists()


def test_unknown_command_is_a_usage_error(run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("upgrayedd")
    assert result.exit_code == 2
    assert "No such command" in result.stderr


def test_confirmation_required_and_nobody_to_ask_is_refused(  # type: ignore[no-untyped-def]
    run_cli, configured: Path, tmp_path: Path
) -> None:
    prod_url = f"sqlite:///{tmp_path / 'prod.db'}"
    env = {"PROD_URL": prod_url}
    (configured / "abmigrate.toml").write_text(
        # allow_destructive: the linear scenario's plain CREATE INDEX is a lint error that
        # production's default policy refuses; this test is about confirmation only.
        (configured / "abmigrate.toml").read_text()
        + "require_backup = false\nallow_destructive = true\n"
    )
    refused = run_cli("upgrade", "--env", "production", cwd=configured, env=env)
    err = one_clear_error(refused, 1)
    assert "requires confirmation" in err and "--yes" in err
    status = run_cli("status", "--env", "production", "--format", "json", cwd=configured, env=env)
    assert json.loads(status.stdout)["state"] == "uninitialized"

    confirmed = run_cli("upgrade", "--env", "production", "--yes", cwd=configured, env=env)
    assert confirmed.exit_code == 0, confirmed
    status = run_cli("status", "--env", "production", "--format", "json", cwd=configured, env=env)
    assert json.loads(status.stdout)["state"] == "up_to_date"


def test_autogenerate_writes_the_model_change_into_a_new_revision(  # type: ignore[no-untyped-def]
    run_cli, tmp_path: Path, sqlite_url: str
) -> None:
    project = tmp_path / "abparts"
    shutil.copytree(REPO / "examples" / "abparts", project)
    cli = ("--alembic-ini", project / "alembic.ini", "--url", sqlite_url)
    assert run_cli(*cli, "upgrade").exit_code == 0
    models = project / "app" / "models.py"
    source = models.read_text()
    anchor = "class Machine("
    assert anchor in source
    models.write_text(
        source.replace(
            anchor,
            "class Supplier(Base):\n"
            '    __tablename__ = "audit_notes"\n'
            "    id: Mapped[int] = mapped_column(primary_key=True)\n\n\n" + anchor,
            1,
        )
    )
    created = run_cli(
        *cli, "revision", "--autogenerate", "-m", "add audit notes", "--format", "json"
    )
    assert created.exit_code == 0, created
    text = Path(json.loads(created.stdout)["path"]).read_text()
    assert "op.create_table('audit_notes'" in text or 'op.create_table("audit_notes"' in text
