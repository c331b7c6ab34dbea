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
import re
import secrets
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy import Connection, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import NullPool

from abmigrate.db.database import scrub, sync_url
from abmigrate.db.dialects import dialect_for
from abmigrate.db.url import mask_url
from abmigrate.errors import ConnectionFailed

__all__ = [
    "SCRATCH_PREFIX",
    "TEMPLATE_PREFIX",
    "ScratchDatabase",
    "scratch_database",
    "signals_raise",
    "starting_point",
]

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
    # A database already at that starting point (PostgreSQL): (re)created as a copy of it,
    # and _prepare is not run (see starting_point).
    _template: str | None = field(default=None, repr=False)

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
                dialect_for(self.dialect).create_database(connection, self.name, self._template)
            if self._template is not None:
                return
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
                dialect_for(self.dialect).drop_database(connection, self.name)
        self._dropped = True


@contextlib.contextmanager
def scratch_database(
    server_url: str | None,
    *,
    label: str = "run",
    prepare: Callable[[str], None] | None = None,
    meanwhile: Callable[[ScratchDatabase], object] | None = None,
    template: str | None = None,
) -> Iterator[ScratchDatabase]:
    """Create a scratch database next to ``server_url`` (SQLite temp file when None/SQLite);
    yield it; drop it afterwards, also on failure or interruption. ``prepare`` is called with
    its URL whenever it is (re)created: a project's baseline. ``meanwhile(scratch)`` runs
    while the server creates it (CREATE DATABASE waits on the server: loading the revision
    scripts then costs no extra time); it must not connect to it. ``template``: the name of
    a :func:`starting_point` database made with the same ``prepare``, copied instead."""
    name = f"{SCRATCH_PREFIX}{label}_{os.getpid()}_{secrets.token_hex(4)}"[:63]
    with signals_raise():
        scratch = _new_scratch(server_url, name)
        scratch._prepare = prepare
        scratch._template = template if scratch._server is not None else None
        try:
            if meanwhile is None or scratch._server is None:
                scratch._create()
                if meanwhile is not None:
                    meanwhile(scratch)
            else:
                _create_while(scratch, meanwhile)
            yield scratch
        finally:
            with _signals_blocked():
                scratch._drop()


TEMPLATE_PREFIX = f"{SCRATCH_PREFIX}template_"
# The comment a starting point carries: who made it, so that a later run can tell one a
# killed run left behind from one a live run is using.
_OWNER_COMMENT = "abmigrate starting point; host={host}; pid={pid}"
_OWNER = re.compile(r"^abmigrate starting point; host=(?P<host>.*); pid=(?P<pid>\d+)$")


@contextlib.contextmanager
def starting_point(
    server_url: str | None, prepare: Callable[[str], None] | None
) -> Iterator[str | None]:
    """A template database at the starting point ``prepare`` makes (a project's baseline),
    for scratch databases that each start there: each is then a copy of it (CREATE DATABASE
    … TEMPLATE, a file copy on the server) instead of an empty database ``prepare`` runs on
    again. Yields its name; None where it would not help (no ``prepare``, SQLite, MySQL).

    It is built once, closed to connections (a template being copied must have none), and
    dropped on exit like any scratch database. Its comment names the host and process that
    made it: one left behind by a killed run on this host is dropped by the next run that
    builds one; another live run's is never touched (names carry the process id and a random
    part, so two runs never share one).
    """
    if prepare is None or not dialect_for(server_url).has_template_databases:
        yield None
        return
    assert server_url is not None
    name = f"{TEMPLATE_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
    template = _new_scratch(server_url, name)
    assert template._server is not None
    with signals_raise():
        try:
            with _admin(template._server) as connection:
                _drop_abandoned_templates(connection)
                dialect_for(template.dialect).create_database(connection, name)
                _mark_owner(connection, name)
            prepare(template.url)
            with _admin(template._server) as connection:
                connection.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            yield name
        finally:
            with _signals_blocked():
                template._drop()


def _mark_owner(connection: Connection, name: str) -> None:
    from sqlalchemy import text

    comment = _OWNER_COMMENT.format(host=socket.gethostname(), pid=os.getpid())
    # COMMENT takes a literal only: the host name is quoted as one.
    quoted = "'" + comment.replace("'", "''") + "'"
    connection.execute(text(f'COMMENT ON DATABASE "{name}" IS {quoted}'))


def _drop_abandoned_templates(connection: Connection) -> None:
    """Drop the starting points made on this host by processes that no longer run."""
    from sqlalchemy import text

    rows = connection.execute(
        text(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database"
            " WHERE starts_with(datname, :prefix)"
        ),
        {"prefix": TEMPLATE_PREFIX},
    ).all()
    host = socket.gethostname()
    for name, comment in rows:
        owner = _OWNER.match(comment or "")
        if owner is None or owner["host"] != host or _alive(int(owner["pid"])):
            continue
        with contextlib.suppress(DBAPIError):  # another run may be dropping it too
            dialect_for(connection).drop_database(connection, str(name))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def _create_while(scratch: ScratchDatabase, meanwhile: Callable[[ScratchDatabase], object]) -> None:
    """Create ``scratch`` in a thread while ``meanwhile`` runs here; an error of either is
    raised (the creation's first), after the thread ended: the caller's drop must not race
    the CREATE."""
    failed: list[BaseException] = []

    def create() -> None:
        try:
            scratch._create()
        except BaseException as exc:  # raised again below, in the caller's thread
            failed.append(exc)

    worker = threading.Thread(target=create, name="abmigrate-scratch-create", daemon=True)
    worker.start()
    try:
        meanwhile(scratch)
    finally:
        _join(worker)
    if failed:
        raise failed[0]


def _join(worker: threading.Thread) -> None:
    # A signal turned into KeyboardInterrupt while joining must still wait for the thread.
    try:
        worker.join()
    except BaseException:
        with _signals_blocked():
            worker.join()
        raise


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
    dialect = dialect_for(url)
    if dialect.file_based:
        # The URL's driver is kept (sqlite+aiosqlite: env.py builds an async engine from it).
        return _sqlite_scratch(name, url.drivername)
    server = dialect.scratch_server(url)  # raises for a dialect without scratch databases
    return ScratchDatabase(
        url=url.set(database=name).render_as_string(hide_password=False),
        dialect=dialect.family,
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
            maintenance = dialect_for(server).maintenance_database
            if maintenance is None or server.database == maintenance:
                raise _connection_failed(first, raw) from None
            # The URL may name a database that does not exist yet: the maintenance
            # database serves as well for CREATE/DROP DATABASE.
            engine.dispose()
            engine = create_engine(
                server.set(database=maintenance), poolclass=NullPool, isolation_level="AUTOCOMMIT"
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
