"""ABParts API (only what abmigrate needs from it: the health check).

``GET /health`` reports whether the database is reachable and whether its
Alembic revision is the head of ``alembic/versions``:

* 200 ``{"status": "ok", ...}``: reachable and up to date;
* 503 ``{"status": "behind" | "unknown_revision", ...}``: reachable, but migrations
  are pending or the database is at a revision no script knows;
* 503 ``{"status": "unreachable", ...}``: the database cannot be reached.

The check is read-only: it never creates ``alembic_version`` nor any other table
(nor, for SQLite, the database file).

Run it with ``DATABASE_URL=... uvicorn app.main:app`` from ``examples/abparts``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from .database import DEFAULT_DATABASE_URL, normalize_url

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def head_revisions(alembic_ini: Path = ALEMBIC_INI) -> tuple[str, ...]:
    script = ScriptDirectory.from_config(Config(str(alembic_ini)))
    return tuple(sorted(script.get_heads()))


def _missing_sqlite_file(url: sa.URL) -> bool:
    if url.get_backend_name() != "sqlite":
        return False
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return False
    return not Path(database).exists()


def current_revisions(database_url: str) -> tuple[str, ...]:
    """The database's revision(s); raises if the database cannot be reached."""
    url = make_url(normalize_url(database_url))
    if _missing_sqlite_file(url):
        raise FileNotFoundError(f"SQLite database file {url.database!r} does not exist")
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = 5
    engine = sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection)
            return tuple(sorted(context.get_current_heads()))
    finally:
        engine.dispose()


def _join(revisions: tuple[str, ...]) -> str | None:
    return ",".join(revisions) or None


def health_report(database_url: str) -> tuple[int, dict[str, Any]]:
    heads = head_revisions()
    try:
        current = current_revisions(database_url)
    except Exception:
        return 503, {
            "status": "unreachable",
            "database": "unreachable",
            "current_revision": None,
            "head_revision": _join(heads),
            "up_to_date": False,
        }

    up_to_date = current == heads
    if up_to_date:
        status = "ok"
    else:
        script = ScriptDirectory.from_config(Config(str(ALEMBIC_INI)))
        known = all(_is_known(script, rev) for rev in current)
        status = "behind" if known else "unknown_revision"
    return (200 if up_to_date else 503), {
        "status": status,
        "database": "reachable",
        "current_revision": _join(current),
        "head_revision": _join(heads),
        "up_to_date": up_to_date,
    }


def _is_known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except Exception:
        return False


def create_app(database_url: str | None = None) -> FastAPI:
    """Build the API. Without ``database_url``, ``DATABASE_URL`` is read at request time."""
    app = FastAPI(title="ABParts")

    @app.get("/health")
    def health() -> JSONResponse:
        url = database_url or os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
        code, body = health_report(url)
        return JSONResponse(body, status_code=code)

    return app


app = create_app()
