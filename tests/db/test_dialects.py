"""The dialect objects' decisions (abmigrate.db.dialects): no database server needed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from abmigrate.db.dialects import (
    DRY_RUN_ROLLED_BACK,
    DRY_RUN_SCRATCH_COPY,
    MIGRATION_APPLICATION_NAME,
    Dialect,
    MySQL,
    PostgreSQL,
    SQLite,
    _pg_holder,
    dialect_for,
)
from abmigrate.errors import ConnectionFailed


@pytest.mark.parametrize(
    ("source", "kind", "name"),
    [
        ("postgresql", PostgreSQL, "postgresql"),
        ("postgresql+psycopg://u:p@h:5432/db", PostgreSQL, "postgresql"),
        ("postgresql+asyncpg://u@h/db", PostgreSQL, "postgresql"),
        ("sqlite", SQLite, "sqlite"),
        ("sqlite:///x.db", SQLite, "sqlite"),
        ("sqlite+aiosqlite:///x.db", SQLite, "sqlite"),
        ("mysql+pymysql://u@h/db", MySQL, "mysql"),
        ("mariadb", MySQL, "mariadb"),
        ("mariadb+pymysql://u@h/db", MySQL, "mariadb"),
        ("oracle+oracledb://u@h/db", Dialect, "oracle"),
        ("", Dialect, ""),
        (None, Dialect, ""),
    ],
)
def test_dialect_for_names_and_urls(source: str | None, kind: type[Dialect], name: str) -> None:
    dialect = dialect_for(source)
    assert type(dialect) is kind
    assert dialect.name == name


def test_dialect_for_url_objects_and_connections() -> None:
    assert isinstance(dialect_for(make_url("postgresql+psycopg://u@h/db")), PostgreSQL)
    engine = sa.create_engine("sqlite://", poolclass=NullPool)
    with engine.connect() as connection:
        assert isinstance(dialect_for(connection), SQLite)
    engine.dispose()


def test_mariadb_belongs_to_the_mysql_family() -> None:
    assert dialect_for("mariadb").family == dialect_for("mysql").family == "mysql"


@pytest.mark.parametrize(
    ("name", "transactional", "dry_run", "monitors"),
    [
        ("postgresql", True, DRY_RUN_ROLLED_BACK, True),
        ("sqlite", False, DRY_RUN_ROLLED_BACK, False),
        ("mysql", False, DRY_RUN_SCRATCH_COPY, False),
        ("mariadb", False, DRY_RUN_SCRATCH_COPY, False),
        ("oracle", True, DRY_RUN_ROLLED_BACK, False),
    ],
)
def test_transactional_ddl_dry_run_and_monitoring(
    name: str, transactional: bool, dry_run: str, monitors: bool
) -> None:
    dialect = dialect_for(name)
    assert dialect.transactional_ddl is transactional
    assert dialect.dry_run_method == dry_run
    assert dialect.monitors_locks is monitors


def test_facts_only_postgresql_has() -> None:
    for name in ("postgresql", "sqlite", "mysql", "oracle"):
        dialect = dialect_for(name)
        is_pg = name == "postgresql"
        assert dialect.has_transaction_only_statements is is_pg
        assert dialect.failed_statement_aborts_transaction is is_pg
        assert dialect.has_search_path is is_pg
        assert dialect.has_enum_types is is_pg
        assert dialect.has_schema_digest is is_pg
        assert dialect.rows_touched_by_transaction is is_pg
        assert (dialect.maintenance_database == "postgres") is is_pg
    assert dialect_for("sqlite").file_based and dialect_for("sqlite").batch_alter
    assert not dialect_for("mysql").file_based and not dialect_for("postgresql").batch_alter


def test_pgoptions_set_inside_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGOPTIONS", "-c work_mem=4MB")
    with dialect_for("postgresql").migration_session(2000, 30000):
        assert os.environ["PGOPTIONS"] == (
            f"-c work_mem=4MB -c application_name={MIGRATION_APPLICATION_NAME}"
            " -c synchronous_commit=off -c lock_timeout=2000 -c statement_timeout=30000"
        )
    assert os.environ["PGOPTIONS"] == "-c work_mem=4MB"
    monkeypatch.delenv("PGOPTIONS")
    with dialect_for("postgresql").migration_session(None, None):
        assert "lock_timeout" not in os.environ["PGOPTIONS"]
    assert "PGOPTIONS" not in os.environ


def test_other_dialects_leave_pgoptions_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGOPTIONS", raising=False)
    for name in ("sqlite", "oracle"):
        with dialect_for(name).migration_session(2000, 30000):
            assert "PGOPTIONS" not in os.environ
        assert dialect_for(name).session_prepare(2000, 30000) is None
    assert dialect_for("mysql").session_prepare(2000, 30000) is None


def test_postgresql_prepare_sets_the_same_settings() -> None:
    executed: list[dict[str, Any]] = []

    class Recorder:
        def execute(self, statement: Any, parameters: dict[str, Any]) -> None:
            assert "set_config" in str(statement)
            executed.append(parameters)

    prepare = dialect_for("postgresql").session_prepare(2000, None)
    assert prepare is not None
    prepare(Recorder())  # type: ignore[arg-type]
    assert executed == [
        {"name": "application_name", "value": MIGRATION_APPLICATION_NAME},
        {"name": "synchronous_commit", "value": "off"},
        {"name": "lock_timeout", "value": "2000"},
    ]


class _Cursor:
    def __init__(self, version: str, log: list[str]) -> None:
        self.version, self.log = version, log

    def execute(self, sql: str) -> None:
        self.log.append(sql)

    def fetchone(self) -> tuple[str]:
        return (self.version,)

    def close(self) -> None:
        pass


class _DbapiConnection:
    def __init__(self, version: str) -> None:
        self.version = version
        self.log: list[str] = []

    def cursor(self) -> _Cursor:
        return _Cursor(self.version, self.log)


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (
            "10.11.6-MariaDB",
            [
                "SET SESSION lock_wait_timeout = 2",
                "SELECT VERSION()",
                "SET SESSION max_statement_time = 1.5",
            ],
        ),
        ("8.0.36", ["SET SESSION lock_wait_timeout = 2", "SELECT VERSION()"]),
    ],
)
def test_mysql_connect_listener(version: str, expected: list[str]) -> None:
    """One Pool listener for the process (a fleet's threads share the class-level list):
    a connection made during a run gets that run's settings, none after it."""
    from abmigrate.db import dialects

    with dialect_for("mariadb").migration_session(1200, 1500):
        connection = _DbapiConnection(version)
        dialects._on_pool_connect(connection, None)
        assert connection.log == expected
    after = _DbapiConnection(version)
    dialects._on_pool_connect(after, None)
    assert after.log == []
    with dialect_for("mysql").migration_session(None, None):
        dialects._on_pool_connect(after, None)
        assert after.log == []


def test_scratch_servers() -> None:
    url = make_url("postgresql+psycopg://u:p@h:5432/app")
    assert dialect_for(url).scratch_server(url) is url
    url = make_url("mysql+pymysql://u:p@h:3306/app")
    assert dialect_for(url).scratch_server(url) is url
    url = make_url("oracle+oracledb://u:p@h/app")
    with pytest.raises(ConnectionFailed, match="cannot create a scratch database on oracle"):
        dialect_for(url).scratch_server(url)


def test_schema_connect_args() -> None:
    assert dialect_for("postgresql").schema_connect_args("tenant") == {
        "options": "-c search_path=tenant"
    }
    assert dialect_for("postgresql").schema_connect_args(None) is None
    assert dialect_for("mysql").schema_connect_args("tenant") is None


def test_row_estimates_and_text_functions() -> None:
    pg = dialect_for("postgresql")
    assert pg.row_estimate(("r", 100.0, 10, 20)) == 200.0
    assert pg.row_estimate(("r", -1.0, 0, 20)) is None
    assert pg.row_estimate(("v", 100.0, 10, 20)) is None
    my = dialect_for("mariadb")
    assert my.row_estimate(("BASE TABLE", 42)) == 42.0
    assert my.row_estimate(("VIEW", 42)) is None
    assert (my.row_estimate_name, my.text_type, my.char_length_function) == (
        "TABLE_ROWS estimate",
        "CHAR",
        "char_length",
    )
    assert (pg.row_estimate_name, pg.text_type, pg.char_length_function) == (
        "planner estimate",
        "TEXT",
        "length",
    )
    assert dialect_for("sqlite").table_estimate_query("t") is None


def test_lock_names_and_holders() -> None:
    assert MySQL.lock_name("mysql+pymysql://u@h/app") == "abmigrate:app"
    assert len(MySQL.lock_name("mysql://u@h/" + "x" * 80)) == 64
    holder = _pg_holder(
        {"pid": 7, "usename": "pg", "application_name": "abmigrate lock ann@box pid 42"}
    )
    assert holder == {"pid": 42, "user": "ann", "host": "box", "backend_pid": 7}
    assert _pg_holder({"pid": 7, "usename": "pg", "client_addr": "10.0.0.1"}) == {
        "pid": 7,
        "user": "pg",
        "host": "10.0.0.1",
    }


def test_sqlite_identity_rows_and_storage(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=NullPool)
    sqlite = dialect_for("sqlite")
    with engine.connect() as connection:
        assert sqlite.identity(connection) == ("sqlite", "", str(path.resolve()), "")
        connection.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        connection.exec_driver_sql("INSERT INTO t VALUES (1), (2)")
        assert sqlite.rows_touched(connection) == {"(all tables)": 2}
        query = sqlite.storage_ids_query()
        assert query is not None
        assert [row[1] for row in connection.exec_driver_sql(query)] == ["t"]
        assert sqlite.backend_pid(connection) is None
    engine.dispose()


def test_sqlite_transactional_engine_rolls_ddl_back(tmp_path: Path) -> None:
    engine = dialect_for("sqlite").transactional_engine(
        sa.create_engine(f"sqlite:///{tmp_path / 'app.db'}", poolclass=NullPool)
    )
    with engine.connect() as connection:
        transaction = connection.begin()
        connection.exec_driver_sql("CREATE TABLE t (id INTEGER)")
        transaction.rollback()
        assert not sa.inspect(connection).has_table("t")
    engine.dispose()


def test_unknown_dialect_has_no_lock_and_no_digest() -> None:
    other = dialect_for("oracle")
    assert other.try_lock(None, "oracle://h/db") is True  # type: ignore[arg-type]
    assert other.lock_holder(None, "oracle://h/db") == {}  # type: ignore[arg-type]
    with pytest.raises(NotImplementedError):
        other.schema_digest(None)  # type: ignore[arg-type]
