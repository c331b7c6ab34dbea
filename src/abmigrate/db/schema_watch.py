"""Looking at a scratch database's schema from a session of abmigrate's own.

``check``'s round trip takes a digest of the schema before every upgrade and after every
downgrade (:meth:`abmigrate.db.dialects.Dialect.schema_digest`): two looks per revision.
Taken on env.py's connection, each look opens a transaction there and has the server plan
the digest's query again: psycopg forgets the statements it prepared whenever the
connection runs an ALTER or a DROP, which nearly every migration step does, and other
drivers prepare nothing. A watcher is a second connection to the same database, in
autocommit mode, whose search path is env.py's: it prepares the digest once, and a look is
then one round trip running a ready plan, with nothing left open on env.py's connection.

It sees what is committed, which is everything a step did once Alembic committed it (one
transaction per migration). The caller uses it only then: not when env.py runs the whole
history inside one transaction of its own, whose work only env.py's connection sees.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from abmigrate.db.dialects import dialect_for

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = ["WATCHER_APPLICATION_NAME", "schema_watcher"]

_SESSION = "SELECT current_user, current_setting('search_path'), current_schema()"


WATCHER_APPLICATION_NAME = "abmigrate schema watcher"


@contextlib.contextmanager
def schema_watcher(url: str, like: Connection) -> Iterator[Callable[[], str] | None]:
    """A function returning the digest of the schema ``like`` sees by default, taken on a
    connection of its own to ``url`` (the database ``like`` is connected to), open for the
    block. None where the dialect has no digest, or where that connection would not see
    the same schema as ``like`` (another user: ``"$user"`` in the search path names
    another schema): look on ``like`` itself then. Should the watcher's session fail
    later (ended by someone, its prepared digest gone behind a pooler), the function goes
    on looking on ``like``.

    Querying ``like`` begins a transaction on it, which the caller ends as it ends its own
    looks' (it is one read).
    """
    dialect = dialect_for(like)
    if not dialect.has_schema_digest:
        yield None
        return
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from abmigrate.db.database import make_engine

    user, search_path, schema = like.execute(text(_SESSION)).one()
    engine = make_engine(url)
    with contextlib.ExitStack() as stack:
        stack.callback(engine.dispose)
        try:
            watcher = engine.execution_options(isolation_level="AUTOCOMMIT").connect()
            stack.callback(_close, watcher)
            watcher.execute(
                text(
                    "SELECT set_config('search_path', :path, false),"
                    " set_config('application_name', :name, false)"
                ),
                {"path": search_path, "name": WATCHER_APPLICATION_NAME},
            )
            same = tuple(watcher.execute(text(_SESSION)).one()) == (user, search_path, schema)
            prepared = dialect.prepared_schema_digest(watcher) if same else None
        except DBAPIError:  # no second connection (the server's limit, say): look on `like`
            prepared = None
        if prepared is None:
            stack.close()
            yield None
            return
        watching = [prepared]

        def digest() -> str:
            if watching:
                try:
                    return watching[0]()
                except Exception:  # the driver's own error: its cursor is used directly
                    watching.clear()
                    with contextlib.suppress(Exception):
                        watcher.invalidate()  # not to be reset on close: it is broken
            return dialect.schema_digest(like)

        yield digest


def _close(watcher: Connection) -> None:
    # A read-only session of our own: closing it may fail only if it is already gone.
    with contextlib.suppress(Exception):
        watcher.close()
