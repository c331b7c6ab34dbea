"""The baseline: how an empty database is brought to where the history starts.

Many histories do not start from an empty database: the first tables come from
``metadata.create_all()`` or an older tool, and the first revision alters them (Alembic's own
cookbook creates new databases with ``create_all`` + ``stamp``). Replaying such a history on
an empty scratch database fails at its first revision, so the project declares its baseline::

    [tool.abmigrate]
    baseline = "app.legacy_models:Base.metadata"   # MetaData or a declarative Base: create_all
    baseline = "app.setup:make_baseline"           # a callable taking a SQLAlchemy Connection
    baseline = "sql/baseline.sql"                  # a SQL file (relative to the configuration)

or, without a configuration file, ``ABMIGRATE_BASELINE`` with the same syntax (relative to
the working directory); the variable wins over the file. Every scratch database that a replay
builds from empty (diagnose, drift --against, stamp's guard, verification, check's round
trips and model comparison, capture, rehearse --scale-rows) gets the baseline first, and
"base" then means the baseline's schema, not an empty one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from abmigrate.errors import ConfigError

__all__ = ["BASELINE_ENV", "Baseline", "parse_baseline"]

BASELINE_ENV = "ABMIGRATE_BASELINE"
_PYTHON_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_SYNTAX_HINT = (
    "write 'package.module:Base.metadata' (create_all), 'package.module:function' (called with"
    " a connection) or a path ending in .sql"
)


@dataclass(frozen=True)
class Baseline:
    """A declared baseline: ``source`` as written, ``origin`` where it was written."""

    source: str
    origin: str
    # Where a module path is imported from / a relative SQL path is read from.
    folders: tuple[Path, ...]

    @property
    def is_sql(self) -> bool:
        return self.source.lower().endswith(".sql")

    @property
    def sql_path(self) -> Path:
        path = Path(self.source).expanduser()
        return path if path.is_absolute() else self.folders[0] / path

    def describe(self) -> str:
        return f"baseline = {self.source!r} ({self.origin})"

    def identity(self) -> str:
        """What decides the baseline's schema, for cache keys: the SQL file's content, or
        the reference and the content of the module it names (found without importing it)."""
        if self.is_sql:
            return "sql:" + _file_digest(self.sql_path)
        module_name = self.source.partition(":")[0]
        return f"python:{self.source}:" + _file_digest(_module_file(module_name, self.folders))

    def apply(self, url: str) -> None:
        """Bring the (empty) database at ``url`` to the baseline, in one transaction."""
        from abmigrate.db.database import make_engine, scrub

        engine = make_engine(url)
        try:
            if self.is_sql:
                self._run_sql(engine)
            else:
                target = self._resolve()
                with engine.begin() as connection:
                    if isinstance(target, list):
                        for metadata in target:
                            metadata.create_all(connection)
                    else:
                        target(connection)
        except ConfigError:
            raise
        except Exception as exc:
            lines = str(exc).strip().splitlines()
            detail = scrub(f"{type(exc).__name__}: {lines[0] if lines else ''}", url)
            raise ConfigError(
                f"the baseline failed on a fresh scratch database ({self.describe()}): {detail}",
                hint="the baseline must build, on an empty database, what the first revision"
                " expects",
            ) from None
        finally:
            engine.dispose()

    def _resolve(self) -> Any:
        """The callable, or the list of MetaData to create_all."""
        from sqlalchemy import MetaData

        from abmigrate.bridge.models import import_attribute

        found = import_attribute(self.source, self.folders, key="baseline")
        if isinstance(found, MetaData):
            return [found]
        if isinstance(getattr(found, "metadata", None), MetaData):
            return [found.metadata]  # a declarative Base
        if (
            isinstance(found, list | tuple)
            and found
            and all(isinstance(m, MetaData) for m in found)
        ):
            return list(found)
        if callable(found):
            return found
        raise ConfigError(
            f"baseline = {self.source!r} is a {type(found).__name__}, neither SQLAlchemy"
            " MetaData nor a callable",
            hint=_SYNTAX_HINT,
        )

    def _run_sql(self, engine: Any) -> None:
        text = self.sql_path.read_text()
        # How each driver runs a script of several statements (driver behaviour, not a
        # dialect decision: sqlite3's executescript, psycopg's simple query protocol).
        with engine.begin() as connection:
            if connection.dialect.name == "sqlite":
                # sqlite3 runs one statement per execute(); executescript runs them all.
                connection.connection.driver_connection.executescript(text)
            elif connection.dialect.name == "postgresql":
                # Without parameters psycopg sends the text as one simple query: every
                # statement of the file runs, in this transaction.
                connection.exec_driver_sql(text)
            else:
                for statement in _split_statements(text):
                    connection.exec_driver_sql(statement)


def parse_baseline(value: Any, *, origin: str, folders: Sequence[Path]) -> Baseline:
    """Validate a declared baseline (syntax, and that a SQL file exists) without importing."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"{origin}: baseline must be a non-empty string, got {value!r}", hint=_SYNTAX_HINT
        )
    source = value.strip()
    baseline = Baseline(source, origin, tuple(folders))
    if baseline.is_sql:
        if not baseline.sql_path.is_file():
            raise ConfigError(
                f"{origin}: baseline SQL file not found: {baseline.sql_path}",
                hint="a relative path is read from the configuration file's folder"
                f" (${BASELINE_ENV}: from the working directory)",
            )
        return baseline
    if not _PYTHON_REFERENCE.match(source):
        raise ConfigError(f"{origin}: cannot read baseline = {source!r}", hint=_SYNTAX_HINT)
    return baseline


def _module_file(module_name: str, folders: Sequence[Path]) -> Path | None:
    """The module's source file: looked for under ``folders`` first (as it will be
    imported), then on sys.path through importlib (which imports parent packages only)."""
    import importlib.util

    relative = Path(*module_name.split("."))
    for folder in folders:
        for candidate in (folder / relative.with_suffix(".py"), folder / relative / "__init__.py"):
            if candidate.is_file():
                return candidate
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin else None


def _file_digest(path: Path | None) -> str:
    if path is None:
        return "unknown"
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "unreadable"


def _split_statements(text: str) -> list[str]:
    # MySQL drivers run one statement per call. A statement ends with ';' at the end of a
    # line, as dump tools write them; comment-only pieces are dropped.
    statements: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current).strip().rstrip(";"))
            current = []
    statements.append("\n".join(current).strip())
    return [
        s
        for s in statements
        if any(line.strip() and not line.strip().startswith("--") for line in s.splitlines())
    ]
