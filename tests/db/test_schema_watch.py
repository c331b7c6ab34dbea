"""The watcher `check`'s round trip takes its schema digests on: a connection of its own that
must see exactly the schema env.py's connection sees, as each step commits it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from abmigrate.check.roundtrip import schema_digest
from abmigrate.db.schema_watch import WATCHER_APPLICATION_NAME, schema_watcher


@pytest.fixture
def like(pg_url: str) -> Iterator[sa.Connection]:
    """env.py's connection, as the walk has it between two steps."""
    engine = sa.create_engine(pg_url, poolclass=NullPool)
    with engine.connect() as connection:
        yield connection
    engine.dispose()


def test_the_watchers_digest_is_the_connections_own_and_follows_each_commit(
    pg_url: str, like: sa.Connection
) -> None:
    with schema_watcher(pg_url, like) as watch:
        assert watch is not None
        like.commit()
        empty = watch()
        assert empty == schema_digest(like)
        like.rollback()
        like.exec_driver_sql("CREATE TABLE parts (id integer PRIMARY KEY, name text)")
        assert watch() == empty  # not committed yet: the next step has not been taken
        like.commit()
        created = watch()
        assert created != empty
        assert created == schema_digest(like)
        like.commit()
        like.exec_driver_sql("DROP TABLE parts")
        like.commit()
        assert watch() == empty


def test_the_watcher_looks_in_the_schema_of_the_connections_search_path(
    pg_url: str, like: sa.Connection
) -> None:
    # A tenant's schema named before it exists: both look at nothing until it does.
    like.exec_driver_sql("SET search_path TO tenant_a")
    like.commit()
    with schema_watcher(pg_url, like) as watch:
        assert watch is not None
        like.commit()
        nothing = watch()
        like.exec_driver_sql("CREATE TABLE public.elsewhere (id integer)")
        like.commit()
        assert watch() == nothing
        like.exec_driver_sql("CREATE SCHEMA tenant_a")
        like.exec_driver_sql("CREATE TABLE tenant_a.parts (id integer)")
        like.commit()
        tenant = watch()
        assert tenant != nothing
        assert tenant == schema_digest(like)
        like.commit()


def test_no_watcher_for_another_user_or_a_dialect_without_a_digest(
    pg_url: str, like: sa.Connection, sqlite_url: str
) -> None:
    # "$user" in the search path would name another schema for the watcher's user.
    like.exec_driver_sql("SET ROLE pg_read_all_data")
    with schema_watcher(pg_url, like) as watch:
        assert watch is None
    like.rollback()
    engine = sa.create_engine(sqlite_url, poolclass=NullPool)
    try:
        with engine.connect() as connection, schema_watcher(sqlite_url, connection) as watch:
            assert watch is None
    finally:
        engine.dispose()


def test_looks_go_on_on_the_connection_itself_when_the_watcher_is_gone(
    pg_url: str, like: sa.Connection
) -> None:
    with schema_watcher(pg_url, like) as watch:
        assert watch is not None
        like.commit()
        empty = watch()
        ended = like.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = :name AND datname = current_database()"
            ),
            {"name": WATCHER_APPLICATION_NAME},
        ).scalar_one()
        assert ended == 1
        like.exec_driver_sql("CREATE TABLE parts (id integer)")
        like.commit()
        created = watch()  # on `like` now, in a transaction of its own the caller ends
        like.commit()
        assert created != empty
        assert created == schema_digest(like)
        like.commit()
