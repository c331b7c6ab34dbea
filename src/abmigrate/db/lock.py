"""The migration lock: one runner at a time per database.

- PostgreSQL: a *session* advisory lock on a dedicated connection. Session-level (not
  transaction-level) because a revision's ``autocommit_block()`` commits, and the lock must
  outlive that; and because the lock dies with the session, a crashed or killed runner never
  leaves it behind.
- MySQL/MariaDB: ``GET_LOCK`` on a dedicated connection (also released when the session ends).
- SQLite: ``flock`` on a lock file next to the database (released by the kernel when the
  process dies). Not an exclusive SQLite transaction: ``env.py`` must still be able to write.

A second runner polls for up to ``wait_ms``, reports who holds the lock (pid, host, user,
since), then gives up with :class:`~abmigrate.errors.GuardRefused`.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from abmigrate.errors import GuardRefused

__all__ = ["PG_LOCK_KEY", "LockHolder", "MigrationLock", "actor"]

# The two int4 keys of the PostgreSQL advisory lock ("abm", "mig"): pg_locks shows them as
# classid/objid with objsubid = 2. Advisory locks are per database already.
PG_LOCK_KEY = (0x61626D, 0x6D6967)
_POLL_S = 0.2

LockHolder = dict[str, Any]
WaitCallback = Callable[[LockHolder], None]


def actor() -> dict[str, Any]:
    """Who is running: OS user, host and process id."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry (containers): still record something
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return {"user": user, "host": socket.gethostname(), "pid": os.getpid()}


def _describe(holder: LockHolder) -> str:
    parts = [f"{key} {holder[key]}" for key in ("pid", "host", "user", "since") if holder.get(key)]
    return ", ".join(parts) or "an unknown session"


class MigrationLock:
    """``with MigrationLock(url, wait_ms=...) as lock:`` — held for the whole run."""

    def __init__(
        self, url: str, *, wait_ms: int = 60_000, on_wait: WaitCallback | None = None
    ) -> None:
        from sqlalchemy.engine import make_url

        self.url = url
        self.wait_ms = wait_ms
        self.on_wait = on_wait
        self.backend = make_url(url).get_backend_name()
        self._engine: Any = None
        self._connection: Any = None
        self._file: IO[str] | None = None
        self.waited_s = 0.0

    # -- acquiring ----------------------------------------------------------------------

    def __enter__(self) -> MigrationLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        started = time.monotonic()
        deadline = started + self.wait_ms / 1000
        reported = False
        self._open()
        try:
            while True:
                if self._try():
                    self.waited_s = time.monotonic() - started
                    return
                holder = self.holder()
                if not reported and self.on_wait is not None:
                    self.on_wait(holder)
                    reported = True
                if time.monotonic() >= deadline:
                    raise GuardRefused(
                        f"another runner holds the migration lock ({_describe(holder)});"
                        f" gave up after waiting {self.wait_ms / 1000:g}s",
                        hint="wait for it to finish (`abmigrate status` shows its progress in"
                        " the journal), or wait longer with --lock-wait",
                        reasons=["migration lock held"],
                    )
                time.sleep(_POLL_S)
        except BaseException:
            self.release()
            raise

    def _open(self) -> None:
        if self.backend == "sqlite":
            path = self._sqlite_lock_path()
            if path is None:
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a+", encoding="utf-8")
            return
        from sqlalchemy.exc import DBAPIError

        from abmigrate.db.database import make_engine, scrub
        from abmigrate.db.url import mask_url
        from abmigrate.errors import ConnectionFailed

        self._engine = make_engine(self.url)
        try:
            connection = self._engine.connect()
        except DBAPIError as exc:
            self._engine.dispose()
            self._engine = None
            first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise ConnectionFailed(
                f"cannot connect to {mask_url(self.url)}: {scrub(first, self.url)}",
                hint="check the host, port, user and password, and that the server is running",
            ) from None
        except Exception:
            self._engine.dispose()
            self._engine = None
            raise
        self._connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        if self.backend == "postgresql":
            me = actor()
            # Shown to a waiting runner through pg_stat_activity (63 characters at most).
            label = f"abmigrate lock {me['user']}@{me['host']} pid {me['pid']}"[:63]
            self._execute("SELECT set_config('application_name', :label, false)", label=label)

    def _execute(self, sql: str, **params: Any) -> Any:
        from sqlalchemy import text

        return self._connection.execute(text(sql), params)

    def _try(self) -> bool:
        if self.backend == "postgresql":
            return bool(
                self._execute(
                    "SELECT pg_try_advisory_lock(:a, :b)", a=PG_LOCK_KEY[0], b=PG_LOCK_KEY[1]
                ).scalar()
            )
        if self.backend in ("mysql", "mariadb"):
            return bool(
                self._execute("SELECT GET_LOCK(:name, 0)", name=self._mysql_name()).scalar() == 1
            )
        if self._file is None:
            return True
        import fcntl

        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self._file.seek(0)
        self._file.truncate()
        holder = {**actor(), "since": datetime.now(UTC).isoformat(timespec="seconds")}
        self._file.write(json.dumps(holder))
        self._file.flush()
        return True

    def _mysql_name(self) -> str:
        from sqlalchemy.engine import make_url

        # GET_LOCK names are server-wide: scope them to the database (64 characters at most).
        return f"abmigrate:{make_url(self.url).database or ''}"[:64]

    def _sqlite_lock_path(self) -> Path | None:
        from abmigrate.db.database import sqlite_path

        path = sqlite_path(self.url)
        return None if path is None else path.with_name(path.name + ".abmigrate-lock")

    # -- who holds it -------------------------------------------------------------------

    def holder(self) -> LockHolder:
        """The session holding the lock, as far as the database can tell."""
        with contextlib.suppress(Exception):
            if self.backend == "postgresql":
                row = (
                    self._execute(
                        "SELECT a.pid, a.application_name, a.usename, a.client_addr,"
                        " a.state_change FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                        " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :a"
                        " AND l.objid = :b AND l.objsubid = 2"
                        " AND l.database = (SELECT oid FROM pg_database"
                        " WHERE datname = current_database())",
                        a=PG_LOCK_KEY[0],
                        b=PG_LOCK_KEY[1],
                    )
                    .mappings()
                    .first()
                )
                if row is None:
                    return {}
                return _pg_holder(dict(row))
            if self.backend in ("mysql", "mariadb"):
                row = (
                    self._execute(
                        "SELECT id, user, host, time FROM information_schema.processlist"
                        " WHERE id = IS_USED_LOCK(:name)",
                        name=self._mysql_name(),
                    )
                    .mappings()
                    .first()
                )
                if row is None:
                    return {}
                since = datetime.now(UTC).timestamp() - float(row["time"] or 0)
                return {
                    "pid": f"connection {row['id']}",
                    "user": row["user"],
                    "host": row["host"],
                    "since": datetime.fromtimestamp(since, UTC).isoformat(timespec="seconds"),
                }
            if self._file is not None:
                self._file.seek(0)
                data = json.loads(self._file.read() or "{}")
                return dict(data) if isinstance(data, dict) else {}
        return {}

    # -- releasing ----------------------------------------------------------------------

    def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                if self.backend == "postgresql":
                    self._execute(
                        "SELECT pg_advisory_unlock(:a, :b)", a=PG_LOCK_KEY[0], b=PG_LOCK_KEY[1]
                    )
                elif self.backend in ("mysql", "mariadb"):
                    self._execute("SELECT RELEASE_LOCK(:name)", name=self._mysql_name())
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        if self._file is not None:
            import fcntl

            with contextlib.suppress(OSError):
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _pg_holder(row: dict[str, Any]) -> LockHolder:
    holder: LockHolder = {"pid": row.get("pid"), "user": row.get("usename")}
    label = str(row.get("application_name") or "")
    # "abmigrate lock USER@HOST pid PID": the runner's own identity beats the server's view.
    if label.startswith("abmigrate lock "):
        who, _, pid = label[len("abmigrate lock ") :].partition(" pid ")
        user, _, host = who.partition("@")
        holder.update(user=user, host=host, pid=int(pid) if pid.isdigit() else pid)
        holder["backend_pid"] = row.get("pid")
    elif row.get("client_addr"):
        holder["host"] = str(row["client_addr"])
    since = row.get("state_change")
    if isinstance(since, datetime):
        holder["since"] = since.astimezone(UTC).isoformat(timespec="seconds")
    return holder
