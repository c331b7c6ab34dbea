"""Configuration loading, environment selection and policies."""

from __future__ import annotations

from pathlib import Path

import pytest

from abmigrate.config.settings import Policy, load_settings, mask_url, parse_duration_ms
from abmigrate.errors import ConfigError

CONFIG = """
[tool.abmigrate]
alembic_ini = "alembic.ini"
default_env = "development"

[tool.abmigrate.environments.development]
url = "sqlite:///dev.db"

[tool.abmigrate.environments.testing]
url = "sqlite:///test.db"

[tool.abmigrate.environments.production]
url_env = "PROD_DATABASE_URL"
lock_timeout = "2s"
statement_timeout = "15min"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    (tmp_path / "pyproject.toml").write_text(CONFIG)
    return tmp_path


@pytest.fixture(autouse=True)
def no_selection_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ABMIGRATE_ENV", "ENVIRONMENT", "PROD_DATABASE_URL", "ABMIGRATE_BASELINE"):
        monkeypatch.delenv(name, raising=False)


def test_environment_is_chosen_by_flag_then_variables_then_default(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(cwd=project)
    assert settings.environment().name == "development"
    monkeypatch.setenv("ENVIRONMENT", "testing")
    assert settings.environment().name == "testing"
    monkeypatch.setenv("ABMIGRATE_ENV", "development")
    assert settings.environment().name == "development"
    monkeypatch.setenv("PROD_DATABASE_URL", "postgresql+psycopg://app:pw@db/abparts")
    assert settings.environment("production").name == "production"


def test_config_is_found_from_a_sub_folder_and_sqlite_paths_are_anchored(project: Path) -> None:
    nested = project / "app" / "deep"
    nested.mkdir(parents=True)
    environment = load_settings(cwd=nested).environment()
    assert environment.url == f"sqlite:///{project / 'dev.db'}"


def test_production_policy_defaults_and_durations(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROD_DATABASE_URL", "postgresql+psycopg://app:s3cret@db/abparts")
    production = load_settings(cwd=project).environment("production")
    assert production.policy.require_backup and production.policy.require_confirmation
    assert production.policy.allow_destructive is False
    assert production.policy.lock_timeout_ms == 2000
    assert production.policy.statement_timeout_ms == 900_000
    assert "s3cret" not in production.masked_url
    assert "s3cret" not in str(production.to_record())
    development = load_settings(cwd=project).environment("development")
    assert development.policy == Policy()


def test_missing_url_variable_names_it(project: Path) -> None:
    with pytest.raises(ConfigError, match=r"\$PROD_DATABASE_URL, which is not set"):
        load_settings(cwd=project).environment("production")


def test_unknown_environment_lists_known_ones(project: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(cwd=project).environment("prod")
    assert "unknown environment 'prod'" in caught.value.message
    assert "development, production, testing" in caught.value.message


def test_unknown_keys_are_named(project: Path) -> None:
    (project / "pyproject.toml").write_text(CONFIG + "\n[tool.abmigrate.extra]\nx = 1\n")
    with pytest.raises(ConfigError, match="unknown key 'extra'"):
        load_settings(cwd=project)
    (project / "pyproject.toml").write_text(
        CONFIG.replace('lock_timeout = "2s"', 'lock_timout = "2s"')
    )
    with pytest.raises(ConfigError, match=r"unknown key 'lock_timout' in environments\.production"):
        load_settings(cwd=project)


def test_small_table_rows_is_a_policy_key(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROD_DATABASE_URL", "postgresql+psycopg://app@db/abparts")
    default = load_settings(cwd=project).environment("development").policy
    assert default.small_table_rows == 10_000
    assert default.to_record()["small_table_rows"] == 10_000
    for value in (0, 250):
        (project / "pyproject.toml").write_text(CONFIG + f"small_table_rows = {value}\n")
        settings = load_settings(cwd=project)
        assert settings.environment("production").policy.small_table_rows == value
        assert settings.environment("development").policy.small_table_rows == 10_000
    for bad in ("-1", "true", "'10k'", "2.5"):
        (project / "pyproject.toml").write_text(CONFIG + f"small_table_rows = {bad}\n")
        with pytest.raises(ConfigError, match=r"production\.small_table_rows: expected a number"):
            load_settings(cwd=project)
    (project / "pyproject.toml").write_text(CONFIG + "small_table_row = 5\n")
    with pytest.raises(ConfigError, match="unknown key 'small_table_row'") as caught:
        load_settings(cwd=project)
    assert "small_table_rows" in str(caught.value.hint)


def test_malformed_toml_and_bad_values(project: Path) -> None:
    (project / "abmigrate.toml").write_text("default_env = 'development\n")
    with pytest.raises(ConfigError, match="malformed TOML"):
        load_settings(cwd=project)
    (project / "abmigrate.toml").write_text(
        "[environments.production]\nurl = 'sqlite:///p.db'\nlock_timeout = 'soon'\n"
    )
    with pytest.raises(ConfigError, match="cannot read duration 'soon'"):
        load_settings(cwd=project)


def test_without_configuration_url_and_alembic_ini_suffice(tmp_path: Path) -> None:
    ini = tmp_path / "alembic.ini"
    ini.write_text("[alembic]\n")
    settings = load_settings(alembic_ini=ini, url="sqlite:///x.db", cwd=tmp_path)
    environment = settings.environment()
    assert environment.name == "development"
    assert environment.policy == Policy()
    with pytest.raises(ConfigError, match="no database URL"):
        load_settings(alembic_ini=ini, cwd=tmp_path).environment()


@pytest.mark.parametrize(
    ("text", "ms"), [("500ms", 500), ("2s", 2000), ("15min", 900_000), ("1h", 3_600_000), (3, 3000)]
)
def test_durations(text: str | int, ms: int) -> None:
    assert parse_duration_ms(text, key="k") == ms


def test_mask_url_hides_passwords() -> None:
    assert mask_url("postgresql+psycopg://app:pa%40ss@db:5432/x") == (
        "postgresql+psycopg://app:***@db:5432/x"
    )
    assert mask_url("sqlite:///dev.db") == "sqlite:///dev.db"


def test_mask_url_is_readable_not_percent_encoded() -> None:
    # What SQLAlchemy's render_as_string prints: ?host=%2Ftmp%2Fpg&application_name=ab+parts
    url = "postgresql+psycopg://app:s%40cret@/abparts?host=%2Ftmp%2Fpg&application_name=ab%20parts"
    assert mask_url(url) == (
        "postgresql+psycopg://app:***@/abparts?host=/tmp/pg&application_name=ab%20parts"
    )
    assert mask_url("sqlite:////srv/donn%C3%A9es/dev.db") == "sqlite:////srv/données/dev.db"
    assert mask_url("sqlite:////srv/données/dev.db") == "sqlite:////srv/données/dev.db"
    # A space stays encoded: the URL is one word, whole when output is wrapped or copied.
    assert mask_url("sqlite:////srv/my dev.db") == "sqlite:////srv/my%20dev.db"
    # A password given as a query parameter is masked too.
    assert mask_url("postgresql://app@db/x?password=s3cret&sslmode=require") == (
        "postgresql://app@db/x?password=***&sslmode=require"
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://us%40er:pw@db:5433/x?options=-c%20a%3Db&application_name=a%26b",
        "mysql+pymysql://root:pw@[::1]:3306/shop?charset=utf8mb4",
        "postgresql://app:pw@db/a%2Fb%3Fc?application_name=caf%C3%A9+x%2By",
    ],
)
def test_masked_url_reads_back_as_the_same_url(url: str) -> None:
    """Decoded for reading, yet what would change the parse stays encoded (an incident
    report's commands carry the masked URL)."""
    from sqlalchemy.engine import make_url

    original, shown = make_url(url), make_url(mask_url(url))
    assert shown.password == "***"
    for part in ("drivername", "username", "host", "port", "database"):
        assert getattr(shown, part) == getattr(original, part), part
    assert dict(shown.query) == dict(original.query)


def test_baseline_from_the_file_and_from_the_environment(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings(cwd=project).baseline is None
    (project / "sql").mkdir()
    (project / "sql" / "start.sql").write_text("CREATE TABLE t (id INTEGER);\n")
    (project / "pyproject.toml").write_text(
        CONFIG.replace('default_env = "development"', 'baseline = "sql/start.sql"')
    )
    declared = load_settings(cwd=project).baseline
    assert declared is not None and declared.is_sql
    assert declared.sql_path == project / "sql" / "start.sql"
    assert str(project / "pyproject.toml") in declared.describe()
    # The variable wins over the file (and needs no file: --alembic-ini alone).
    monkeypatch.setenv("ABMIGRATE_BASELINE", "app.legacy:Base.metadata")
    from_env = load_settings(cwd=project).baseline
    assert from_env is not None and from_env.source == "app.legacy:Base.metadata"
    assert "$ABMIGRATE_BASELINE" in from_env.describe()
    elsewhere = project / "elsewhere"
    elsewhere.mkdir()
    bare = load_settings(cwd=elsewhere, alembic_ini=project / "alembic.ini").baseline
    assert bare is not None and bare.source == "app.legacy:Base.metadata"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"app.models"', "cannot read baseline = 'app.models'"),
        ('"no_such.sql"', "baseline SQL file not found"),
        ("true", "baseline must be a non-empty string"),
    ],
)
def test_bad_baseline_values(project: Path, value: str, message: str) -> None:
    (project / "pyproject.toml").write_text(
        CONFIG.replace('default_env = "development"', f"baseline = {value}")
    )
    with pytest.raises(ConfigError, match=message):
        load_settings(cwd=project)
