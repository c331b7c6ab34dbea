"""The corpus harness's MariaDB databases (corpus/databases.py): fresh, compared, dropped.

The "schema = alembic's" step compares two dumps; on MariaDB they must be equal for the same
schema built in another order (a table's indexes come from a set in Alembic's
``create_table``), equal whatever rows the tables hold, and different for any real
difference.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
from conftest import mariadb_database_exists
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from corpus.databases import Database, Server  # noqa: E402

pytestmark = pytest.mark.mariadb


def _execute(database: Database, *statements: str) -> None:
    url = make_url(database.url)
    connection = pymysql.connect(
        host=url.host,
        port=url.port or 3306,
        user=url.username,
        password=url.password or "",
        database=url.database,
        autocommit=True,
    )
    with connection, connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


TABLE = (
    "CREATE TABLE item (id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " owner VARCHAR(40), tag VARCHAR(40), size INTEGER)"
)


@pytest.fixture
def server(mariadb_server_url: str, tmp_path: Path) -> Iterator[Server]:
    created = Server(None, tmp_path, mariadb_server_url)
    yield created
    created.drop_all()


def test_a_new_database_is_empty_and_named_for_each_driver(server: Server) -> None:
    database = server.new("mysql", "Project_my_a")
    assert database.name.startswith("abm_corpus_project_my_a_")
    assert database.url.startswith("mysql+pymysql://")
    assert database.async_url.startswith("mysql+aiomysql://")
    assert database.plain_url.startswith("mysql://")
    assert server.new("mysql", "x", "mysqldb").url.startswith("mysql+mysqldb://")
    assert server.recorded(database) is None
    assert not any(line.startswith("CREATE TABLE") for line in server.dump(database))


def test_the_dump_ignores_index_order_counters_and_the_journal(server: Server) -> None:
    a, b = server.new("mysql", "a"), server.new("mysql", "b")
    _execute(
        a,
        TABLE,
        "CREATE INDEX ix_owner ON item (owner)",
        "CREATE INDEX ix_tag ON item (tag)",
        "INSERT INTO item (owner) VALUES ('x'), ('y')",
        "CREATE TABLE abmigrate_journal (id INTEGER PRIMARY KEY)",
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)",
        "INSERT INTO alembic_version VALUES ('r2'), ('r1')",
    )
    _execute(
        b,
        TABLE,
        "CREATE INDEX ix_tag ON item (tag)",
        "CREATE INDEX ix_owner ON item (owner)",
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)",
    )
    dump = server.dump(a)
    assert server.recorded(a) == ["r1", "r2"]
    assert server.recorded(b) == []
    assert not any("abmigrate_journal" in line for line in dump)
    assert not any("AUTO_INCREMENT=" in line for line in dump)
    assert dump == server.dump(b)

    _execute(b, "ALTER TABLE item MODIFY size BIGINT")
    assert server.dump(a) != server.dump(b)


def test_reset_and_drop_all_remove_only_this_run_s_databases(
    server: Server, mariadb_server_url: str
) -> None:
    database = server.new("mysql", "reset")
    _execute(database, TABLE)
    server.reset(database)
    assert not any(line.startswith("CREATE TABLE") for line in server.dump(database))
    server.drop_all()
    assert not mariadb_database_exists(mariadb_server_url, database.name)
    with pytest.raises(AssertionError, match="only this run's databases"):
        server.reset(database)
