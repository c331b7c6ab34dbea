"""Scratch databases: created next to the URL's server, never touching the URL's own
database, and dropped after success, failure and interruption."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from abmigrate.db.scratch import SCRATCH_PREFIX, scratch_database
from abmigrate.errors import ConnectionFailed


def pg_database_exists(server_url: str, name: str) -> bool:
    engine = sa.create_engine(server_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            found = connection.execute(
                sa.text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": name}
            ).scalar_one()
    finally:
        engine.dispose()
    return bool(found)


def mariadb_database_exists(server_url: str, name: str) -> bool:
    engine = sa.create_engine(server_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            found = connection.execute(
                sa.text("SELECT count(*) FROM information_schema.schemata WHERE schema_name = :n"),
                {"n": name},
            ).scalar_one()
    finally:
        engine.dispose()
    return bool(found)


def _tables(url: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return sa.inspect(connection).get_table_names()
    finally:
        engine.dispose()


def _create_table(url: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE scratch_probe (id INTEGER PRIMARY KEY)"))
    finally:
        engine.dispose()


def test_postgres_scratch_is_a_new_database_dropped_afterwards(pg_url: str) -> None:
    with scratch_database(pg_url, label="t") as scratch:
        name = make_url(scratch.url).database
        assert name is not None and name.startswith(SCRATCH_PREFIX)
        assert name != make_url(pg_url).database
        assert pg_database_exists(pg_url, name)
        _create_table(scratch.url)
        assert _tables(scratch.url) == ["scratch_probe"]
    assert not pg_database_exists(pg_url, name)
    assert _tables(pg_url) == []  # the database the URL names was never written to


def test_postgres_scratch_is_dropped_when_the_work_fails(pg_server_url: str) -> None:
    with pytest.raises(RuntimeError, match="boom"), scratch_database(pg_server_url) as scratch:
        name = make_url(scratch.url).database
        assert name is not None
        # An open connection to it must not keep it alive (dropped WITH FORCE).
        engine = sa.create_engine(scratch.url, poolclass=sa.pool.NullPool)
        connection = engine.connect()
        try:
            raise RuntimeError("boom")
        finally:
            connection.close()
            engine.dispose()
    assert not pg_database_exists(pg_server_url, name)


def test_postgres_scratch_recreate_starts_empty(pg_server_url: str) -> None:
    with scratch_database(pg_server_url) as scratch:
        _create_table(scratch.url)
        scratch.recreate()
        assert _tables(scratch.url) == []


def test_mariadb_scratch_is_a_new_database_dropped_afterwards(mariadb_url: str) -> None:
    with scratch_database(mariadb_url, label="t") as scratch:
        name = make_url(scratch.url).database
        assert name is not None and name != make_url(mariadb_url).database
        assert mariadb_database_exists(mariadb_url, name)
        _create_table(scratch.url)
    assert not mariadb_database_exists(mariadb_url, name)
    assert _tables(mariadb_url) == []


def test_sqlite_scratch_is_a_temporary_file_never_the_urls(sqlite_url: str) -> None:
    with scratch_database(sqlite_url) as scratch:
        path = Path(make_url(scratch.url).database or "")
        _create_table(scratch.url)
        assert path.is_file()
    assert not path.exists() and not path.parent.exists()
    assert not Path(make_url(sqlite_url).database or "").exists()


def test_unreachable_server_is_one_clear_error_without_the_password() -> None:
    url = "postgresql+psycopg://someone:s3cret-pw@127.0.0.1:1/db"
    with pytest.raises(ConnectionFailed) as caught, scratch_database(url):
        pass
    assert "s3cret-pw" not in caught.value.message
    assert "cannot connect" in caught.value.message


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_scratch_is_dropped_when_the_process_is_interrupted(
    pg_server_url: str, tmp_path: Path, signum: int
) -> None:
    script = tmp_path / "hold.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import signal, sys, time
            from sqlalchemy.engine import make_url
            # A process started in the background inherits an ignored SIGINT; an interactive
            # one (what this test is about) has Python's default handler.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            from abmigrate.db.scratch import scratch_database
            with scratch_database({pg_server_url!r}, label="sig") as scratch:
                print(make_url(scratch.url).database, flush=True)
                time.sleep(60)
            """
        )
    )
    process = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        name = process.stdout.readline().strip()
        assert name.startswith(SCRATCH_PREFIX), process.stderr.read() if process.stderr else ""
        assert pg_database_exists(pg_server_url, name)
        process.send_signal(signum)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    assert process.returncode != 0
    deadline = time.monotonic() + 60
    while pg_database_exists(pg_server_url, name) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pg_database_exists(pg_server_url, name)
