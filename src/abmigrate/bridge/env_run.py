"""Running a project's ``env.py`` online, on a connection abmigrate owns.

Every command that executes revisions (upgrade, downgrade, the dry run, stamp, check's round
trips, diagnose's replays, rehearse, capture) runs ``env.py`` through :func:`run_env_online`.
``env.py`` runs unchanged: it builds whatever engine it builds (from ``sqlalchemy.url``, an
environment variable, its application's settings, an async engine) and calls
``context.configure(connection=…, **options)``. abmigrate intercepts that call:

- the connection ``env.py`` configured is asked which database it reaches
  (:func:`abmigrate.db.database.database_identity`). When that is not the database abmigrate was
  told to change, the run stops before any revision runs, naming both databases and the
  setting that decides it (:class:`WrongDatabase`, exit 2): nothing anywhere has changed;
- the migrations then run on that connection, with the project's own driver and session
  state (an asyncpg engine's SQL stays asyncpg's), after abmigrate set its session settings
  on it (lock and statement timeouts, application name); env.py's own ``search_path`` and
  version table are followed. Only the dry run, which needs every revision inside its own
  transaction, runs them on abmigrate's connection (with env.py's ``search_path``);
- ``transaction_per_migration`` is turned on, so each revision commits on its own and a run
  that fails keeps the revisions before it, as the journal says.

An ``env.py`` written for a running event loop or an AnyIO worker thread (prefect) fails
before it configures anything when started from plain synchronous code; it is then started
again the way it expects (see :func:`_start_env`).
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from abmigrate.db.database import (
    DEFAULT_VERSION_TABLE,
    DatabaseIdentity,
    VersionTable,
    database_identity,
    make_engine,
    parse_url,
)
from abmigrate.db.dialects import dialect_for
from abmigrate.db.url import mask_url
from abmigrate.errors import AbmigrateError, ConfigError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext, RevisionStep
    from alembic.script import ScriptDirectory
    from sqlalchemy import Connection
    from sqlalchemy.engine import URL

__all__ = ["EnvFacts", "StepFunction", "WrongDatabase", "pointing_env_at", "run_env_online"]

# Alembic's work function: given the heads the database records, the steps to execute.
StepFunction = Callable[[Sequence[str], "MigrationContext"], Iterable["RevisionStep"]]

_ENGINE_CALL = re.compile(
    r"\b(create_engine|engine_from_config|async_engine_from_config|create_async_engine)\s*\("
)
_WORKER_THREAD = re.compile(r"worker thread|no current event loop|no running event loop", re.I)


_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])


class WrongDatabase(ConfigError):
    """env.py connects to another database than the one abmigrate was told to change."""


@dataclass
class EnvFacts:
    """What ``env.py`` configured during one run."""

    version_table: VersionTable = DEFAULT_VERSION_TABLE
    heads: tuple[str, ...] = ()
    search_path: str | None = None  # set by env.py on its own connection (PostgreSQL)
    own_engine: bool = False  # env.py opened its own engine (to the same database)
    options: list[str] = field(default_factory=list)  # the names env.py passed to configure
    connection: Connection | None = None  # the one the migrations run on


def _sharing_the_environment(function: _F) -> _F:
    """Another thread's scratch job may be pointing ``$DATABASE_URL`` elsewhere: env.py runs
    wait for it (:data:`abmigrate.bridge.threads.environment_turns`)."""
    from abmigrate.bridge.threads import environment_turns

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        with environment_turns.shared():
            return function(*args, **kwargs)

    return cast(_F, run)


@_sharing_the_environment
def run_env_online(
    config: Config,
    script: ScriptDirectory,
    fn: StepFunction,
    *,
    connection: Connection | None = None,
    url: str | None = None,
    dont_mutate: bool = False,
    purge: bool = False,
    per_migration: bool = True,
    autocommit_block: Callable[[], AbstractContextManager[None]] | None = None,
    on_configured: Callable[[EnvFacts], None] | None = None,
    on_version_apply: Callable[..., None] | None = None,
    swap: bool = False,
    prepare: Callable[[Connection], None] | None = None,
) -> EnvFacts:
    """Run ``env.py`` once with ``fn`` as Alembic's work function, on ``connection`` (or a
    connection abmigrate opens to ``url``), whatever connection env.py configures.
    ``on_configured(facts)`` is called once env.py configured, before any step runs;
    ``on_version_apply`` joins the callbacks env.py registers (Alembic calls it after each
    step, inside the step's transaction, with the heads the database now records).

    The migrations run on the connection env.py configured when it reaches the target
    (the project's own driver and session state), with ``prepare(connection)`` applied first
    (abmigrate's session settings: timeouts, application name); with ``swap`` (the dry run,
    which needs its own transaction) they run on ``connection`` instead, with env.py's
    search_path. ``connection`` may already be in a transaction (the dry run's): Alembic then
    leaves the transaction to its owner. Returns what env.py configured (version table,
    heads …).
    """
    from alembic.runtime.environment import EnvironmentContext

    if connection is None:
        if url is None:
            raise ValueError("run_env_online needs a connection or a URL")
        engine = make_engine(url)
        try:
            with engine.connect() as opened:
                return run_env_online(
                    config,
                    script,
                    fn,
                    connection=opened,
                    dont_mutate=dont_mutate,
                    purge=purge,
                    per_migration=per_migration,
                    autocommit_block=autocommit_block,
                    on_configured=on_configured,
                    on_version_apply=on_version_apply,
                    swap=swap,
                    prepare=prepare,
                )
        finally:
            engine.dispose()

    handed = connection
    target = _settled(handed, lambda: database_identity(handed))
    facts = EnvFacts()
    configured = False

    def recording(heads: Sequence[str], migration_context: MigrationContext) -> Any:
        facts.heads = tuple(heads)
        return fn(heads, migration_context)

    context = EnvironmentContext(
        config, script, fn=recording, as_sql=False, dont_mutate=dont_mutate, purge=purge
    )
    configure = context.configure

    def configure_owned(
        connection: Connection | None = None,
        url: Any = None,
        dialect_name: str | None = None,
        dialect_opts: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        nonlocal configured
        configured = True
        facts.options = sorted(options)
        used = handed
        if connection is not None and connection is not handed:
            facts.own_engine = True
            theirs = _settled(connection, lambda: database_identity(connection))
            if not theirs.same_as(target):
                raise _wrong_database(script, connection, theirs, handed, target)
            facts.search_path = _settled(connection, lambda: _own_search_path(connection))
            if not swap:
                used = connection
            elif facts.search_path is not None:
                search_path = facts.search_path
                _settled(handed, lambda: _set_search_path(handed, search_path))
        if prepare is not None and used is not handed:
            prepared = used
            _settled(prepared, lambda: prepare(prepared))
        facts.connection = used
        if per_migration:
            options["transaction_per_migration"] = True
        if on_version_apply is not None:
            own = options.get("on_version_apply")
            callbacks = () if own is None else (own,) if callable(own) else tuple(own)
            options["on_version_apply"] = (*callbacks, on_version_apply)
        configure(connection=used, **options)
        migration_context = context.get_context()
        facts.version_table = _settled(used, lambda: _version_table(migration_context, facts))
        if autocommit_block is not None:
            migration_context.autocommit_block = autocommit_block  # type: ignore[method-assign,assignment]
        if on_configured is not None:
            on_configured(facts)

    # On the instance, not a subclass: Alembic's `context` module proxies the methods of the
    # EnvironmentContext class it knows, looked up on the instance it installs.
    context.configure = configure_owned  # type: ignore[method-assign,assignment]
    saved = config.attributes.get("connection")
    config.attributes["connection"] = handed  # the cookbook's way to share a connection
    try:
        with context:
            _start_env(script, lambda: configured)
    finally:
        if saved is None:
            config.attributes.pop("connection", None)
        else:
            config.attributes["connection"] = saved
    return facts


def _start_env(script: ScriptDirectory, configured: Callable[[], bool]) -> None:
    """Run env.py; when it fails for want of an event loop or an AnyIO worker thread before
    configuring anything (so nothing ran), start it again in the setting it expects."""
    try:
        script.run_env()
    except RuntimeError as exc:
        if configured() or not _WORKER_THREAD.search(str(exc)):
            raise
        if "worker thread" in str(exc):
            _run_in_anyio_worker_thread(script.run_env)
        else:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                script.run_env()
            finally:
                asyncio.set_event_loop(None)
                loop.close()


def _run_in_anyio_worker_thread(run: Callable[[], None]) -> None:
    try:
        import anyio
        import anyio.to_thread
    except ImportError:  # pragma: no cover - env.py asking for it has anyio installed
        raise ConfigError(
            "env.py must run in an AnyIO worker thread, and anyio is not installed"
        ) from None

    async def main() -> None:
        await anyio.to_thread.run_sync(run)

    anyio.run(main)


def _settled(connection: Connection, work: Callable[[], _T]) -> _T:
    """Run a look-up on ``connection`` without leaving it inside a transaction it was not
    in before (SQLAlchemy begins one on the first statement)."""
    was_in_transaction = connection.in_transaction()
    try:
        return work()
    finally:
        if not was_in_transaction and connection.in_transaction():
            connection.commit()


def _own_search_path(connection: Connection) -> str | None:
    """The search_path env.py set on its connection, when it differs from the default."""
    if not dialect_for(connection).has_search_path:
        return None
    session, default = connection.exec_driver_sql(
        "SELECT current_setting('search_path'),"
        " (SELECT reset_val FROM pg_settings WHERE name = 'search_path')"
    ).one()
    return str(session) if session != default else None


def _set_search_path(connection: Connection, search_path: str) -> None:
    # set_config(…, false): for the session, surviving the commit _settled makes.
    from sqlalchemy import text

    connection.execute(
        text("SELECT set_config('search_path', :path, false)"), {"path": search_path}
    )


def _version_table(context: MigrationContext, facts: EnvFacts) -> VersionTable:
    """Where this run records revisions; an unqualified table under a search_path env.py
    set is resolved to the schema it lands in, so abmigrate's other connections find it."""
    version = context._version
    name, schema = str(version.name), version.schema
    connection = context.connection
    if schema is None and facts.search_path is not None and connection is not None:
        from sqlalchemy import text

        found = connection.execute(
            text(
                "SELECT coalesce((SELECT n.nspname FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.oid = to_regclass(quote_ident(:name))), current_schema())"
            ),
            {"name": name},
        ).scalar()
        schema = str(found) if found else None
    return VersionTable(name, schema)


def _wrong_database(
    script: ScriptDirectory,
    connection: Connection,
    theirs: DatabaseIdentity,
    handed: Connection,
    target: DatabaseIdentity,
) -> WrongDatabase:
    their_url = connection.engine.url
    shown = mask_url(their_url.render_as_string(hide_password=False))
    target_shown = mask_url(handed.engine.url.render_as_string(hide_password=False))
    return WrongDatabase(
        f"env.py connects to {theirs.describe()} ({shown}), not to {target.describe()}"
        f" ({target_shown}) that abmigrate was asked to change; nothing was run",
        hint=_url_source(script, their_url)
        + "; point it at the same database, or make env.py use config.get_main_option("
        "'sqlalchemy.url') or config.attributes['connection']",
    )


def _url_source(script: ScriptDirectory, url: URL) -> str:
    """Which setting decides the database env.py connects to: an environment variable
    holding that URL, else the line of env.py that builds the engine."""
    for name, value in sorted(os.environ.items()):
        if "://" in value and _same_place(value, url):
            return f"env.py's engine takes its URL from ${name}"
    env_py = Path(script.dir) / "env.py"
    try:
        lines = env_py.read_text(encoding="utf-8").splitlines()
    except OSError:
        return f"{env_py} builds an engine of its own"
    for number, line in enumerate(lines, 1):
        if _ENGINE_CALL.search(line):
            return f"{env_py}:{number} builds an engine of its own ({line.strip()[:80]})"
    return f"{env_py} configures a connection of its own"


def _same_place(value: str, url: URL) -> bool:
    try:
        other = parse_url(value)
    except AbmigrateError:
        return False
    keys = ("host", "port", "database", "username")
    return other.get_backend_name() == url.get_backend_name() and all(
        getattr(other, key) == getattr(url, key) for key in keys
    )


@contextmanager
def pointing_env_at(url: str, target_url: str) -> Iterator[None]:
    """While a run works on a scratch database ``url``, point every environment variable
    that names the real target (``DATABASE_URL``, or any variable whose value is the target's
    URL, prefect's ``PREFECT_API_DATABASE_CONNECTION_URL`` …) at the scratch database, each
    keeping its own driver, so an env.py that reads one reaches the scratch database.
    Env.py runs of other threads (a fleet) wait meanwhile: the variables are the process's."""
    from abmigrate.bridge.threads import environment_turns

    with environment_turns.exclusive():
        yield from _pointing_env_at(url, target_url)


def _pointing_env_at(url: str, target_url: str) -> Iterator[None]:
    try:
        target = parse_url(target_url)
    except AbmigrateError:
        yield
        return
    scratch = parse_url(url)
    saved: dict[str, str | None] = {"DATABASE_URL": os.environ.get("DATABASE_URL")}
    replaced: dict[str, str] = {"DATABASE_URL": url}
    for name, value in os.environ.items():
        if name != "DATABASE_URL" and "://" in value and _same_place(value, target):
            own = parse_url(value)
            saved[name] = value
            replaced[name] = scratch.set(drivername=own.drivername).render_as_string(
                hide_password=False
            )
    os.environ.update(replaced)
    try:
        yield
    finally:
        for name, previous in saved.items():
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous
