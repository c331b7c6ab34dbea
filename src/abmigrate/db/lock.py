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

from abmigrate.db.dialects import PG_LOCK_KEY, dialect_for
from abmigrate.errors import GuardRefused

__all__ = ["PG_LOCK_KEY", "LockHolder", "MigrationLock", "actor"]

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
        self.url = url
        self.wait_ms = wait_ms
        self.on_wait = on_wait
        # The lock's SQL per dialect (advisory lock, GET_LOCK); SQLite's is a file lock.
        self.dialect = dialect_for(url)
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
        if self.dialect.file_based:
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
        me = actor()
        self.dialect.label_lock_session(
            self._connection, f"abmigrate lock {me['user']}@{me['host']} pid {me['pid']}"
        )

    def _try(self) -> bool:
        if self._connection is not None:
            return self.dialect.try_lock(self._connection, self.url)
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

    def _sqlite_lock_path(self) -> Path | None:
        from abmigrate.db.database import sqlite_path

        path = sqlite_path(self.url)
        return None if path is None else path.with_name(path.name + ".abmigrate-lock")

    # -- who holds it -------------------------------------------------------------------

    def holder(self) -> LockHolder:
        """The session holding the lock, as far as the database can tell."""
        with contextlib.suppress(Exception):
            if self._connection is not None:
                return self.dialect.lock_holder(self._connection, self.url)
            if self._file is not None:
                self._file.seek(0)
                data = json.loads(self._file.read() or "{}")
                return dict(data) if isinstance(data, dict) else {}
        return {}

    # -- releasing ----------------------------------------------------------------------

    def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self.dialect.unlock(self._connection, self.url)
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
