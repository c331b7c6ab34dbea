"""pytest plugin: migration tests in a project's own suite (loaded automatically once
abmigrate is installed; entry point ``pytest11: abmigrate``).

Fixtures (every database is fresh for the test and dropped after it, also on failure):

- ``abmigrate_db``: a scratch database on the server named by ``--abmigrate-url`` / the
  ``abmigrate_url`` ini option / ``$ABMIGRATE_TEST_URL`` (PostgreSQL or MySQL/MariaDB), or a
  temporary SQLite file when none is given. ``abmigrate_db.url`` is its URL.
- ``migrate``: ``migrate("head")``, ``migrate("<rev>")``, ``migrate("-1")``,
  ``migrate("base")`` move ``abmigrate_db`` to any revision, up or down, one revision per
  run of env.py as ``abmigrate upgrade`` does; it returns the revisions the database then
  records. ``migrate.current``, ``migrate.connect()``, and ``migrate.before("<rev>")`` (go to
  the parent(s) of ``<rev>`` and return a connection to seed rows the revision must handle).
- ``before_revision``: with ``@pytest.mark.before_revision("<rev>")``, a connection to a
  database at the parent(s) of ``<rev>`` (each statement committed at once); seed rows,
  then apply the revision with ``migrate(rev)`` and assert on what it did to them.
- ``abmigrate_context``: the :class:`abmigrate.check.checks.CheckContext` the checks run with.

The named checks of ``abmigrate check`` become tests when a test module opts in::

    from abmigrate.pytest_plugin import abmigrate_check

    test_single_head = abmigrate_check("single_head")
    test_round_trip = abmigrate_check("round_trip")

The project is found from the ``abmigrate_alembic_ini`` ini option (relative to the rootdir),
else abmigrate's configuration, else ``alembic.ini`` in the rootdir.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from abmigrate.bridge.project import AlembicProject
    from abmigrate.check.checks import CheckContext
    from abmigrate.db.scratch import ScratchDatabase

__all__ = ["Migrator", "abmigrate_check"]

URL_ENV = "ABMIGRATE_TEST_URL"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("abmigrate", "abmigrate migration testing")
    group.addoption(
        "--abmigrate-url",
        dest="abmigrate_url",
        default=None,
        help="Server for per-test scratch databases (PostgreSQL/MySQL URL); default:"
        f" ini abmigrate_url, ${URL_ENV}, else temporary SQLite files.",
    )
    parser.addini("abmigrate_url", "Server URL for per-test scratch databases.", default="")
    parser.addini(
        "abmigrate_alembic_ini", "The project's alembic.ini (relative to the rootdir).", default=""
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "before_revision(revision): the before_revision fixture gives a database at the"
        " parent(s) of this revision.",
    )


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def abmigrate_server_url(pytestconfig: pytest.Config) -> str | None:
    """Where scratch databases are created (None: temporary SQLite files)."""
    value = (
        pytestconfig.getoption("abmigrate_url")
        or str(pytestconfig.getini("abmigrate_url") or "")
        or os.environ.get(URL_ENV)
    )
    return value or None


@pytest.fixture(scope="session")
def abmigrate_alembic_ini(pytestconfig: pytest.Config) -> Path:
    """The project's alembic.ini."""
    configured = str(pytestconfig.getini("abmigrate_alembic_ini") or "")
    root = Path(pytestconfig.rootpath)
    if configured:
        return (root / configured).resolve()
    from abmigrate.config.settings import load_settings
    from abmigrate.errors import ConfigError

    try:
        return load_settings(cwd=root).alembic_ini
    except ConfigError:
        return root / "alembic.ini"


@pytest.fixture
def abmigrate_context(
    pytestconfig: pytest.Config, abmigrate_alembic_ini: Path, abmigrate_server_url: str | None
) -> CheckContext:
    """The context the named checks run with (with the project's configuration when there
    is one: its baseline, its lint settings)."""
    from abmigrate.check.checks import CheckContext
    from abmigrate.config.settings import Settings, load_settings
    from abmigrate.errors import ConfigError

    settings: Settings | None
    try:
        settings = load_settings(cwd=Path(pytestconfig.rootpath), alembic_ini=abmigrate_alembic_ini)
    except ConfigError:
        settings = None
    return CheckContext(
        alembic_ini=abmigrate_alembic_ini, server_url=abmigrate_server_url, settings=settings
    )


@pytest.fixture
def abmigrate_db(abmigrate_server_url: str | None) -> Iterator[ScratchDatabase]:
    """A fresh, empty database for this test; dropped afterwards."""
    from abmigrate.db.scratch import scratch_database

    with scratch_database(abmigrate_server_url, label="test") as scratch:
        yield scratch


@pytest.fixture
def migrate(abmigrate_db: ScratchDatabase, abmigrate_alembic_ini: Path) -> Migrator:
    """Move ``abmigrate_db`` to any revision: ``migrate("head")``, ``migrate("-1")``, ..."""
    return Migrator(abmigrate_alembic_ini, abmigrate_db.url)


@pytest.fixture
def before_revision(request: pytest.FixtureRequest, migrate: Migrator) -> Iterator[Connection]:
    """A connection to a database at the parent(s) of the ``before_revision`` mark's revision."""
    marker = request.node.get_closest_marker("before_revision")
    if marker is None or not marker.args:
        raise pytest.UsageError(
            "the before_revision fixture needs @pytest.mark.before_revision('<revision>')"
        )
    with migrate.before(str(marker.args[0]), autocommit=True) as connection:
        yield connection


# --------------------------------------------------------------------------- migrate


class Migrator:
    """Moves one database between revisions of one project, through its own env.py."""

    def __init__(self, alembic_ini: Path, url: str) -> None:
        from abmigrate.bridge.project import AlembicProject

        self.url = url
        self.project: AlembicProject = AlembicProject(alembic_ini, url)

    @property
    def current(self) -> list[str]:
        """The revisions the database records (empty: none)."""
        from abmigrate.db.database import read_version_rows

        return read_version_rows(self.url) or []

    def __call__(self, target: str) -> list[str]:
        """Upgrade or downgrade to ``target`` (head, heads, base, an id or prefix, +N, -N)."""
        from abmigrate.check.roundtrip import run_one_step_at_a_time

        current = self.current
        project = self.project
        if self._is_downgrade(target, current):
            steps = project.downgrade_steps(target, current)
        else:
            steps = project.upgrade_steps(target, current)
        run_one_step_at_a_time(project, self.url, steps)
        return self.current

    def _is_downgrade(self, target: str, current: list[str]) -> bool:
        if target == "base" or target.startswith("-"):
            return True
        if target in ("head", "heads") or target.startswith("+") or not current:
            return False
        revision = self.project.get(target).revision
        applied = self.project.applied_set(current)
        # Already applied and not itself a current head: going there means undoing.
        return revision in applied and revision not in current

    @contextmanager
    def connect(self, *, autocommit: bool = False) -> Iterator[Connection]:
        """A connection to the database: committed when the block ends without error, or
        with ``autocommit`` committing each statement (so a later ``migrate()`` in the same
        test is not blocked by the rows it wrote)."""
        from abmigrate.db.database import make_engine

        engine = make_engine(self.url)
        try:
            if autocommit:
                with engine.connect() as connection:
                    yield connection.execution_options(isolation_level="AUTOCOMMIT")
            else:
                with engine.begin() as connection:
                    yield connection
        finally:
            engine.dispose()

    @contextmanager
    def before(self, revision: str, *, autocommit: bool = False) -> Iterator[Connection]:
        """Go to the parent(s) of ``revision``; yield a connection to seed rows with."""
        script = self.project.get(revision)
        parents = list(script._normalized_down_revisions)
        current = self.current
        if not parents:
            if current:
                self("base")
        else:
            for parent in parents:
                if parent not in self.project.applied_set(self.current):
                    self(parent)
            applied = self.project.applied_set(self.current)
            if script.revision in applied:
                # Undo the revision and what depends on it, keeping its parents.
                self(parents[0])
        with self.connect(autocommit=autocommit) as connection:
            yield connection


# --------------------------------------------------------------------------- checks


def abmigrate_check(name: str) -> Callable[..., None]:
    """A test function running the named check of ``abmigrate check``.

    Assign it to a ``test_*`` name in a test module to opt in; an unknown name is an error
    listing the valid ones.
    """
    from abmigrate.check.checks import select_checks
    from abmigrate.errors import ConfigError

    try:
        select_checks([name])
    except ConfigError as exc:
        raise ValueError(f"{exc.message} ({exc.hint})") from None

    def test(abmigrate_context: CheckContext) -> None:
        from abmigrate.check.checks import run_checks

        report = run_checks(abmigrate_context, [name])
        [outcome] = report.outcomes
        if outcome.status == "skipped":
            pytest.skip(outcome.summary)
        if outcome.status == "failed":
            pytest.fail(_describe(outcome.failures), pytrace=False)

    test.__name__ = f"test_{name}"
    test.__doc__ = _rationale(name)
    return test


def _rationale(name: str) -> str:
    from abmigrate.check.checks import CHECKS

    return CHECKS[name].rationale


def _describe(failures: list[Any]) -> str:
    lines: list[str] = []
    for failure in failures:
        lines.append(f"{failure.check}: {failure.message}")
        if failure.path:
            lines.append(f"  file: {failure.path}")
        if failure.detail:
            lines.append(f"  error: {failure.detail}")
        lines.extend(f"  - {difference}" for difference in failure.differences)
        if failure.sql:
            lines.append("  SQL:")
            lines.extend(f"    {line}" for line in failure.sql.splitlines())
        if failure.hint:
            lines.append(f"  hint: {failure.hint}")
    return "\n".join(lines)
