"""The ABParts reference project (examples/abparts): its Alembic history, env.py, models and
/health endpoint, on SQLite, a real PostgreSQL and (the migrations) a real MariaDB.

Only plain Alembic/SQLAlchemy/FastAPI drive it here (no abmigrate command): the example must
work on its own, exactly as a user's project would. Two of its revisions import
``abmigrate.ops`` (installed next to Alembic), which must therefore work under plain Alembic,
online and offline.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DIR = REPO_ROOT / "examples" / "abparts"
ALEMBIC_INI = EXAMPLE_DIR / "alembic.ini"

if str(EXAMPLE_DIR) not in sys.path:
    sys.path.insert(0, str(EXAMPLE_DIR))

from app.main import create_app  # noqa: E402

# Starlette >= 1.x warns at import when its TestClient runs on httpx rather than httpx2; the
# warning is about the test tooling, not about the example (pytest turns warnings into errors).
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")
    from fastapi.testclient import TestClient
from app.models import Base  # noqa: E402

HEAD = "a9f6e1b3d720"
MERGE = "5d9b1e3f6a82"
ROOT = "4f2a9c1e7b30"
ADD_SUPER_ADMIN = "e3a7c0d5f914"
EXPECTED_HISTORY = {  # revision -> parents
    "4f2a9c1e7b30": (),
    "9c3e5a7d1b24": ("4f2a9c1e7b30",),
    "b6d1f8e2a947": ("9c3e5a7d1b24",),
    "2e7c4b9a0d13": ("b6d1f8e2a947",),
    "7a0f3d6c2e58": ("b6d1f8e2a947",),
    "c8e5a2f4b761": ("7a0f3d6c2e58",),
    "5d9b1e3f6a82": ("2e7c4b9a0d13", "c8e5a2f4b761"),
    "e3a7c0d5f914": ("5d9b1e3f6a82",),
    "0b4d8f2c6e35": ("e3a7c0d5f914",),
    "a9f6e1b3d720": ("0b4d8f2c6e35",),
}
APP_TABLES = {t.name for t in Base.metadata.sorted_tables}
PG_ENUM_TYPES = {
    "organizationtype",
    "userrole",
    "userstatus",
    "parttype",
    "transactiontype",
    "customerorderstatus",
    "supplierorderstatus",
}
# Nothing listens here: connections are refused at once.
UNREACHABLE_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:1/abparts"

DIALECTS = [
    pytest.param("sqlite_url", id="sqlite"),
    pytest.param("pg_url", id="postgresql", marks=pytest.mark.postgres),
]
# The migrations also run on MariaDB (abmigrate.ops falls back to the plain operations there).
MIGRATION_DIALECTS = [
    *DIALECTS,
    pytest.param("mariadb_url", id="mariadb", marks=pytest.mark.mariadb),
]


@pytest.fixture(params=DIALECTS)
def db_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(request.param)
    return url


@pytest.fixture(params=MIGRATION_DIALECTS)
def migration_db_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(request.param)
    return url


def alembic_config(url: str | None, output_buffer: io.StringIO | None = None) -> Config:
    cfg = Config(str(ALEMBIC_INI), output_buffer=output_buffer)
    # Leave the test session's logging alone (env.py honours this attribute).
    cfg.attributes["configure_logger"] = False
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@pytest.fixture
def engine_for() -> Iterator[Any]:
    """``engine_for(url)``: a NullPool engine, disposed at teardown."""
    engines: list[sa.Engine] = []

    def make(url: str) -> sa.Engine:
        engine = sa.create_engine(url, poolclass=NullPool)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


def current_heads(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def schema_diffs(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                # MariaDB reflects defaults as text (current_timestamp(), 1) that Alembic
                # reports as changed against the models' now()/true(): noise, not drift.
                "compare_server_default": engine.dialect.name != "mysql",
                "target_metadata": Base.metadata,
            },
        )
        return list(compare_metadata(context, Base.metadata))


PARTS = sa.table(
    "parts",
    sa.column("id", sa.Uuid),
    sa.column("part_number", sa.String),
    sa.column("name", sa.String),
    sa.column("part_type"),  # untyped: a VARCHAR-cast parameter would not fit a PG enum
)
BACKFILL_ROWS = 2500


def insert_parts(engine: sa.Engine, rows: list[tuple[str, str]]) -> None:
    """``(part_number, part_type)`` rows into parts, as they stand before 0b4d8f2c6e35."""
    with engine.begin() as conn:
        conn.execute(
            PARTS.insert(),
            [
                {"id": uuid.uuid4(), "part_number": number, "name": number, "part_type": kind}
                for number, kind in rows
            ],
        )


def pg_check_constraints(engine: sa.Engine, table: str) -> list[tuple[str, bool]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT conname, convalidated FROM pg_constraint"
                " WHERE conrelid = CAST(:table AS regclass) AND contype = 'c'"
            ),
            {"table": table},
        )
        return [(str(name), bool(valid)) for name, valid in rows]


def table_names(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def pg_enum_types(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                "WHERE t.typtype = 'e' AND n.nspname = 'public'"
            )
        )
        return {row[0] for row in rows}


# --------------------------------------------------------------------------- revision graph


def test_history_has_one_root_one_head_one_merge() -> None:
    script = ScriptDirectory.from_config(alembic_config(None))
    revisions = list(script.walk_revisions())

    assert {r.revision: tuple(r._normalized_down_revisions) for r in revisions} == (
        EXPECTED_HISTORY
    )
    assert script.get_heads() == [HEAD]
    assert script.get_bases() == [ROOT]
    assert [r.revision for r in revisions if r.is_merge_point] == [MERGE]
    assert [r.revision for r in revisions if r.is_branch_point] == ["b6d1f8e2a947"]
    for rev in revisions:
        assert re.fullmatch(r"[0-9a-f]{12}", rev.revision), rev.revision
        assert Path(rev.path).name.startswith(f"{rev.revision}_"), rev.path
        assert rev.doc and re.fullmatch(r"[a-z0-9_]+", rev.doc), rev.doc
        assert callable(rev.module.upgrade) and callable(rev.module.downgrade)


# --------------------------------------------------------------------------- online round trips


def test_upgrade_downgrade_upgrade_round_trip(migration_db_url: str, engine_for: Any) -> None:
    cfg = alembic_config(migration_db_url)
    engine = engine_for(migration_db_url)
    is_pg = engine.dialect.name == "postgresql"

    command.upgrade(cfg, "head")
    assert current_heads(engine) == {HEAD}
    assert table_names(engine) == APP_TABLES | {"alembic_version"}
    if is_pg:
        assert pg_enum_types(engine) == PG_ENUM_TYPES

    command.downgrade(cfg, "base")
    assert current_heads(engine) == set()
    assert table_names(engine) == {"alembic_version"}
    if is_pg:
        assert pg_enum_types(engine) == set()  # every downgrade drops its enum types

    command.upgrade(cfg, "head")
    assert current_heads(engine) == {HEAD}
    assert schema_diffs(engine) == []


def test_models_match_schema_at_head(db_url: str, engine_for: Any) -> None:
    cfg = alembic_config(db_url)
    command.upgrade(cfg, "head")

    assert schema_diffs(engine_for(db_url)) == []
    # env.py's own autogenerate settings agree (compare_type, compare_server_default, ...).
    command.check(cfg)


def test_merge_branches_upgrade_one_at_a_time(migration_db_url: str, engine_for: Any) -> None:
    cfg = alembic_config(migration_db_url)
    engine = engine_for(migration_db_url)

    command.upgrade(cfg, "2e7c4b9a0d13")  # customer orders branch only
    assert current_heads(engine) == {"2e7c4b9a0d13"}
    command.upgrade(cfg, "c8e5a2f4b761")  # then the procurement branch: two heads applied
    assert current_heads(engine) == {"2e7c4b9a0d13", "c8e5a2f4b761"}
    command.upgrade(cfg, MERGE)
    assert current_heads(engine) == {MERGE}

    command.downgrade(cfg, "7a0f3d6c2e58")  # unmerge, then back off one branch
    assert current_heads(engine) == {"2e7c4b9a0d13", "7a0f3d6c2e58"}
    command.upgrade(cfg, "heads")
    assert current_heads(engine) == {HEAD}


def test_data_migrations_with_rows(migration_db_url: str, engine_for: Any) -> None:
    """The backfill and the enum value behave on a database that already holds data."""
    cfg = alembic_config(migration_db_url)
    engine = engine_for(migration_db_url)
    command.upgrade(cfg, ADD_SUPER_ADMIN)

    org_id, user_id = uuid.uuid4(), uuid.uuid4()
    # Enum columns stay untyped: a VARCHAR-cast parameter would not fit a PostgreSQL enum.
    organizations = sa.table(
        "organizations",
        sa.column("id", sa.Uuid),
        sa.column("name", sa.String),
        sa.column("organization_type"),
    )
    users = sa.table(
        "users",
        sa.column("id", sa.Uuid),
        sa.column("organization_id", sa.Uuid),
        sa.column("username", sa.String),
        sa.column("email", sa.String),
        sa.column("password_hash", sa.String),
        sa.column("role"),
    )
    with engine.begin() as conn:
        conn.execute(
            organizations.insert().values(
                id=org_id, name="Oraseas EE", organization_type="oraseas_ee"
            )
        )
        conn.execute(
            users.insert().values(
                id=user_id,
                organization_id=org_id,
                username="root",
                email="root@oraseas.example",
                password_hash="x",
                role="super_admin",
            )
        )
    insert_parts(engine, [("F-100", "consumable"), ("OIL-5", "bulk_material")])
    # More rows than one backfill batch (1000): every batch must run, not only the first.
    insert_parts(engine, [(f"BOLT-{n}", "consumable") for n in range(BACKFILL_ROWS)])

    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        units = dict(conn.execute(sa.text("SELECT part_number, unit_of_measure FROM parts")).all())
        uom = next(
            c for c in sa.inspect(conn).get_columns("parts") if c["name"] == "unit_of_measure"
        )
    assert units.pop("F-100") == "pieces" and units.pop("OIL-5") == "liters"
    assert set(units.values()) == {"pieces"} and len(units) == BACKFILL_ROWS
    assert uom["nullable"] is False
    if engine.dialect.name == "postgresql":
        assert pg_check_constraints(engine, "parts") == []  # set_not_null's helper is gone

    command.downgrade(cfg, MERGE)  # below e3a7c0d5f914: super_admin no longer exists
    with engine.connect() as conn:
        role = conn.execute(sa.text("SELECT role FROM users WHERE username = 'root'")).scalar_one()
        part_columns = {c["name"] for c in sa.inspect(conn).get_columns("parts")}
    assert role == "admin"
    assert "unit_of_measure" not in part_columns

    command.upgrade(cfg, "head")
    assert current_heads(engine) == {HEAD}
    assert schema_diffs(engine) == []


def test_env_ignores_abmigrate_tables(db_url: str, engine_for: Any) -> None:
    cfg = alembic_config(db_url)
    command.upgrade(cfg, "head")
    with engine_for(db_url).begin() as conn:
        conn.execute(sa.text("CREATE TABLE abmigrate_journal (id INTEGER PRIMARY KEY)"))
    command.check(cfg)  # raises AutogenerateDiffsDetected if the table were compared


def test_env_uses_a_connection_passed_by_a_tool(migration_db_url: str, engine_for: Any) -> None:
    """Cookbook pattern: a tool hands env.py an open connection (outside a transaction, so the
    autocommit blocks of the PostgreSQL enum/index revisions can commit)."""
    cfg = alembic_config(None)  # no URL anywhere but the connection
    engine = engine_for(migration_db_url)
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        assert not conn.closed  # env.py does not close what it did not open
        command.downgrade(cfg, "base")
        command.upgrade(cfg, "head")
        conn.commit()
    assert current_heads(engine) == {HEAD}


def test_env_without_any_url_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(RuntimeError, match="DATABASE_URL"):
        command.upgrade(alembic_config(None), "head")


# --------------------------------------------------------------------------- offline (--sql)


def render_offline_upgrade(url: str) -> str:
    buffer = io.StringIO()
    command.upgrade(alembic_config(url, output_buffer=buffer), "head", sql=True)
    return buffer.getvalue()


def test_offline_sql_renders_for_postgresql() -> None:
    sql = render_offline_upgrade("postgresql+psycopg://abparts@db.invalid/abparts")

    assert "CREATE TYPE userrole AS ENUM ('user', 'admin');" in sql
    assert "CREATE TABLE organizations" in sql
    # ALTER TYPE ... ADD VALUE and CREATE INDEX CONCURRENTLY run outside a transaction.
    assert re.search(
        r"COMMIT;\s+ALTER TYPE userrole ADD VALUE IF NOT EXISTS 'super_admin';\s+BEGIN;", sql
    )
    # 0b4d8f2c6e35 through abmigrate.ops: the backfill outside the transaction that added the
    # column, then NOT NULL proven by a CHECK added NOT VALID and validated on its own.
    assert re.search(
        r"ALTER TABLE parts ADD COLUMN IF NOT EXISTS unit_of_measure VARCHAR\(50\);\s+COMMIT;"
        r"\s+UPDATE parts SET unit_of_measure = CASE [^;]+ WHERE unit_of_measure IS NULL;"
        r"\s+BEGIN;",
        sql,
    )
    assert re.search(
        r"ALTER TABLE parts ADD CONSTRAINT (\w+) CHECK \(unit_of_measure IS NOT NULL\) NOT VALID;"
        r"\s+COMMIT;\s+ALTER TABLE parts VALIDATE CONSTRAINT \1;\s+BEGIN;"
        r"\s+ALTER TABLE parts ALTER COLUMN unit_of_measure SET NOT NULL;"
        r"\s+ALTER TABLE parts DROP CONSTRAINT IF EXISTS \1;",
        sql,
    )
    # a9f6e1b3d720 through ops.create_index_concurrently.
    assert re.search(
        r"COMMIT;\s+CREATE INDEX CONCURRENTLY ix_transactions_transaction_date "
        r"ON transactions \(transaction_date\);\s+BEGIN;",
        sql,
    )
    assert sql.count("BEGIN;") == sql.count("COMMIT;")  # transaction per migration
    assert f"version_num='{HEAD}'" in sql


def test_offline_downgrade_drops_the_index_concurrently() -> None:
    buffer = io.StringIO()
    cfg = alembic_config("postgresql+psycopg://abparts@db.invalid/abparts", output_buffer=buffer)
    command.downgrade(cfg, f"{HEAD}:-1", sql=True)

    assert re.search(
        r"COMMIT;\s+DROP INDEX CONCURRENTLY IF EXISTS ix_transactions_transaction_date;\s+BEGIN;",
        buffer.getvalue(),
    )


def test_offline_sql_renders_for_mariadb() -> None:
    """No NOT VALID / CONCURRENTLY there: abmigrate.ops renders the plain operations."""
    sql = render_offline_upgrade("mariadb+pymysql://abparts@db.invalid/abparts")

    assert "ALTER TABLE parts ADD COLUMN unit_of_measure VARCHAR(50);" in sql
    assert "UPDATE parts SET unit_of_measure = CASE" in sql
    assert "ALTER TABLE parts MODIFY unit_of_measure VARCHAR(50) NOT NULL;" in sql
    assert (
        "CREATE INDEX ix_transactions_transaction_date ON transactions (transaction_date);" in sql
    )
    assert "NOT VALID" not in sql and "CONCURRENTLY" not in sql and "COMMIT;" not in sql


@pytest.mark.parametrize("url_fixture", ["pg_url", "mariadb_url"])
def test_offline_sql_applies(
    url_fixture: str, request: pytest.FixtureRequest, engine_for: Any
) -> None:
    """The rendered script is not only text: run statement by statement, it builds the schema."""
    url: str = request.getfixturevalue(url_fixture)
    # Offline there is no server to ask: name MariaDB (native UUID) rather than MySQL.
    sql = render_offline_upgrade(url.replace("mysql+pymysql://", "mariadb+pymysql://"))
    body = "\n".join(line for line in sql.splitlines() if not line.startswith("--"))
    statements = [s.strip() for s in body.split(";\n") if s.strip()]

    engine = engine_for(url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)

    assert current_heads(engine) == {HEAD}
    assert schema_diffs(engine) == []


@pytest.mark.postgres
def test_interrupted_backfill_resumes_on_postgresql(pg_url: str, engine_for: Any) -> None:
    """The backfill commits batch by batch, so a run can stop after the column was added and
    part of the rows filled (abmigrate retries a revision after a lock timeout). Running the
    revision again must carry on, not fail on "column already exists"."""
    cfg = alembic_config(pg_url)
    engine = engine_for(pg_url)
    command.upgrade(cfg, ADD_SUPER_ADMIN)
    insert_parts(engine, [("F-100", "consumable"), ("OIL-5", "bulk_material")])
    with engine.begin() as conn:  # what the stopped run left behind
        conn.execute(sa.text("ALTER TABLE parts ADD COLUMN unit_of_measure VARCHAR(50)"))
        conn.execute(
            sa.text("UPDATE parts SET unit_of_measure = 'kept' WHERE part_number = 'F-100'")
        )

    command.upgrade(cfg, "head")

    with engine.connect() as conn:
        units = dict(conn.execute(sa.text("SELECT part_number, unit_of_measure FROM parts")).all())
    assert units == {"F-100": "kept", "OIL-5": "liters"}  # done rows are not redone
    assert current_heads(engine) == {HEAD}
    assert schema_diffs(engine) == []


# --------------------------------------------------------------------------- alembic CLI


def run_alembic(*args: str, database_url: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", "examples/abparts/alembic.ini", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_plain_alembic_cli_from_repo_root(sqlite_url: str) -> None:
    for args in (("heads",), ("history",), ("upgrade", "head"), ("current",)):
        result = run_alembic(*args, database_url=sqlite_url)
        assert result.returncode == 0, result.stderr
        assert "INFO" not in result.stderr  # logging configured quiet in alembic.ini
    assert run_alembic("heads", database_url=sqlite_url).stdout.split() == [HEAD, "(head)"]
    assert f"{HEAD} (head)" in run_alembic("current", database_url=sqlite_url).stdout
    history = run_alembic("history", database_url=sqlite_url).stdout
    assert "(mergepoint), merge_migration_heads" in history

    failed = run_alembic("current", database_url=None)
    assert failed.returncode != 0
    assert "DATABASE_URL" in failed.stderr


# --------------------------------------------------------------------------- /health


def get_health(app: Any) -> tuple[int, dict[str, Any]]:
    with TestClient(app) as client:
        response = client.get("/health")
    return response.status_code, response.json()


def test_health_at_head_is_200(db_url: str) -> None:
    command.upgrade(alembic_config(db_url), "head")

    assert get_health(create_app(database_url=db_url)) == (
        200,
        {
            "status": "ok",
            "database": "reachable",
            "current_revision": HEAD,
            "head_revision": HEAD,
            "up_to_date": True,
        },
    )


def test_health_behind_is_503(db_url: str) -> None:
    command.upgrade(alembic_config(db_url), MERGE)

    code, body = get_health(create_app(database_url=db_url))
    assert code == 503
    assert body == {
        "status": "behind",
        "database": "reachable",
        "current_revision": MERGE,
        "head_revision": HEAD,
        "up_to_date": False,
    }


def test_health_unknown_revision_is_503(sqlite_url: str, engine_for: Any) -> None:
    command.upgrade(alembic_config(sqlite_url), "head")
    with engine_for(sqlite_url).begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'deadbeef0000'"))

    code, body = get_health(create_app(database_url=sqlite_url))
    assert (code, body["status"], body["current_revision"]) == (
        503,
        "unknown_revision",
        "deadbeef0000",
    )


def test_health_unreachable_is_503() -> None:
    code, body = get_health(create_app(database_url=UNREACHABLE_PG_URL))
    assert code == 503
    assert body == {
        "status": "unreachable",
        "database": "unreachable",
        "current_revision": None,
        "head_revision": HEAD,
        "up_to_date": False,
    }


def test_health_is_read_only(sqlite_url: str, tmp_path: Path, engine_for: Any) -> None:
    missing = tmp_path / "nothing-here.db"
    code, body = get_health(create_app(database_url=f"sqlite:///{missing}"))
    assert (code, body["database"]) == (503, "unreachable")
    assert not missing.exists()  # no SQLite file created

    engine = engine_for(sqlite_url)
    with engine.begin() as conn:  # an existing, empty database
        conn.execute(sa.text("CREATE TABLE unrelated (id INTEGER)"))
    code, body = get_health(create_app(database_url=sqlite_url))
    assert (code, body["status"], body["current_revision"]) == (503, "behind", None)
    assert table_names(engine) == {"unrelated"}  # no alembic_version created


def test_health_reads_database_url_at_request_time(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.main import app

    command.upgrade(alembic_config(sqlite_url), "head")
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    assert get_health(app)[0] == 200
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE_PG_URL)
    assert get_health(app)[0] == 503
