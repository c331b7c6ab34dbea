"""``--dry-run``: apply the plan for real, verify the result, and roll it all back.

Everything before the apply runs as in a real run (lock, checks, plan, lint, preflight, the
policy gate); then the revisions are executed against the real schema and data, so a
migration that would fail (a NOT NULL over existing NULLs, a duplicate under a new UNIQUE,
a typo in raw SQL) fails here, and nothing is kept:

- **PostgreSQL and SQLite** (transactional DDL): one connection, one transaction on the
  target database. Each revision runs in a savepoint (a lock-timeout retry rolls back to it)
  and an ``autocommit_block()`` becomes a savepoint too. After the last revision the
  database is verified from inside the transaction (revisions recorded, models match), then
  the transaction is rolled back. Statements PostgreSQL refuses inside a transaction block
  (``CREATE INDEX CONCURRENTLY`` and the like) are not executed: they are reported as
  skipped. Locks taken by earlier revisions are held until the rollback, and each statement
  honours the policy's ``lock_timeout`` and ``statement_timeout``.
- **MySQL/MariaDB** (every DDL statement commits): the plan is applied to a scratch copy of
  the database (dump and load), verified there, and the copy is dropped. A SQLite file that
  does not exist yet gets the same treatment with an empty copy, so a dry run never
  creates it.

The health check is not run: the application cannot see changes that are never committed.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from abmigrate.apply.runner import apply_plan
from abmigrate.apply.verify import verify
from abmigrate.db.database import (
    DEFAULT_VERSION_TABLE,
    VersionTable,
    make_engine,
    sqlite_path,
    version_rows_on,
)
from abmigrate.db.dialects import DRY_RUN_ROLLED_BACK, DRY_RUN_SCRATCH_COPY, dialect_for
from abmigrate.errors import MigrationFailed
from abmigrate.events import DryRunSkipped, Event, Observer

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from abmigrate.bridge.types import RevisionStep
    from abmigrate.config.workspace import Workspace
    from abmigrate.results import Plan, RunResult

__all__ = ["ROLLED_BACK", "SCRATCH_COPY", "SharedConnection", "dry_run"]

ROLLED_BACK = DRY_RUN_ROLLED_BACK
SCRATCH_COPY = DRY_RUN_SCRATCH_COPY

# PostgreSQL refuses these inside a transaction block ("cannot run inside a transaction
# block"); the dry run's transaction cannot hold them, so they are skipped and reported.
_OUTSIDE_TRANSACTION_ONLY = re.compile(
    r"^\s*(?:"
    r"(?:CREATE|DROP)\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\b"
    r"|REINDEX\b.*\bCONCURRENTLY\b"
    r"|ALTER\s+TABLE\b.*\bDETACH\s+PARTITION\b.*\bCONCURRENTLY\b"
    r"|VACUUM\b"
    r"|(?:CREATE|DROP)\s+(?:DATABASE|TABLESPACE)\b"
    r"|ALTER\s+SYSTEM\b"
    r")",
    re.IGNORECASE | re.DOTALL,
)
_STAND_IN = "SELECT 1"
_CONCURRENT_INDEX = re.compile(
    r"INDEX\s+CONCURRENTLY\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?\"?([\w$]+(?:\.[\w$]+)?)\"?",
    re.IGNORECASE,
)


class SharedConnection:
    """The dry run's connection: every revision runs on it, inside its one transaction."""

    def __init__(self, connection: Connection, observer: Observer | None) -> None:
        self.connection = connection
        self.observer = observer
        self.revision: str | None = None
        self.skipped: list[dict[str, str]] = []

        self._savepoint: Any = None

    def backend_pid(self) -> int:
        return int(self.connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())

    def version_rows(self, table: VersionTable = DEFAULT_VERSION_TABLE) -> list[str] | None:
        return version_rows_on(self.connection, table)

    def begin_step(self, revision: str) -> None:
        """Each revision runs in a savepoint: a lock-timeout retry rolls back to it."""
        self.revision = revision
        self._savepoint = self.connection.begin_nested()

    def end_step(self) -> None:
        if self._savepoint is not None and self._savepoint.is_active:
            self._savepoint.commit()
        self._savepoint = None

    def abandon_step(self) -> None:
        if self._savepoint is not None and self._savepoint.is_active:
            self._savepoint.rollback()
        self._savepoint = None

    @contextlib.contextmanager
    def autocommit_block(self) -> Iterator[None]:
        # Alembic would commit the migration's transaction here; inside the dry run a
        # savepoint stands in, so everything stays undoable.
        with self.connection.begin_nested():
            yield

    def skip_outside_transaction_only(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> tuple[str, Any]:
        """A ``before_cursor_execute`` hook: swap statements that cannot run in a
        transaction for a no-op, and remember them."""
        if not _OUTSIDE_TRANSACTION_ONLY.match(statement):
            return statement, parameters
        shown = " ".join(statement.split())[:200]
        skipped = {"revision": self.revision or "", "sql": shown}
        index = _CONCURRENT_INDEX.search(statement)
        if index:
            skipped["object"] = index.group(1).rsplit(".", 1)[-1]
        self.skipped.append(skipped)
        if self.observer:
            self.observer(
                DryRunSkipped(revision=skipped["revision"], sql=shown, object=skipped.get("object"))
            )
        return _STAND_IN, parameters


def dry_run(
    workspace: Workspace,
    plan: Plan,
    steps: Sequence[RevisionStep],
    *,
    observer: Observer | None = None,
    drift_before: Sequence[str] | None = None,
    drift_overridden: Sequence[str] = (),
) -> RunResult:
    """Apply ``plan`` and undo it (see the module docstring); a failure raises
    MigrationFailed saying that nothing was changed. ``drift_before`` and
    ``drift_overridden`` reach the verification as in a real run."""
    known_drift: dict[str, Any] = {
        "drift_before": drift_before,
        "drift_overridden": drift_overridden,
    }
    method = dialect_for(workspace.environment.dialect).dry_run_method
    sqlite_file = sqlite_path(workspace.url)
    started = time.monotonic()
    # A SQLite file that does not exist yet gets a scratch database too (connecting to it
    # would create the file).
    if method == SCRATCH_COPY or (sqlite_file is not None and not sqlite_file.exists()):
        result = _on_scratch_copy(workspace, plan, steps, observer, known_drift)
    else:
        result = _in_rolled_back_transaction(workspace, plan, steps, observer, known_drift)
    result.elapsed_s = round(time.monotonic() - started, 4)
    return result


def _in_rolled_back_transaction(
    workspace: Workspace,
    plan: Plan,
    steps: Sequence[RevisionStep],
    observer: Observer | None,
    known_drift: dict[str, Any],
) -> RunResult:
    from sqlalchemy import event

    engine = _transactional_engine(workspace)
    shared: SharedConnection | None = None
    try:
        with _timeouts(workspace), engine.connect() as connection:
            shared = SharedConnection(connection, observer)
            if dialect_for(workspace.environment.dialect).has_transaction_only_statements:
                event.listen(
                    engine,
                    "before_cursor_execute",
                    shared.skip_outside_transaction_only,
                    retval=True,
                )
            transaction = connection.begin()
            try:
                result = apply_plan(workspace, plan, steps, observer=observer, shared=shared)
                result.verification = verify(
                    workspace,
                    plan,
                    observer or _ignore,
                    connection=connection,
                    dry_run=True,
                    not_applied=[s["object"] for s in shared.skipped if "object" in s],
                    **known_drift,
                )
            finally:
                transaction.rollback()
    except MigrationFailed as exc:
        raise _dry_run_failure(exc, ROLLED_BACK, plan, shared.skipped if shared else []) from exc
    finally:
        engine.dispose()
    result.dry_run = True
    result.dry_run_method = ROLLED_BACK
    result.skipped = shared.skipped
    return result


def _on_scratch_copy(
    workspace: Workspace,
    plan: Plan,
    steps: Sequence[RevisionStep],
    observer: Observer | None,
    known_drift: dict[str, Any],
) -> RunResult:
    from abmigrate.backup.operations import copy_database
    from abmigrate.state.replay import isolated_scratch

    sqlite_file = sqlite_path(workspace.url)
    with isolated_scratch(workspace.url, "dryrun") as scratch:
        if sqlite_file is None or sqlite_file.exists():
            copy_database(workspace.url, scratch.url)
        environment = replace(workspace.environment, url=scratch.url)
        copy = replace(
            workspace,
            environment=environment,
            project=workspace.project.for_url(scratch.url),
        )
        try:
            result = apply_plan(copy, plan, steps, observer=observer)
        except MigrationFailed as exc:
            raise _dry_run_failure(exc, SCRATCH_COPY, plan, []) from exc
        result.verification = verify(
            copy,
            plan,
            observer or _ignore,
            dry_run=True,
            **known_drift,
        )
    result.dry_run = True
    result.dry_run_method = SCRATCH_COPY
    return result


def _ignore(event: Event) -> None:
    return None


def _transactional_engine(workspace: Workspace) -> Engine:
    return dialect_for(workspace.environment.dialect).transactional_engine(
        make_engine(workspace.url)
    )


@contextlib.contextmanager
def _timeouts(workspace: Workspace) -> Iterator[None]:
    """The policy's lock and statement timeouts on the dry run's own connection."""
    policy = workspace.environment.policy
    dialect = dialect_for(workspace.environment.dialect)
    with dialect.migration_session(policy.lock_timeout_ms, policy.statement_timeout_ms):
        yield


def _dry_run_failure(
    exc: MigrationFailed, method: str, plan: Plan, skipped: list[dict[str, str]]
) -> MigrationFailed:
    # Where the database stands is where the plan found it (the migration lock is held);
    # exc.current may describe the scratch copy.
    where = ", ".join(plan.current) or "no revision"
    hint = (
        f"nothing was changed (the dry run was {method}): the database still records {where}."
        " Fix the migration, then dry-run again"
    )
    if skipped:
        hint += (
            "; statements this dry run skipped because they cannot run in a transaction: "
            + "; ".join(f"{s['revision']}: {s['sql']}" for s in skipped[:3])
        )
    return MigrationFailed(
        f"dry run: {exc.message}", hint=hint, revision=exc.revision, current=plan.current
    )
