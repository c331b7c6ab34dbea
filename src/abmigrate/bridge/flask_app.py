"""Flask-Migrate projects: ``env.py`` runs inside the Flask application's context.

A Flask-Migrate ``env.py`` reads everything from ``flask.current_app``: the database URL
(``current_app.extensions['migrate'].db.engine``, or ``current_app.config
['SQLALCHEMY_DATABASE_URI']``), the models' metadata, Flask-Migrate's ``configure_args``.
Outside an application context it fails with "Working outside of application context";
``flask db upgrade`` pushes one. abmigrate does the same:

- the application is found the way the ``flask`` command finds it, by Flask's own
  ``flask.cli.ScriptInfo(...).load_app()``: the ``flask_app`` setting (same syntax as
  ``FLASK_APP``: ``module:app``, ``module:create_app()``, ``path/to/app.py``), else
  ``$FLASK_APP``, else ``wsgi.py`` or ``app.py`` in the working folder. It is loaded once per
  process and kept;
- around each run of env.py (online, offline, the models' run) ``app.app_context()`` is
  pushed in the thread that runs it (contexts are context-local);
- during the run the application points at the database abmigrate was told to change, not
  at the one its own configuration names: ``SQLALCHEMY_DATABASE_URI`` is set to abmigrate's
  URL (Flask-SQLAlchemy 2 builds its engine from it on each ``get_engine()``; env.py files
  that read the setting themselves, like superset's, follow it too), and Flask-SQLAlchemy 3's
  default engine, made once at ``init_app``, is swapped for one on abmigrate's URL. Both are
  put back when the run ends. The application's configuration is the process's, not the
  thread's: Flask env.py runs take the process's environment whole
  (:data:`abmigrate.bridge.threads.environment_turns`), so a fleet's targets take turns.

Whether env.py needs this is decided by its source (it imports ``current_app`` from flask)
or by the ``flask_app`` setting. Flask is imported only then: abmigrate does not depend on it.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abmigrate.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = [
    "flask_app_context",
    "flask_migrate_metadata",
    "load_flask_app",
    "needs_flask_app",
    "resolve_flask_app",
]

# `from flask import current_app` (alone or among other names, parenthesised or not), or
# `flask.current_app` used through the module.
_CURRENT_APP = re.compile(
    r"^\s*from\s+flask\s+import\s+(?:\([^)]*|[^\n]*)\bcurrent_app\b|\bflask\.current_app\b",
    re.MULTILINE,
)
# FLASK_APP's own split (flask.cli.ScriptInfo.load_app): a colon not starting a Windows path.
_SPEC_SPLIT = re.compile(r":(?![\\/])")
_URI_KEY = "SQLALCHEMY_DATABASE_URI"
_HINT = (
    'name the application with flask_app = "module:create_app()" in the abmigrate'
    " configuration, or set FLASK_APP as for `flask db upgrade`"
)

_loaded: dict[tuple[str | None, str], tuple[Any, Any]] = {}
_loading = threading.Lock()


def needs_flask_app(script_dir: str | Path) -> bool:
    """Whether the env.py in ``script_dir`` reads ``flask.current_app`` (Flask-Migrate's
    template does, and so do the env.py files written after it)."""
    try:
        source = (Path(script_dir) / "env.py").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(_CURRENT_APP.search(source))


def resolve_flask_app(spec: str, folder: Path) -> str:
    """A ``flask_app`` setting with its module or file path taken from ``folder`` (the
    configuration file's), as a relative SQLite path is: the same command finds the same
    application from any sub-folder. ``module:create_app()`` stays valid: Flask's
    ``prepare_import`` puts ``folder`` on ``sys.path`` and imports ``module`` from it."""
    parts = _SPEC_SPLIT.split(spec, maxsplit=1)
    path = parts[0]
    if not path or os.path.isabs(path):
        return spec
    anchored = str(folder / path)
    return anchored if len(parts) == 1 else f"{anchored}:{parts[1]}"


def load_flask_app(spec: str | None) -> Any:
    """The Flask application ``spec`` names (else ``$FLASK_APP``, else ``wsgi.py``/``app.py``
    in the working folder), loaded once per process by Flask's own ``ScriptInfo``."""
    spec = spec or os.environ.get("FLASK_APP") or None
    key = (spec, os.getcwd())
    with _loading:
        cached = _loaded.get(key)
        # Kept while the module it came from is (a caller that unloads the project's
        # modules, as the tests' in-process runner does, gets it loaded afresh).
        if cached is not None and sys.modules.get(cached[0].import_name) is cached[1]:
            return cached[0]
        try:
            from flask.cli import NoAppException, ScriptInfo
        except ImportError:
            raise ConfigError(
                "env.py needs a Flask application (it reads flask.current_app),"
                " but Flask is not installed here",
                hint="install the project (Flask, Flask-Migrate) in the environment abmigrate"
                " runs from",
            ) from None
        named = f" {spec!r}" if spec else ""
        from abmigrate.bridge.stdout import project_stdout_to_stderr

        try:
            # The application's own prints (pgAdmin's, while it migrates its own database)
            # are the project's: standard output carries abmigrate's result.
            with project_stdout_to_stderr():
                app = ScriptInfo(app_import_path=spec, set_debug_flag=False).load_app()
        except NoAppException as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            raise ConfigError(
                f"env.py needs a Flask application{named}: {first}", hint=_HINT
            ) from None
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise ConfigError(
                f"the Flask application{named} failed to load: {type(exc).__name__}: {first}",
                hint=_HINT if not spec else "run `abmigrate --debug ...` for the traceback",
            ) from exc
        _loaded[key] = (app, sys.modules.get(app.import_name))
        return app


@contextmanager
def flask_app_context(
    spec: str | None, url: str | None, *, offline: bool = False
) -> Iterator[None]:
    """The Flask application's context around one env.py run in this thread, the application
    pointed at ``url`` (abmigrate's database) for its duration (None: left as configured,
    for an offline run without a database). ``offline``: SQL is rendered, nothing runs, and
    the application's engine is one on ``url`` that refuses to connect (a revision that
    reaches for it, pgAdmin's ``create_all(db.engine)``, must not write anywhere)."""
    from abmigrate.bridge.threads import environment_turns

    app = load_flask_app(spec)
    with environment_turns.exclusive(), app.app_context():
        if url is None:
            yield
            return
        with _pointed_at(app, url, offline=offline):
            yield


def flask_migrate_metadata(spec: str | None) -> Any | None:
    """The metadata Flask-Migrate's env.py template hands autogenerate
    (``current_app.extensions['migrate'].db``'s default metadata), for an env.py that
    passes no ``target_metadata`` offline (pgAdmin's); None without Flask-Migrate."""
    app = load_flask_app(spec)
    with app.app_context():
        migrate = app.extensions.get("migrate")
        db = getattr(migrate, "db", None)
        if db is None:
            return None
        metadatas = getattr(db, "metadatas", None)
        if isinstance(metadatas, dict) and metadatas.get(None) is not None:
            return metadatas[None]
        return getattr(db, "metadata", None)


@contextmanager
def _pointed_at(app: Any, url: str, *, offline: bool) -> Iterator[None]:
    from abmigrate.db.database import make_engine

    config = app.config
    had = _URI_KEY in config
    saved = config.get(_URI_KEY)
    config[_URI_KEY] = url
    swapped: list[tuple[dict[str | None, Engine], Engine, Engine]] = []
    try:
        for engines in _default_engines(app):
            replacement = _unconnectable(url) if offline else make_engine(url)
            swapped.append((engines, engines[None], replacement))
            engines[None] = replacement
        yield
    finally:
        for engines, original, replacement in reversed(swapped):
            engines[None] = original
            replacement.dispose()
        if had:
            config[_URI_KEY] = saved
        else:
            config.pop(_URI_KEY, None)


def _unconnectable(url: str) -> Engine:
    """An engine on ``url`` (its URL and dialect are what env.py renders SQL for) that
    refuses every connection."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from abmigrate.db.database import sync_url
    from abmigrate.db.url import mask_url

    def refuse() -> Any:
        raise RuntimeError(
            "the Flask application's engine was asked for a connection while abmigrate"
            f" renders SQL offline (it would reach {mask_url(url)}): nothing is run offline"
        )

    return create_engine(sync_url(url), poolclass=NullPool, creator=refuse)


def _default_engines(app: Any) -> list[dict[str | None, Engine]]:
    """Flask-SQLAlchemy 3's engines of ``app`` (bind key -> engine), when it has a default
    one: made once at ``init_app`` from the application's configuration. Flask-SQLAlchemy 2
    (``_SQLAlchemyState``) has none: its engine follows ``SQLALCHEMY_DATABASE_URI``."""
    found: list[dict[str | None, Engine]] = []
    for extension in app.extensions.values():
        per_app = getattr(extension, "_app_engines", None)
        if per_app is None:
            continue
        engines = per_app.get(app)
        usable = isinstance(engines, dict) and engines.get(None) is not None
        if usable and not any(engines is known for known in found):
            found.append(engines)
    return found
