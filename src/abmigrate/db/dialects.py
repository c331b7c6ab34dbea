"""What each database dialect decides, in one place per dialect.

Everything abmigrate does differently on PostgreSQL, SQLite and MySQL/MariaDB is asked of
the object :func:`dialect_for` returns for a URL, a backend name or a connection, as backups
ask their :class:`abmigrate.backup.base.Backend` (and Alembic its ``impl``):

- ``transactional_ddl``: whether a failed revision rolls back whole (PostgreSQL) or may be
  partly applied (SQLite under Alembic, MySQL/MariaDB);
- the session settings of a migration run (:meth:`Dialect.migration_session`,
  :meth:`Dialect.session_prepare`): PostgreSQL's ``PGOPTIONS`` and ``set_config``,
  MySQL/MariaDB's connect listener;
- the dry run's strategy (``dry_run_method``) and what it needs on its connection;
- scratch databases: the server to create them on, CREATE and DROP;
- the migration lock's SQL and whether a run's locks are monitored (``monitors_locks``);
- the one-query schema digest, where the dialect has one;
- which database a connection reaches (:meth:`Dialect.identity`), the journal's commit
  settings, and the few facts other modules ask (search_path, enum types, batch ALTER).

A backend abmigrate does not know gets :class:`Dialect` itself: transactional DDL assumed,
no session settings, no monitoring, no scratch databases, no migration lock.

Nothing here imports SQLAlchemy at module level: ``abmigrate --version`` stays light.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine
    from sqlalchemy.engine import URL

__all__ = [
    "DRY_RUN_ROLLED_BACK",
    "DRY_RUN_SCRATCH_COPY",
    "MIGRATION_APPLICATION_NAME",
    "PG_LOCK_KEY",
    "Dialect",
    "MySQL",
    "PostgreSQL",
    "SQLite",
    "dialect_for",
]

# The application_name of a migration's PostgreSQL session: the monitor and the gatekeeper
# find it in pg_stat_activity by this name.
MIGRATION_APPLICATION_NAME = "abmigrate-migration"
# The two int4 keys of the PostgreSQL advisory lock ("abm", "mig"): pg_locks shows them as
# classid/objid with objsubid = 2. Advisory locks are per database already.
PG_LOCK_KEY = (0x61626D, 0x6D6967)
# The dry run's two strategies (the text is shown to the user and recorded in results).
DRY_RUN_ROLLED_BACK = "applied in one transaction on the database, then rolled back"
DRY_RUN_SCRATCH_COPY = "applied to a scratch copy of the database, then dropped"

LockHolder = dict[str, Any]


class Dialect:
    """A backend abmigrate has no specific knowledge of; the base of the known ones.

    ``name`` is the backend name as the URL spells it ("mariadb" stays "mariadb", for
    messages); ``family`` is the dialect it belongs to ("mysql" for MariaDB too).
    """

    family: ClassVar[str] = ""
    # A failed revision's DDL rolls back with its transaction.
    transactional_ddl: ClassVar[bool] = True
    # The database is a file (no server: scratch databases are temporary files, the
    # migration lock is a file lock).
    file_based: ClassVar[bool] = False
    dry_run_method: ClassVar[str] = DRY_RUN_ROLLED_BACK
    # Some statements refuse to run inside a transaction block (CREATE INDEX CONCURRENTLY):
    # a dry run in a rolled-back transaction skips them.
    has_transaction_only_statements: ClassVar[bool] = False
    # The migration's session is watched while it runs (blockers, index progress) and a
    # gatekeeper ends sessions that would keep it waiting.
    monitors_locks: ClassVar[bool] = False
    # A failed statement aborts the whole transaction (only a savepoint keeps it usable).
    failed_statement_aborts_transaction: ClassVar[bool] = False
    # Schemas are found through a per-session search_path.
    has_search_path: ClassVar[bool] = False
    # Enum types are schema objects of their own (CREATE TYPE), outside any table.
    has_enum_types: ClassVar[bool] = False
    # ALTER TABLE is too limited for autogenerate's operations: they run in batch mode.
    batch_alter: ClassVar[bool] = False
    has_schema_digest: ClassVar[bool] = False
    # CREATE DATABASE … TEMPLATE: a database copied from another (PostgreSQL).
    has_template_databases: ClassVar[bool] = False
    # The database for CREATE/DROP DATABASE when the URL's own does not exist yet.
    maintenance_database: ClassVar[str | None] = None

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    # -- a migration's session ----------------------------------------------------------

    def migration_session(
        self, lock_timeout_ms: int | None, statement_timeout_ms: int | None
    ) -> AbstractContextManager[None]:
        """Settings for every connection opened inside the block (env.py's included)."""
        return contextlib.nullcontext()

    def session_prepare(
        self, lock_timeout_ms: int | None, statement_timeout_ms: int | None
    ) -> Callable[[Connection], None] | None:
        """Settings applied on the migration's connection itself, whatever its driver."""
        return None

    # -- the dry run --------------------------------------------------------------------

    def transactional_engine(self, engine: Engine) -> Engine:
        """``engine`` made to run DDL inside the transactions SQLAlchemy begins."""
        return engine

    # -- the journal --------------------------------------------------------------------

    def relax_durability(self, connection: Connection) -> bool:
        """Let this session's commits skip waiting for durability; True if that was done."""
        return False

    def make_transaction_durable(self, connection: Connection) -> None:
        """This transaction's commit waits for durability again (covering earlier ones)."""

    # -- scratch databases --------------------------------------------------------------

    def scratch_server(self, url: URL) -> URL:
        """The URL to connect to for CREATE/DROP DATABASE of scratch databases."""
        from abmigrate.errors import ConnectionFailed

        raise ConnectionFailed(
            f"cannot create a scratch database on {self.name}",
            hint="use a PostgreSQL, MySQL/MariaDB or SQLite URL",
        )

    def create_database(
        self, connection: Connection, name: str, template: str | None = None
    ) -> None:
        """Create the database ``name`` (a copy of ``template`` where the dialect has
        template databases, see ``has_template_databases``)."""
        raise NotImplementedError(f"no scratch databases on {self.name}")

    def drop_database(self, connection: Connection, name: str) -> None:
        raise NotImplementedError(f"no scratch databases on {self.name}")

    # -- connections --------------------------------------------------------------------

    def schema_connect_args(self, schema: str | None) -> dict[str, Any] | None:
        """Driver connect arguments putting ``schema`` first for every connection."""
        return None

    def identity(self, connection: Connection) -> tuple[str, str, str, str]:
        """The database ``connection`` reaches: dialect, cluster, database and address, the
        fields of :class:`abmigrate.db.database.DatabaseIdentity`."""
        url = connection.engine.url
        return connection.dialect.name, f"{url.host}:{url.port}", str(url.database), str(url.host)

    def schema_digest(self, connection: Connection) -> str:
        """One query's digest of the schema the connection sees (see ``has_schema_digest``)."""
        raise NotImplementedError(f"no schema digest on {self.name}")

    def prepared_schema_digest(self, connection: Connection) -> Callable[[], str]:
        """:meth:`schema_digest` made ready once on ``connection``, taken by calling the result."""
        raise NotImplementedError(f"no schema digest on {self.name}")

    def scratch_engine(self, engine: Engine) -> Engine:
        """``engine`` (to a scratch database) made not to wait for durability where that is
        a per-connection setting: nothing in a scratch database needs to survive a crash."""
        return engine

    # -- looking at live tables (preflight) and measuring a rehearsal -------------------

    # What the row estimate of a table is called in messages.
    row_estimate_name: ClassVar[str] = "planner estimate"
    # The type to cast to text, and the function counting characters (not bytes).
    text_type: ClassVar[str] = "TEXT"
    char_length_function: ClassVar[str] = "length"
    # Rows touched are read from the revision's own transaction counters: batches a
    # backfill committed before the end are missing from them.
    rows_touched_by_transaction: ClassVar[bool] = False

    def table_estimate_query(self, table: str) -> Any:
        """A statement whose one row describes ``table`` (None when it does not exist), or
        None to ask SQLAlchemy's inspector whether it exists (and estimate nothing)."""
        return None

    def row_estimate(self, row: Any) -> float | None:
        """The table's estimated row count from :meth:`table_estimate_query`'s row."""
        return None

    def read_only(self, connection: Connection, statement_timeout_ms: int) -> None:
        """Make the transaction read only, with a statement timeout, where the dialect can."""

    def storage_ids_query(self) -> str | None:
        """Table id, name and storage id of every table (a rewrite gives a table new
        storage), or None when the dialect cannot tell."""
        return None

    def backend_pid(self, connection: Connection) -> int | None:
        """The server process of ``connection``, where lock sampling can use it."""
        return None

    def rows_touched(self, connection: Connection) -> dict[str, int]:
        """Rows changed per table by the transaction open on ``connection``."""
        return {}

    # -- the migration lock (on a dedicated autocommit connection) ----------------------

    def label_lock_session(self, connection: Connection, label: str) -> None:
        """Show ``label`` to other sessions that look for the lock's holder."""

    def try_lock(self, connection: Connection, url: str) -> bool:
        return True  # no server-side lock on this dialect

    def lock_holder(self, connection: Connection, url: str) -> LockHolder:
        return {}

    def unlock(self, connection: Connection, url: str) -> None:
        return None


class PostgreSQL(Dialect):
    family = "postgresql"
    has_transaction_only_statements = True
    monitors_locks = True
    failed_statement_aborts_transaction = True
    has_search_path = True
    has_enum_types = True
    has_schema_digest = True
    has_template_databases = True
    maintenance_database = "postgres"

    def migration_session(
        self, lock_timeout_ms: int | None, statement_timeout_ms: int | None
    ) -> AbstractContextManager[None]:
        """``PGOPTIONS`` for every libpq connection opened inside the block: abmigrate does
        not own the connection env.py opens, but every libpq connection starts with these."""
        return _pgoptions(lock_timeout_ms, statement_timeout_ms)

    def session_prepare(
        self, lock_timeout_ms: int | None, statement_timeout_ms: int | None
    ) -> Callable[[Connection], None] | None:
        """The same settings through ``set_config`` (PGOPTIONS reaches libpq drivers only;
        an asyncpg env.py's connection gets them here)."""

        def prepare(connection: Connection) -> None:
            from sqlalchemy import text

            settings = {
                "application_name": MIGRATION_APPLICATION_NAME,
                "synchronous_commit": "off",
            }
            if lock_timeout_ms is not None:
                settings["lock_timeout"] = str(lock_timeout_ms)
            if statement_timeout_ms is not None:
                settings["statement_timeout"] = str(statement_timeout_ms)
            for name, value in settings.items():
                connection.execute(
                    text("SELECT set_config(:name, :value, false)"),
                    {"name": name, "value": value},
                )

        return prepare

    def relax_durability(self, connection: Connection) -> bool:
        # Not waiting for the WAL flush at each of a long run's updates halves their cost.
        connection.exec_driver_sql("SET synchronous_commit = off")
        return True

    def make_transaction_durable(self, connection: Connection) -> None:
        connection.exec_driver_sql("SET LOCAL synchronous_commit = on")

    def scratch_server(self, url: URL) -> URL:
        return url

    def create_database(
        self, connection: Connection, name: str, template: str | None = None
    ) -> None:
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        from abmigrate.errors import ConnectionFailed

        # template0 unless told: a restore test or replay must start from a pristine
        # database, not from whatever a site added to template1.
        source = template or "template0"
        # Concurrent CREATE DATABASE calls copying template1 can collide ("being accessed by
        # other users"); that is transient, so retry briefly.
        for attempt in range(5):
            try:
                connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{source}"'))
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

    def drop_database(self, connection: Connection, name: str) -> None:
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

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

    def schema_connect_args(self, schema: str | None) -> dict[str, Any] | None:
        return {"options": f"-c search_path={schema}"} if schema else None

    def identity(self, connection: Connection) -> tuple[str, str, str, str]:
        database, system, address, port = connection.exec_driver_sql(
            "SELECT current_database(), (SELECT system_identifier FROM pg_control_system()),"
            " host(inet_server_addr()), inet_server_port()"
        ).one()
        where = f"{address}:{port}" if address else f"the local socket (port {port})"
        return "postgresql", str(system), str(database), where

    def schema_digest(self, connection: Connection) -> str:
        """A digest of the PostgreSQL schema the connection sees by default (one query)."""
        from sqlalchemy import text

        return str(connection.execute(text(_PG_DIGEST)).scalar_one())

    def prepared_schema_digest(self, connection: Connection) -> Callable[[], str]:
        """:meth:`schema_digest` prepared once on ``connection`` (a session of abmigrate's
        own: the prepared statement lives as long as it), as a function taking each digest.
        The query's plan is made once instead of at every digest (about half of its time)."""
        connection.exec_driver_sql(f"PREPARE {_PG_DIGEST_STATEMENT} AS {_PG_DIGEST}")
        # On the driver's own cursor: SQLAlchemy's result machinery costs more client time
        # than the round trip of so small a result (two looks per revision).
        cursor = connection.connection.cursor()

        def digest() -> str:
            cursor.execute(f"EXECUTE {_PG_DIGEST_STATEMENT}")
            row = cursor.fetchone()
            assert row is not None
            return str(row[0])

        return digest

    rows_touched_by_transaction = True

    def table_estimate_query(self, table: str) -> Any:
        from sqlalchemy import text

        return text(
            "SELECT c.relkind, c.reltuples, c.relpages,"
            " pg_relation_size(c.oid) / current_setting('block_size')::int"
            " FROM pg_class c WHERE c.oid = to_regclass(quote_ident(:name))"
        ).bindparams(name=table)

    def row_estimate(self, row: Any) -> float | None:
        relkind, reltuples, relpages, pages = row
        # the planner's own scaling: tuples per page at the last ANALYZE/VACUUM times the
        # pages the table has now; -1 (never analysed) or no pages then: no estimate
        if str(relkind) in ("r", "m") and reltuples >= 0 and relpages > 0:
            return float(reltuples) / float(relpages) * float(pages)
        return None

    def read_only(self, connection: Connection, statement_timeout_ms: int) -> None:
        from sqlalchemy import text

        connection.execute(text("SET TRANSACTION READ ONLY"))
        connection.execute(text(f"SET LOCAL statement_timeout = {statement_timeout_ms}"))

    def storage_ids_query(self) -> str | None:
        return (
            "SELECT c.oid, c.relname, c.relfilenode FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'm') AND n.nspname = current_schema()"
        )

    def backend_pid(self, connection: Connection) -> int | None:
        return int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())

    def rows_touched(self, connection: Connection) -> dict[str, int]:
        from sqlalchemy import text

        rows = connection.execute(
            text(
                "SELECT c.relname, pg_stat_get_xact_tuples_inserted(c.oid)"
                " + pg_stat_get_xact_tuples_updated(c.oid)"
                " + pg_stat_get_xact_tuples_deleted(c.oid)"
                " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()"
            )
        )
        return {
            str(name): int(count) for name, count in rows if count and name != "alembic_version"
        }

    def label_lock_session(self, connection: Connection, label: str) -> None:
        from sqlalchemy import text

        # Shown to a waiting runner through pg_stat_activity (63 characters at most).
        connection.execute(
            text("SELECT set_config('application_name', :label, false)"), {"label": label[:63]}
        )

    def try_lock(self, connection: Connection, url: str) -> bool:
        from sqlalchemy import text

        return bool(
            connection.execute(
                text("SELECT pg_try_advisory_lock(:a, :b)"),
                {"a": PG_LOCK_KEY[0], "b": PG_LOCK_KEY[1]},
            ).scalar()
        )

    def lock_holder(self, connection: Connection, url: str) -> LockHolder:
        from sqlalchemy import text

        row = (
            connection.execute(
                text(
                    "SELECT a.pid, a.application_name, a.usename, a.client_addr,"
                    " a.state_change FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                    " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :a"
                    " AND l.objid = :b AND l.objsubid = 2"
                    " AND l.database = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database())"
                ),
                {"a": PG_LOCK_KEY[0], "b": PG_LOCK_KEY[1]},
            )
            .mappings()
            .first()
        )
        if row is None:
            return {}
        return _pg_holder(dict(row))

    def unlock(self, connection: Connection, url: str) -> None:
        from sqlalchemy import text

        connection.execute(
            text("SELECT pg_advisory_unlock(:a, :b)"), {"a": PG_LOCK_KEY[0], "b": PG_LOCK_KEY[1]}
        )


class SQLite(Dialect):
    family = "sqlite"
    # Alembic runs SQLite DDL outside a transaction (pysqlite only BEGINs before DML).
    transactional_ddl = False
    file_based = True
    batch_alter = True

    def transactional_engine(self, engine: Engine) -> Engine:
        from sqlalchemy import event

        # Python's sqlite3 module commits before DDL by itself; handing transaction control
        # to SQLAlchemy makes DDL transactional (SQLite itself supports it) and savepoints
        # work: SQLAlchemy's documented recipe for pysqlite.
        @event.listens_for(engine, "connect")
        def _driver_autocommit(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN")

        return engine

    def scratch_engine(self, engine: Engine) -> Engine:
        from sqlalchemy import event

        # No fsync per commit (SQLite's default waits for the disk on every one: with
        # Alembic's DDL committing statement by statement, most of a walk's time), and the
        # rollback journal in memory rather than a file created and deleted per transaction
        # (a rollback still works; only a crash could leave the file unusable). PostgreSQL
        # gets the same from synchronous_commit = off on the scratch database itself.
        @event.listens_for(engine, "connect")
        def _no_sync(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.execute("PRAGMA synchronous = OFF")
            dbapi_connection.execute("PRAGMA journal_mode = MEMORY")

        return engine

    def identity(self, connection: Connection) -> tuple[str, str, str, str]:
        rows = connection.exec_driver_sql("PRAGMA database_list").all()
        main = next((str(row[2] or "") for row in rows if row[1] == "main"), "")
        where = str(Path(main).resolve()) if main else f":memory: ({id(connection.connection)})"
        return "sqlite", "", where, ""

    def storage_ids_query(self) -> str | None:
        return "SELECT name, name, rootpage FROM sqlite_master WHERE type = 'table'"

    def rows_touched(self, connection: Connection) -> dict[str, int]:
        changed = int(connection.exec_driver_sql("SELECT total_changes()").scalar_one())
        return {"(all tables)": changed} if changed else {}


class MySQL(Dialect):
    """MySQL and MariaDB (``name`` says which the URL names)."""

    family = "mysql"
    transactional_ddl = False
    # A rolled-back transaction would not undo the DDL: the dry run works on a copy.
    dry_run_method = DRY_RUN_SCRATCH_COPY
    row_estimate_name = "TABLE_ROWS estimate"
    text_type = "CHAR"
    char_length_function = "char_length"  # MySQL's length() counts bytes

    def migration_session(
        self, lock_timeout_ms: int | None, statement_timeout_ms: int | None
    ) -> AbstractContextManager[None]:
        """``lock_wait_timeout`` (whole seconds, at least 1) from lock_timeout and, on
        MariaDB, ``max_statement_time`` from statement_timeout, for every connection opened
        inside the block (a pool ``connect`` listener: env.py's engine included). No retries
        on this dialect: DDL commits statement by statement, a retry could re-run half a
        revision. The timeout still stops a migration from queueing every writer."""
        return _mysql_connect_settings(lock_timeout_ms, statement_timeout_ms)

    def scratch_server(self, url: URL) -> URL:
        # The URL as given, its database included: URL.set(database=None), which the code
        # before the dialect objects called here, leaves the database unchanged (None means
        # "keep" to SQLAlchemy), so this is what scratch databases have always connected to.
        return url

    def create_database(
        self, connection: Connection, name: str, template: str | None = None
    ) -> None:
        from sqlalchemy import text

        connection.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))

    def drop_database(self, connection: Connection, name: str) -> None:
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

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

    def identity(self, connection: Connection) -> tuple[str, str, str, str]:
        database, host, port, datadir = connection.exec_driver_sql(
            "SELECT DATABASE(), @@hostname, @@port, @@datadir"
        ).one()
        return connection.dialect.name, f"{host}:{datadir}", str(database), f"{host}:{port}"

    def table_estimate_query(self, table: str) -> Any:
        from sqlalchemy import text

        return text(
            "SELECT TABLE_TYPE, TABLE_ROWS FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :name"
        ).bindparams(name=table)

    def row_estimate(self, row: Any) -> float | None:
        if row[0] == "BASE TABLE" and row[1] is not None:
            return float(row[1])
        return None

    def read_only(self, connection: Connection, statement_timeout_ms: int) -> None:
        from sqlalchemy import text

        # MariaDB names it max_statement_time (seconds), MySQL max_execution_time (ms)
        for statement in (
            f"SET SESSION max_statement_time = {statement_timeout_ms / 1000}",
            f"SET SESSION max_execution_time = {statement_timeout_ms}",
        ):
            try:
                with connection.begin_nested():
                    connection.execute(text(statement))
            except Exception:  # the other server's name for it
                continue
            break

    @staticmethod
    def lock_name(url: str) -> str:
        from sqlalchemy.engine import make_url

        # GET_LOCK names are server-wide: scope them to the database (64 characters at most).
        return f"abmigrate:{make_url(url).database or ''}"[:64]

    def try_lock(self, connection: Connection, url: str) -> bool:
        from sqlalchemy import text

        return bool(
            connection.execute(
                text("SELECT GET_LOCK(:name, 0)"), {"name": self.lock_name(url)}
            ).scalar()
            == 1
        )

    def lock_holder(self, connection: Connection, url: str) -> LockHolder:
        from datetime import UTC, datetime

        from sqlalchemy import text

        row = (
            connection.execute(
                text(
                    "SELECT id, user, host, time FROM information_schema.processlist"
                    " WHERE id = IS_USED_LOCK(:name)"
                ),
                {"name": self.lock_name(url)},
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

    def unlock(self, connection: Connection, url: str) -> None:
        from sqlalchemy import text

        connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": self.lock_name(url)})


_FAMILIES: dict[str, type[Dialect]] = {
    "postgresql": PostgreSQL,
    "sqlite": SQLite,
    "mysql": MySQL,
    "mariadb": MySQL,
}


def dialect_for(source: str | URL | Connection | None) -> Dialect:
    """The dialect object for a backend name ("postgresql", "mariadb"), a URL (string or
    SQLAlchemy ``URL``, any driver) or a connection."""
    if source is None:
        name = ""
    elif isinstance(source, str):
        # A URL's backend is what precedes ":" and "+": the same as get_backend_name().
        name = source.split(":", 1)[0].split("+", 1)[0]
    elif hasattr(source, "get_backend_name"):
        name = str(source.get_backend_name())
    else:
        name = str(source.dialect.name)
    return _FAMILIES.get(name, Dialect)(name)


# -- PostgreSQL's session settings -------------------------------------------------------


# PGOPTIONS is the process's environment: runs in several threads (a fleet) share it. Runs
# asking for the same options share it while any of them runs; a run asking for others waits.
_PGOPTIONS_TURN = threading.Condition()
_pgoptions_held: list[Any] = [None, 0, None]  # the options, how many runs use them, previous


@contextlib.contextmanager
def _pgoptions(lock_timeout_ms: int | None, statement_timeout_ms: int | None) -> Iterator[None]:
    # Revisions commit without waiting for the WAL flush (a flush per revision adds up on
    # a long plan); the journal's last write of the run
    # waits for the flush, which covers every commit before it. A server crash during
    # the run can lose the last revisions' commits, each whole: schema and version row
    # together, never one without the other.
    options = [f"-c application_name={MIGRATION_APPLICATION_NAME}", "-c synchronous_commit=off"]
    if lock_timeout_ms is not None:
        options.append(f"-c lock_timeout={lock_timeout_ms}")
    if statement_timeout_ms is not None:
        options.append(f"-c statement_timeout={statement_timeout_ms}")
    wanted = tuple(options)
    held = _pgoptions_held
    with _PGOPTIONS_TURN:
        _PGOPTIONS_TURN.wait_for(lambda: held[1] == 0 or held[0] == wanted)
        if held[1] == 0:
            previous = os.environ.get("PGOPTIONS")
            held[0], held[2] = wanted, previous
            os.environ["PGOPTIONS"] = " ".join([*([previous] if previous else []), *options])
        held[1] += 1
    try:
        yield
    finally:
        with _PGOPTIONS_TURN:
            held[1] -= 1
            if held[1] == 0:
                if held[2] is None:
                    os.environ.pop("PGOPTIONS", None)
                else:
                    os.environ["PGOPTIONS"] = held[2]
                held[0] = held[2] = None
                _PGOPTIONS_TURN.notify_all()


def _pg_holder(row: dict[str, Any]) -> LockHolder:
    from datetime import UTC, datetime

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


# -- MySQL/MariaDB's session settings ----------------------------------------------------


@contextlib.contextmanager
def _mysql_connect_settings(
    lock_timeout_ms: int | None, statement_timeout_ms: int | None
) -> Iterator[None]:
    if lock_timeout_ms is None and statement_timeout_ms is None:
        yield
        return
    import math

    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    def on_connect(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if lock_timeout_ms is not None:
                seconds = max(1, math.ceil(lock_timeout_ms / 1000))
                cursor.execute(f"SET SESSION lock_wait_timeout = {seconds}")
            if statement_timeout_ms is not None:
                cursor.execute("SELECT VERSION()")
                row = cursor.fetchone()
                # MySQL has no max_statement_time (its max_execution_time covers SELECTs
                # only): the server's own version string says which one answered.
                if row and "mariadb" in str(row[0]).lower():
                    seconds_f = statement_timeout_ms / 1000
                    cursor.execute(f"SET SESSION max_statement_time = {seconds_f:g}")
        finally:
            cursor.close()

    with _CONNECT_LOCK:
        if not _connect_listening:
            _connect_listening.append(True)
            # Once for the process: adding and removing a listener of the Pool class per run
            # would change SQLAlchemy's class-level list while other threads (a fleet's runs)
            # iterate it. A connection made in a run's thread gets that run's settings; one
            # made elsewhere (an env.py's worker thread), those of the only run, if one.
            event.listen(Pool, "connect", _on_pool_connect)
        _connect_hooks[threading.get_ident()] = on_connect
    try:
        yield
    finally:
        with _CONNECT_LOCK:
            _connect_hooks.pop(threading.get_ident(), None)


_CONNECT_LOCK = threading.Lock()
_connect_hooks: dict[int, Callable[[Any, Any], None]] = {}
_connect_listening: list[bool] = []


def _on_pool_connect(dbapi_connection: Any, record: Any) -> None:
    hook = _connect_hooks.get(threading.get_ident())
    if hook is None and len(_connect_hooks) == 1:
        hook = next(iter(_connect_hooks.values()))
    if hook is not None:
        hook(dbapi_connection, record)


# -- PostgreSQL's schema digest ----------------------------------------------------------

# One query, a few milliseconds: a digest of everything a fingerprint describes (and a little
# more), used only to tell "unchanged" from "changed". Column order and object ids are left
# out, as the fingerprint leaves them out; a changed digest leads to a full fingerprint diff.
# The lines are sorted bytewise (COLLATE "C"): a database's own collation may sort them
# several times slower, and the order only has to be the same from one digest to the next.
# The name of the digest prepared on a connection of abmigrate's own (prepared_schema_digest).
_PG_DIGEST_STATEMENT = "abmigrate_schema_digest"
_PG_DIGEST = """
WITH rel AS (
    -- The schema looked up once (a sub-select), not once per row of pg_class.
    SELECT c.oid, c.relname, c.relkind, c.relam FROM pg_class c
    WHERE c.relnamespace = (SELECT current_schema()::regnamespace)
), descr AS (
    -- Comments joined once: obj_description()/col_description() per row searched
    -- pg_description for every relation and column (a third of the query's time). Only
    -- user objects' comments are read (their OIDs start at FirstNormalObjectId, 16384):
    -- an index range scan instead of a pass over the thousands describing the catalog.
    SELECT d.objoid, d.objsubid, d.description FROM pg_description d
    JOIN rel ON rel.oid = d.objoid
    WHERE d.objoid >= 16384 AND d.classoid = 'pg_class'::regclass
)
SELECT md5(coalesce(string_agg(line, ' | ' ORDER BY line COLLATE "C"), '')) FROM (
    SELECT 'r ' || relname || ' ' || relkind::text || ' ' || coalesce((SELECT description FROM descr WHERE objoid = rel.oid AND objsubid = 0), '')
        AS line FROM rel WHERE relkind <> 'i' AND relkind <> 'I'
    UNION ALL
    SELECT 'c ' || rel.relname || '.' || a.attname || ' '
        || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull::text || ' '
        || coalesce(pg_get_expr(d.adbin, d.adrelid), '') || ' ' || a.attidentity::text || ' '
        || a.attgenerated::text || ' ' || coalesce(ds.description, '')
    FROM rel JOIN pg_attribute a ON a.attrelid = rel.oid AND a.attnum > 0
        AND NOT a.attisdropped
    LEFT JOIN pg_attrdef d ON d.adrelid = rel.oid AND d.adnum = a.attnum
    LEFT JOIN descr ds ON ds.objoid = rel.oid AND ds.objsubid = a.attnum
    WHERE rel.relkind IN ('r', 'p', 'v', 'm', 'f')
    UNION ALL
    SELECT 'k ' || rel.relname || ' ' || con.conname || ' ' || con.contype::text || ' '
        || con.conkey::text || ' ' || con.confrelid::regclass::text || ' '
        || coalesce(con.confkey::text, '') || ' ' || con.confupdtype::text
        || con.confdeltype::text || con.condeferrable::text || con.condeferred::text || ' '
        || coalesce(pg_get_expr(con.conbin, con.conrelid), '')
    FROM pg_constraint con JOIN rel ON rel.oid = con.conrelid
    UNION ALL
    SELECT 'i ' || rel.relname || ' ' || i.indexrelid::regclass::text || ' '
        || i.indkey::text || ' ' || i.indisunique::text || ' ' || i.indclass::text || ' '
        || i.indoption::text || ' ' || i.indnkeyatts || ' ' || am.amname || ' '
        || coalesce(pg_get_expr(i.indexprs, i.indrelid), '') || ' '
        || coalesce(pg_get_expr(i.indpred, i.indrelid), '')
    FROM pg_index i JOIN rel ON rel.oid = i.indrelid
    -- An index is always in its table's schema: rel has it.
    JOIN rel ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
    UNION ALL
    SELECT 'v ' || relname || ' ' || pg_get_viewdef(oid) FROM rel WHERE relkind IN ('v', 'm')
    UNION ALL
    SELECT 't ' || t.typname || ' ' || t.typtype::text || ' ' || coalesce(
        (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
         FROM pg_enum e WHERE e.enumtypid = t.oid), '')
    FROM pg_type t WHERE t.typnamespace = current_schema()::regnamespace
        AND t.typtype IN ('e', 'd')
    UNION ALL
    SELECT 's ' || rel.relname || ' ' || format_type(s.seqtypid, NULL) || ' '
        || s.seqstart || ' ' || s.seqincrement || ' ' || s.seqmin || ' ' || s.seqmax || ' '
        || s.seqcycle::text
    FROM pg_sequence s JOIN rel ON rel.oid = s.seqrelid
) lines
"""
