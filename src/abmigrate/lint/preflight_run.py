"""Data preflight, run: the checks :func:`abmigrate.lint.preflight.checks_for` names,
counted on the live database in a read-only transaction (PostgreSQL) under a statement
timeout; a check that cannot run is reported as such, never guessed.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from abmigrate.db.database import connect, sqlite_path
from abmigrate.db.dialects import dialect_for
from abmigrate.errors import AbmigrateError
from abmigrate.lint.engine import preflight_checks
from abmigrate.lint.preflight import PreflightCheck
from abmigrate.results import PreflightResult

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from abmigrate.config.workspace import Workspace
    from abmigrate.lint.engine import LintResult
    from abmigrate.results import Plan

__all__ = ["LiveTables", "live_tables", "run_preflight"]

SAMPLE_SIZE = 5
STATEMENT_TIMEOUT_MS = 10_000


def run_preflight(workspace: Workspace, plan: Plan, result: LintResult | None) -> None:
    """Fill ``step.preflight`` for every step; does nothing when the database is unreachable."""
    from abmigrate.analysis_cache import AnalysisCache

    if not plan.steps:
        return
    path = sqlite_path(workspace.url)
    if path is not None and not path.exists():
        return  # connecting would create the file: a read-only command writes nothing
    revisions = [step.revision for step in plan.steps]
    checks_of: dict[str, list[dict[str, Any]]]
    if plan.direction == "upgrade" and result is not None:
        checks_of = {rev: result.facts[rev].checks for rev in revisions if rev in result.facts}
    else:
        cache = AnalysisCache.for_workspace(workspace)
        checks_of = preflight_checks(workspace.project, revisions, plan.direction, cache)
    if not any(checks_of.get(revision) for revision in revisions):
        return  # nothing to count: no connection (nor SQLAlchemy) for a plan of safe steps
    try:
        with connect(workspace.url) as connection:
            _read_only(connection)
            runner = _Runner(connection)
            for step in plan.steps:
                checks = [PreflightCheck(**check) for check in checks_of.get(step.revision, [])]
                records = [runner.run(check, step.revision) for check in checks]
                step.preflight = [record for record in records if record is not None]
            connection.rollback()
    except AbmigrateError:
        return


@contextlib.contextmanager
def live_tables(workspace: Workspace) -> Iterator[LiveTables]:
    """A read-only look at the live tables (existence, size), rolled back afterwards.

    A SQLite file that does not exist yet is an empty database (it is not created); a database
    that does not answer gives a :class:`LiveTables` that knows nothing (``problem`` says why).
    """
    path = sqlite_path(workspace.url)
    if path is not None and not path.exists():
        yield LiveTables(None)
        return
    with contextlib.ExitStack() as stack:

        def open_connection() -> Connection:
            connection = stack.enter_context(connect(workspace.url))
            _read_only(connection)
            stack.callback(connection.rollback)
            return connection

        # Connected on the first question: a plan whose tables are all created in the plan
        # asks none, and costs no connection.
        yield LiveTables(None, connect=open_connection)


class LiveTables:
    """Which tables exist and how many rows they hold, asked read-only and cached.

    ``rows`` gives the server's estimate where it keeps one (PostgreSQL: the planner's
    ``reltuples`` scaled to the table's current pages, as the planner does; MySQL/MariaDB:
    ``information_schema.TABLES.TABLE_ROWS``) when it reaches ``limit``; otherwise, and always
    on SQLite, a count that stops at ``limit`` rows: a small table is only ever called small
    after its rows were counted.
    """

    def __init__(
        self,
        connection: Connection | None,
        *,
        problem: str | None = None,
        connect: Callable[[], Connection] | None = None,
    ) -> None:
        self.connection = connection
        self.problem = problem  # set when the database could not be asked
        self._connect = connect  # opens the connection on the first question
        self._exists: dict[str, bool] = {}
        self._estimates: dict[str, float | None] = {}
        self._counts: dict[tuple[str, int], int] = {}

    def _ask(self) -> bool:
        """Whether there is a database to ask (connecting now if not yet done)."""
        if self._connect is not None:
            connect, self._connect = self._connect, None
            try:
                self.connection = connect()
            except AbmigrateError as exc:
                self.problem = f"the database did not answer ({exc})"
        return self.connection is not None

    @property
    def estimate_name(self) -> str:
        self._ask()
        return dialect_for(self.connection).row_estimate_name

    @property
    def known(self) -> bool:
        """False when nothing can be said about the live tables."""
        self._ask()
        return self.problem is None

    def exists(self, table: str) -> bool:
        if not self._ask():
            return False
        if table not in self._exists:
            self._exists[table] = self._look_up(table)
        return self._exists[table]

    def rows(self, table: str, limit: int) -> tuple[int, str]:
        """``(rows, source)``: source ``"estimate"`` (rows >= limit), ``"count"`` (exact below
        ``limit``) or ``"count_limit"`` (the count stopped at ``limit``: at least that many)."""
        self.exists(table)  # fills the estimate
        estimate = self._estimates.get(table)
        if estimate is not None and estimate >= limit:
            return round(estimate), "estimate"
        key = (table, limit)
        if key not in self._counts:
            quoted = self._quote(table)
            self._counts[key] = self._scalar(
                f"SELECT count(*) FROM (SELECT 1 FROM {quoted} LIMIT {int(limit)}) AS bounded"
            )
        count = self._counts[key]
        return count, "count_limit" if count >= limit else "count"

    def _quote(self, table: str) -> str:
        assert self.connection is not None
        return str(self.connection.dialect.identifier_preparer.quote(table))

    def _look_up(self, table: str) -> bool:
        from sqlalchemy import inspect

        assert self.connection is not None
        dialect = dialect_for(self.connection)
        query = dialect.table_estimate_query(table)
        if query is not None:
            row = self._row(query)
            if row is None:
                return False
            estimate = dialect.row_estimate(row)
            if estimate is not None:
                self._estimates[table] = estimate
            return True
        with self._savepoint():
            return bool(inspect(self.connection).has_table(table))

    def _row(self, statement: Any) -> Any:
        assert self.connection is not None
        with self._savepoint():
            return self.connection.execute(statement).first()

    def _scalar(self, sql: str) -> int:
        from sqlalchemy import text

        assert self.connection is not None
        with self._savepoint():
            return int(self.connection.execute(text(sql)).scalar() or 0)

    def _savepoint(self) -> Any:
        assert self.connection is not None
        if self.connection.in_transaction():
            return self.connection.begin_nested()
        return _null()


def _read_only(connection: Connection) -> None:

    dialect_for(connection).read_only(connection, STATEMENT_TIMEOUT_MS)


class _Runner:
    def __init__(self, connection: Connection) -> None:
        from sqlalchemy import inspect

        self.connection = connection
        self.inspector = inspect(connection)
        self.quote = connection.dialect.identifier_preparer.quote
        self._columns: dict[str, set[str] | None] = {}

    def columns(self, table: str) -> set[str] | None:
        if table not in self._columns:
            if not self.inspector.has_table(table):
                self._columns[table] = None
            else:
                self._columns[table] = {c["name"] for c in self.inspector.get_columns(table)}
        return self._columns[table]

    def run(self, check: PreflightCheck, revision: str) -> PreflightResult | None:
        existing = self.columns(check.table)
        if existing is None or (check.columns_exist and not set(check.columns) <= existing):
            return None  # created earlier in this plan: there are no live rows to check
        if "ref" in check.extra_tables and self.columns(check.extra_tables["ref"]) is None:
            return None
        dialect = dialect_for(self.connection)
        names = {
            "table": self.quote(check.table),
            "text": dialect.text_type,
            "length": dialect.char_length_function,
        }
        names.update({f"col{i}": self.quote(c) for i, c in enumerate(check.columns)})
        names.update({k: self.quote(v) for k, v in check.extra_tables.items()})
        where = check.where.format(**names)
        table = names["table"]
        keys = self.sample_keys(check)
        sample_sql: str | None
        if check.group_by:
            cols = ", ".join(names[f"col{i}"] for i in range(len(check.columns)))
            grouped = f"SELECT {cols}, count(*) AS n FROM {table} WHERE {where} GROUP BY {cols} HAVING count(*) > 1"
            count_sql = f"SELECT coalesce(sum(n), 0) FROM ({grouped}) AS d"
            sample_sql = f"{grouped} LIMIT {SAMPLE_SIZE}"
        else:
            count_sql = f"SELECT count(*) FROM {table} WHERE {where}"
            sample_sql = (
                f"SELECT {', '.join(self.quote(k) for k in keys)} FROM {table} WHERE {where}"
                f" LIMIT {SAMPLE_SIZE}"
                if keys
                else None
            )
        result = functools.partial(
            PreflightResult,
            revision=revision,
            check=check.check,
            table=check.table,
            column=check.columns[0] if check.columns else None,
            columns=check.columns,
            fails=check.fails,
        )
        try:
            count, sample = self.query(count_sql, sample_sql)
        except Exception as exc:  # a check that cannot run says so; it never guesses
            first = str(getattr(exc, "orig", exc)).strip().splitlines()
            return result(
                count=None,
                offending_rows=None,
                sample=[],
                ok=None,
                message=f"could not check: {first[0] if first else type(exc).__name__}",
            )
        what = "row(s)" if check.check != "drop_column_values" else "non-null value(s)"
        example = f" (e.g. {', '.join(map(str, sample))})" if count and sample else ""
        if check.fails:
            message = (
                f"{check.describe} fails on {count} {what}{example}"
                if count
                else f"{check.describe}: no conflicting rows"
            )
        else:
            message = (
                f"{check.describe} deletes {count} {what}"
                if count
                else f"{check.describe}: nothing to lose"
            )
        return result(
            count=count,
            offending_rows=count,
            sample=sample,
            ok=not (check.fails and count > 0),
            message=message,
        )

    def sample_keys(self, check: PreflightCheck) -> list[str]:
        try:
            keys = self.inspector.get_pk_constraint(check.table).get("constrained_columns") or []
        except Exception:
            keys = []
        return list(keys) or list(check.columns)

    def query(self, count_sql: str, sample_sql: str | None) -> tuple[int, list[Any]]:
        from sqlalchemy import text

        with self.connection.begin_nested() if self.connection.in_transaction() else _null():
            count = int(self.connection.execute(text(count_sql)).scalar() or 0)
            sample: list[Any] = []
            if count and sample_sql:
                rows = self.connection.execute(text(sample_sql)).fetchall()
                sample = [_key(row) for row in rows]
            return count, sample


def _key(row: Any) -> Any:
    values = [str(value) if not isinstance(value, int | float | str) else value for value in row]
    return values[0] if len(values) == 1 else values


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *args: object) -> None:
        return None
