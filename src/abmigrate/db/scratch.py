"""Scratch databases: created for one run, dropped afterwards whatever happens.

A scratch database lives on the server a URL names (PostgreSQL, MySQL/MariaDB) or in a
temporary SQLite file. abmigrate connects to that server only to CREATE and DROP its own
scratch database: the database the URL names is never written to. The scratch database is
dropped on success, on failure and on interruption (Ctrl-C, SIGTERM, SIGHUP are turned into
an exception for the duration, so ``finally`` runs; the drop itself is shielded from a second
signal). Only a SIGKILL can leave one behind; its name starts with ``abm_scratch_`` so it is
easy to spot.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import NullPool

from abmigrate.db.database import scrub, sync_url
from abmigrate.db.url import mask_url
from abmigrate.errors import ConnectionFailed

__all__ = ["SCRATCH_PREFIX", "ScratchDatabase", "scratch_database", "signals_raise"]

SCRATCH_PREFIX = "abm_scratch_"
# SIGINT already raises KeyboardInterrupt; these are made to do the same while a scratch
# database exists.
_TERMINATING = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
_SIGNALS = (signal.SIGINT, *_TERMINATING)


@dataclass
class ScratchDatabase:
    """A database that exists for one run. ``url`` carries credentials: never print it."""

    url: str
    dialect: str
    name: str
    _server: URL | None = None
    _directory: Path | None = None
    _dropped: bool = field(default=False, repr=False)
    # Run on the new database each time it is created (a project's baseline, so that
    # "empty" means where the history starts, also after recreate()).
    _prepare: Callable[[str], None] | None = field(default=None, repr=False)

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)

    def recreate(self) -> None:
        """Drop and create it again, empty or at the baseline (to start over after a failed
        migration)."""
        self._drop()
        self._dropped = False
        self._create()

    # -- lifecycle --------------------------------------------------------------------

    def _create(self) -> None:
        if self._directory is not None:
            self._directory.mkdir(parents=True, exist_ok=True)
        else:
            assert self._server is not None
            with _admin(self._server) as connection:
                if self.dialect == "postgresql":
                    _create_postgres(connection, self.name)
                else:
                    connection.execute(text(f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4"))
        if self._prepare is not None:
            self._prepare(self.url)

    def _drop(self) -> None:
        if self._dropped:
            return
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
        else:
            assert self._server is not None
            with _admin(self._server) as connection:
                if self.dialect == "postgresql":
                    _drop_postgres(connection, self.name)
                else:
                    _drop_mysql(connection, self.name)
        self._dropped = True


@contextlib.contextmanager
def scratch_database(
    server_url: str | None,
    *,
    label: str = "run",
    prepare: Callable[[str], None] | None = None,
) -> Iterator[ScratchDatabase]:
    """Create a scratch database next to ``server_url`` (SQLite temp file when None/SQLite);
    yield it; drop it afterwards, also on failure or interruption. ``prepare`` is called with
    its URL whenever it is (re)created: a project's baseline."""
    name = f"{SCRATCH_PREFIX}{label}_{os.getpid()}_{secrets.token_hex(4)}"[:63]
    with signals_raise():
        scratch = _new_scratch(server_url, name)
        scratch._prepare = prepare
        try:
            scratch._create()
            yield scratch
        finally:
            with _signals_blocked():
                scratch._drop()


def _new_scratch(server_url: str | None, name: str) -> ScratchDatabase:
    if server_url is None:
        return _sqlite_scratch(name)
    try:
        url = make_url(server_url)
    except ArgumentError:
        raise ConnectionFailed(
            f"not a database URL: {mask_url(server_url)!r}",
            hint="write it like postgresql+psycopg://user@host:5432/dbname or sqlite:///file.db",
        ) from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        # The URL's driver is kept (sqlite+aiosqlite: env.py builds an async engine from it).
        return _sqlite_scratch(name, url.drivername)
    if backend == "postgresql":
        server = url
        dialect = "postgresql"
    elif backend in ("mysql", "mariadb"):
        server = url.set(database=None)
        dialect = "mysql"
    else:
        raise ConnectionFailed(
            f"cannot create a scratch database on {backend}",
            hint="use a PostgreSQL, MySQL/MariaDB or SQLite URL",
        )
    return ScratchDatabase(
        url=url.set(database=name).render_as_string(hide_password=False),
        dialect=dialect,
        name=name,
        _server=server,
    )


def _sqlite_scratch(name: str, drivername: str = "sqlite") -> ScratchDatabase:
    directory = Path(tempfile.mkdtemp(prefix=name + "_"))
    return ScratchDatabase(
        url=f"{drivername}:///{directory / 'scratch.db'}",
        dialect="sqlite",
        name=name,
        _directory=directory,
    )


@contextlib.contextmanager
def _admin(server: URL) -> Iterator[Connection]:
    """An autocommit connection to the server, for CREATE/DROP DATABASE only."""
    raw = server.render_as_string(hide_password=False)
    server = sync_url(server)  # an asyncpg/asyncmy URL: abmigrate's own connection is sync
    try:
        engine = create_engine(server, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise ConnectionFailed(
            f"no driver for {mask_url(raw)}: {exc}",
            hint="install the driver, e.g. pip install 'psycopg[binary]' or PyMySQL",
        ) from None
    try:
        try:
            connection = engine.connect()
        except DBAPIError as first:
            if server.get_backend_name() != "postgresql" or server.database == "postgres":
                raise _connection_failed(first, raw) from None
            # The URL may name a database that does not exist yet: the maintenance
            # database serves as well for CREATE/DROP DATABASE.
            engine.dispose()
            engine = create_engine(
                server.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
            )
            try:
                connection = engine.connect()
            except DBAPIError:
                raise _connection_failed(first, raw) from None
        with connection:
            yield connection
    finally:
        engine.dispose()


def _connection_failed(exc: DBAPIError, url: str) -> ConnectionFailed:
    first_line = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    return ConnectionFailed(
        f"cannot connect to {mask_url(url)} to create a scratch database: {scrub(first_line, url)}",
        hint="check the host, port, user and password, and that the server is running",
    )


def _create_postgres(connection: Connection, name: str) -> None:
    # Concurrent CREATE DATABASE calls copying template1 can collide ("being accessed by
    # other users"); that is transient, so retry briefly.
    for attempt in range(5):
        try:
            # template0: a restore test or replay must start from a pristine database, not
            # from whatever a site added to template1.
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
            # Nothing in a scratch database needs to survive a crash: commits need not
            # wait for the WAL flush (projects committing per migration run much faster).
            connection.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
            return
        except DBAPIError as exc:
            message = str(exc.orig)
            if "being accessed by other users" in message and attempt < 4:
                time.sleep(0.2 * (attempt + 1))
                continue
            if "permission denied" in message:
                raise ConnectionFailed(
                    "the user in the URL may not create databases",
                    hint="give it CREATEDB (ALTER ROLE ... CREATEDB), or use another URL",
                ) from None
            raise


def _drop_postgres(connection: Connection, name: str) -> None:
    try:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except DBAPIError:
        # PostgreSQL before 13 has no WITH (FORCE): end the sessions, then drop.
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))


def _drop_mysql(connection: Connection, name: str) -> None:
    sessions = connection.execute(
        text(
            "SELECT id FROM information_schema.processlist"
            " WHERE db = :name AND id <> CONNECTION_ID()"
        ),
        {"name": name},
    ).scalars()
    for session_id in list(sessions):
        with contextlib.suppress(DBAPIError):  # it may have ended meanwhile
            connection.execute(text(f"KILL {int(session_id)}"))
    connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))


# -- signals --------------------------------------------------------------------------


def _raise_interrupt(signum: int, frame: FrameType | None) -> Any:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into KeyboardInterrupt (as SIGINT already is), so ``finally`` blocks run.

    Only the main thread can install handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    for signum in _TERMINATING:
        previous[signum] = signal.getsignal(signum)
        signal.signal(signum, _raise_interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    # A second Ctrl-C during the drop must not leave the scratch database behind.
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, set(_SIGNALS))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
