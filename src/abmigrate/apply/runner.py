"""Executes a Plan, one revision per run of ``env.py`` (one transaction each where the
dialect has transactional DDL), with PostgreSQL lock/statement timeouts, retries with
backoff on lock timeout, and progress between and during revisions.

How the timeouts reach ``env.py``: abmigrate does not own the connection a project's
``env.py`` opens, so for the duration of the apply it sets libpq's ``PGOPTIONS``
(``-c lock_timeout=… -c statement_timeout=… -c application_name=abmigrate-migration``) in
its own process. Every libpq connection opened meanwhile — whether ``env.py`` builds its own
engine from ``sqlalchemy.url``, from ``DATABASE_URL`` or uses one handed over — starts with
those settings, and no migration statement can escape them. The application name lets the
progress monitor find the migration's session in ``pg_stat_activity``. These settings (and
MySQL/MariaDB's, and whether the run is monitored) are the dialect object's
(:mod:`abmigrate.db.dialects`).
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from abmigrate.apply.journal_view import script_sha256
from abmigrate.db.database import connect, read_version_rows, scrub
from abmigrate.db.dialects import MIGRATION_APPLICATION_NAME, dialect_for
from abmigrate.errors import AbmigrateError, MigrationFailed
from abmigrate.events import (
    IndexProgress,
    LockRetry,
    Observer,
    StatementRun,
    StepBlocked,
    StepFinished,
    StepStarted,
    WaitingForBlockers,
)
from abmigrate.results import AppliedStep, Plan, RunResult, Step

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from abmigrate.apply.dry_run import SharedConnection
    from abmigrate.bridge.types import RevisionStep
    from abmigrate.config.settings import Policy
    from abmigrate.config.workspace import Workspace

__all__ = [
    "MIGRATION_APPLICATION_NAME",
    "StepCallback",
    "apply_plan",
    "is_lock_timeout",
    "script_sha256",
]

# The journal's hook, not progress: called with ("start", step, None) before a revision and
# ("done", step, connection) inside its transaction, after its version row was written.
StepCallback = Callable[[str, Step, "Connection | None"], None]

LOCK_NOT_AVAILABLE = "55P03"
QUERY_CANCELED = "57014"
_BACKOFF_BASE_S = 0.25
_BACKOFF_CAP_S = 30.0
_POLL_S = 0.1


def _sqlstate(exc: BaseException) -> str | None:
    seen: BaseException | None = exc
    while seen is not None:
        orig = getattr(seen, "orig", None)
        for candidate in (orig, seen):
            code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
            if code:
                return str(code)
        seen = seen.__cause__ or seen.__context__
    return None


def is_lock_timeout(exc: BaseException) -> bool:
    return _sqlstate(exc) == LOCK_NOT_AVAILABLE


def _failed_statement(exc: BaseException) -> str | None:
    seen: BaseException | None = exc
    while seen is not None:
        statement = getattr(seen, "statement", None)
        if isinstance(statement, str):
            return statement
        seen = seen.__cause__ or seen.__context__
    return None


@contextlib.contextmanager
def _ops_progress(observer: Observer | None) -> Iterator[None]:
    """Let abmigrate.ops report progress (backfill batches, index cleanup) while applying."""
    from abmigrate import ops

    previous = ops.progress_hook
    ops.progress_hook = observer
    try:
        yield
    finally:
        ops.progress_hook = previous


@contextlib.contextmanager
def _statement_events(observer: Observer | None, current: dict[str, Any]) -> Iterator[None]:
    """Report each statement the migrations run (on whichever engine env.py configured)."""
    if observer is None:
        yield
        return

    def seen(statement: str) -> None:
        if not current.get("revision"):
            return
        first = " ".join(statement.split())[:160]
        # Alembic's bookkeeping, dialect introspection and the dry run's savepoints are noise
        # in a progress view.
        noise = ("PRAGMA", "SHOW", "SELECT", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO")
        bookkeeping = ("alembic_version", "abmigrate_journal")
        if any(name in first for name in bookkeeping) or first.upper().startswith(noise):
            return
        observer(StatementRun(revision=current["revision"], sql=first))

    _listen_to_statements()
    me = threading.get_ident()
    with _statement_lock:
        _statement_watchers[me] = seen
    try:
        yield
    finally:
        with _statement_lock:
            _statement_watchers.pop(me, None)


# Statements are seen through one listener on the Engine class, added once for the process:
# adding and removing it per run would change SQLAlchemy's class-level listener list while
# other threads (a fleet's runs) iterate it. A statement goes to the run of its own thread;
# from a thread of no run (an env.py running its migrations in a worker thread), to every run.
_statement_lock = threading.Lock()
_statement_watchers: dict[int, Callable[[str], None]] = {}
_statement_listening: list[bool] = []


def _listen_to_statements() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    with _statement_lock:
        if _statement_listening:
            return
        event.listen(Engine, "before_cursor_execute", _on_statement)
        _statement_listening.append(True)


def _on_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    own = _statement_watchers.get(threading.get_ident())
    watchers = [own] if own is not None else list(_statement_watchers.values())
    for watcher in watchers:
        watcher(statement)


class _PgMonitor:
    """A background look at the migration's session: blockers and index/cluster progress."""

    def __init__(self, url: str, observer: Observer | None, interval_s: float = 1.0) -> None:
        self.url = url
        self.observer = observer
        self.interval_s = interval_s
        self.revision: str | None = None
        self.blockers: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="abmigrate-monitor", daemon=True)

    def __enter__(self) -> _PgMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        from abmigrate.db.database import make_engine

        engine = make_engine(self.url)
        try:
            with engine.connect() as raw:
                connection = raw.execution_options(isolation_level="AUTOCOMMIT")
                while not self._stop.wait(self.interval_s):
                    with contextlib.suppress(Exception):
                        self._poll(connection)
        except Exception:
            return  # progress is a courtesy: never let it break a migration
        finally:
            engine.dispose()

    def _poll(self, connection: Connection) -> None:
        from sqlalchemy import text

        rows = connection.execute(
            text(
                "SELECT a.pid, a.wait_event_type,"
                " extract(epoch FROM now() - a.query_start)::float AS running_s,"
                " coalesce(i.command, c.command) AS command,"
                " coalesce(i.phase, c.phase) AS phase,"
                " coalesce(i.blocks_done, c.heap_blks_scanned) AS blocks_done,"
                " coalesce(i.blocks_total, c.heap_blks_total) AS blocks_total,"
                # CLUSTER / VACUUM FULL count tuples written out of those scanned.
                " coalesce(i.tuples_done, c.heap_tuples_written) AS tuples_done,"
                " coalesce(i.tuples_total, c.heap_tuples_scanned) AS tuples_total,"
                " i.lockers_done, i.lockers_total"
                " FROM pg_stat_activity a"
                " LEFT JOIN pg_stat_progress_create_index i ON i.pid = a.pid"
                " LEFT JOIN pg_stat_progress_cluster c ON c.pid = a.pid"
                " WHERE a.application_name = :name AND a.state = 'active'"
                " AND a.datname = current_database() AND a.pid <> pg_backend_pid()"
            ),
            {"name": MIGRATION_APPLICATION_NAME},
        ).mappings()
        for row in rows.all():
            lock_wait = row["wait_event_type"] == "Lock"
            blockers = self._blockers(connection, row["pid"]) if lock_wait else []
            if blockers:
                self.blockers = blockers
            if not self.observer:
                continue
            running_s = round(float(row["running_s"] or 0), 1)
            if row["phase"]:
                # CREATE INDEX CONCURRENTLY waits on other sessions as phases of its own
                # ("waiting for old snapshots"): that is progress, with whom it waits for.
                waiting = str(row["phase"]).startswith("waiting")
                self.observer(
                    IndexProgress(
                        revision=self.revision,
                        command=row["command"],
                        phase=row["phase"],
                        running_s=running_s,
                        blocks_done=row["blocks_done"],
                        blocks_total=row["blocks_total"],
                        tuples_done=row["tuples_done"],
                        tuples_total=row["tuples_total"],
                        lockers_done=row["lockers_done"] if waiting else None,
                        lockers_total=row["lockers_total"] if waiting else None,
                        blockers=blockers,
                    )
                )
            elif blockers:
                self.observer(
                    StepBlocked(revision=self.revision, waiting_s=running_s, blockers=blockers)
                )

    @staticmethod
    def _blockers(connection: Connection, pid: int) -> list[dict[str, Any]]:
        from sqlalchemy import text

        return [
            dict(blocker)
            for blocker in connection.execute(
                text(
                    "SELECT pid, usename AS user, state,"
                    " left(regexp_replace(query, '\\s+', ' ', 'g'), 200) AS query,"
                    " round(extract(epoch FROM now() - coalesce(xact_start,"
                    " query_start))::numeric, 2)::float AS transaction_s"
                    " FROM pg_stat_activity WHERE pid = ANY(pg_blocking_pids(:pid))"
                ),
                {"pid": pid},
            ).mappings()
        ]


class _Gatekeeper:
    """Before each attempt of a revision, wait (without taking any lock, so writers are not
    stalled) until no long-running transaction holds a lock conflicting with its statements."""

    def __init__(self, url: str, policy: Policy, observer: Observer | None) -> None:
        self.url = url
        self.policy = policy
        self.observer = observer
        self._engine: Any = None
        self._connection: Any = None
        self.own_pids: set[int] = set()
        # A transaction younger than this is a normal short writer: queueing behind it costs
        # milliseconds. Older ones are what an ALTER would wait behind for lock_timeout.
        self.min_age_ms = min(max((policy.lock_timeout_ms or 400) // 2, 20), 500)

    def holders(self, needs: dict[str, str]) -> list[dict[str, Any]]:
        from abmigrate.db.pg_locks import conflicting_holders

        if not needs:
            return []
        try:
            if self._connection is None:
                from abmigrate.db.database import make_engine

                self._engine = make_engine(self.url)
                raw = self._engine.connect()
                self._connection = raw.execution_options(isolation_level="AUTOCOMMIT")
            holders = conflicting_holders(self._connection, needs, min_age_ms=self.min_age_ms)
            return [holder for holder in holders if holder["pid"] not in self.own_pids]
        except Exception:
            return []

    def wait_clear(self, revision: str, needs: dict[str, str], budget_s: float) -> float:
        """Wait up to ``budget_s`` for the blockers to go; returns the seconds waited."""
        started = time.monotonic()
        announced = False
        while time.monotonic() - started < budget_s:
            holders = self.holders(needs)
            if not holders:
                break
            if not announced and self.observer:
                self.observer(
                    WaitingForBlockers(
                        revision=revision, blockers=holders, budget_s=round(budget_s, 1)
                    )
                )
                announced = True
            time.sleep(_POLL_S)
        return time.monotonic() - started

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
        if self._engine is not None:
            self._engine.dispose()


def _spare_the_collector() -> None:
    """Move everything alive now (modules, the revision scripts, the plan) out of the cyclic
    garbage collector's sight: a long plan allocates enough to trigger many full collections,
    each walking every object the imports created (a tenth of the process's CPU on a
    300-revision plan). Those objects live until the process ends anyway.

    Once per process: a fleet runs hundreds of plans in one process, and freezing before each
    would keep every earlier target's garbage (its revision modules, cycles all) for good."""
    global _collector_spared
    import gc

    with _collector_lock:
        if _collector_spared:
            return
        _collector_spared = True
    gc.freeze()


_collector_lock = threading.Lock()
_collector_spared = False


def apply_plan(
    workspace: Workspace,
    plan: Plan,
    steps: Sequence[RevisionStep],
    *,
    observer: Observer | None = None,
    applied: list[AppliedStep] | None = None,
    on_step: StepCallback | None = None,
    shared: SharedConnection | None = None,
) -> RunResult:
    """Apply ``steps`` in order; on failure raise MigrationFailed saying where the DB stands.

    One run of ``env.py`` executes the whole plan, as ``alembic upgrade`` does: Alembic asks
    a generator for each next step after committing the one before (one transaction per
    revision), and the generator reports progress, journals and waits out blockers between
    them. A lock timeout rolls back only the revision in flight; the run then starts
    ``env.py`` again from that revision, after a backoff.

    ``applied`` (if given) is filled as revisions complete, so a caller still knows what was
    done when this raises; ``on_step("start"|"done", step, connection)`` lets it journal
    each revision ("done" comes with the migration's connection, inside the step's
    transaction: a journal write there commits with the step).
    ``shared`` runs every revision on one caller-owned connection, each inside a savepoint,
    and commits nothing (the dry run).
    """
    policy = workspace.environment.policy
    dialect = dialect_for(workspace.environment.dialect)
    started = time.monotonic()
    _spare_the_collector()
    walk = _Walk(
        workspace,
        plan,
        list(zip(plan.steps, steps, strict=True)),
        done=applied if applied is not None else [],
        observer=observer,
        on_step=on_step,
        shared=shared,
    )
    with contextlib.ExitStack() as stack:
        stack.enter_context(_ops_progress(observer))
        # The timeouts for every connection opened inside (PGOPTIONS; MySQL/MariaDB's connect
        # listener, and no retries there: DDL commits statement by statement).
        stack.enter_context(
            dialect.migration_session(policy.lock_timeout_ms, policy.statement_timeout_ms)
        )
        if dialect.monitors_locks:
            walk.monitor = stack.enter_context(_PgMonitor(workspace.url, observer))
            walk.gatekeeper = _Gatekeeper(workspace.url, policy, observer)
            if shared is not None:
                # The shared connection keeps the locks of the revisions it already ran:
                # waiting for it to let go would wait for ever.
                walk.gatekeeper.own_pids.add(shared.backend_pid())
            stack.callback(walk.gatekeeper.close)
        # Opened inside the session settings: libpq applies the timeouts when it connects.
        connection = (
            shared.connection if shared is not None else stack.enter_context(connect(workspace.url))
        )
        stack.enter_context(_statement_events(observer, walk.in_flight))
        while walk.pending:
            try:
                workspace.project.run_online(
                    walk.steps,
                    connection=connection,
                    autocommit_block=shared.autocommit_block if shared is not None else None,
                    on_version_apply=walk.applied_heads,
                    swap=shared is not None,
                    prepare=dialect.session_prepare(
                        policy.lock_timeout_ms, policy.statement_timeout_ms
                    ),
                )
            except AbmigrateError:
                raise
            except Exception as exc:
                walk.after_failure(exc)
    version_table = workspace.project.version_table
    return RunResult(
        environment=plan.environment,
        database=plan.database,
        direction=plan.direction,
        from_revisions=list(plan.current),
        to_revisions=(
            shared.version_rows(version_table)
            if shared is not None
            else read_version_rows(workspace.url, version_table)
        )
        or [],
        applied=list(walk.done),
        elapsed_s=round(time.monotonic() - started, 4),
    )


class _Walk:
    """The state of one apply across the env.py runs it takes (one, plus one per retry)."""

    def __init__(
        self,
        workspace: Workspace,
        plan: Plan,
        pending: list[tuple[Step, RevisionStep]],
        *,
        done: list[AppliedStep],
        observer: Observer | None,
        on_step: StepCallback | None,
        shared: SharedConnection | None,
    ) -> None:
        self.workspace = workspace
        self.plan = plan
        self.pending = pending
        self.done = done
        self.observer = observer
        self.on_step = on_step
        self.shared = shared
        self.current = list(plan.current)
        self.monitor: _PgMonitor | None = None
        self.gatekeeper: _Gatekeeper | None = None
        self.in_flight: dict[str, Any] = {}
        self.attempts: dict[str, int] = {}
        self.waited: dict[str, float] = {}
        self.started: dict[str, float] = {}
        self.needs: dict[str, dict[str, str]] = {}
        self.created: set[str] = set()  # tables created by revisions of this run

    def applied_heads(self, *, ctx: Any, heads: set[str], **details: Any) -> None:
        """Alembic's on_version_apply, inside the step's transaction once its version row
        is written: the heads the database now records, and the step journaled on the
        migration's own connection, so it commits (or rolls back) with the step."""
        self.current = sorted(heads)
        if not self.pending or self.in_flight.get("revision") != self.pending[0][0].revision:
            return
        record, step = self.pending[0]
        revision = record.revision
        self.done.append(
            AppliedStep(
                revision=revision,
                message=record.message,
                direction=self.plan.direction,
                elapsed_s=round(time.monotonic() - self.started[revision], 4),
                script_sha256=script_sha256(step.revision.path),
                attempts=self.attempts[revision],
                waited_s=round(self.waited[revision], 3),
            )
        )
        if self.on_step and self.shared is None:
            self.on_step("done", record, ctx.connection)

    def steps(self, heads: Sequence[str], context: Any) -> Iterator[RevisionStep]:
        """Alembic's work function: yields the next step once the previous one committed."""
        from abmigrate.bridge.project import refuse_moved

        refuse_moved(heads, self.current)
        while self.pending:
            record, step = self.pending[0]
            self._before(record)
            yield step
            self._after(record, step)

    def _before(self, record: Step) -> None:
        from abmigrate.db.pg_locks import lock_needs

        revision = record.revision
        first = revision not in self.attempts
        self.attempts[revision] = self.attempts.get(revision, 0) + 1
        if first:
            self.started[revision] = time.monotonic()
            self.waited[revision] = 0.0
            if self.gatekeeper is not None and record.sql:
                locked = lock_needs(record.sql, workspace=self.workspace)
                # A table an earlier revision of this run created moments ago has no other
                # users to wait for (its name was unknown to them until that commit):
                # asking pg_locks about it before every revision cost more than the
                # revisions on a fresh install. lock_timeout and the retries still guard it.
                self.needs[revision] = {
                    table: mode for table, mode in locked.items() if table not in self.created
                }
            if self.on_step:
                self.on_step("start", record, None)
            if self.observer:
                self.observer(
                    StepStarted(
                        revision=revision, direction=record.direction, message=record.message
                    )
                )
        if self.monitor is not None:
            self.monitor.revision, self.monitor.blockers = revision, []
        needs = self.needs.get(revision)
        if self.gatekeeper is not None and needs:
            budget_s = self.workspace.environment.policy.lock_wait_ms / 1000
            self.waited[revision] += self.gatekeeper.wait_clear(revision, needs, budget_s)
        if self.shared is not None:
            self.shared.begin_step(revision)
        self.in_flight["revision"] = revision

    def _after(self, record: Step, step: RevisionStep) -> None:
        revision = record.revision
        if self.gatekeeper is not None and record.sql:
            from abmigrate.db.pg_locks import created_tables

            self.created |= created_tables(record.sql, workspace=self.workspace)
        if self.shared is not None:
            self.shared.end_step()
        self.in_flight["revision"] = None
        self.pending.pop(0)
        elapsed = time.monotonic() - self.started[revision]
        if self.shared is not None and self.on_step:
            self.on_step("done", record, None)
        if self.observer:
            self.observer(
                StepFinished(
                    revision=revision,
                    direction=record.direction,
                    elapsed_s=elapsed,
                    attempts=self.attempts[revision],
                )
            )

    def after_failure(self, exc: Exception) -> None:
        """A run of env.py raised: retry the revision in flight after a lock timeout (with
        backoff and jitter), else raise MigrationFailed saying where the database stands."""
        from abmigrate.db.pg_locks import lock_needs

        revision = self.in_flight.get("revision")
        self.in_flight["revision"] = None
        if self.shared is not None:
            self.shared.abandon_step()
        policy = self.workspace.environment.policy
        record = self.pending[0][0] if self.pending else None
        if record is None or revision != record.revision:
            raise _failure(self.workspace, record, exc, policy, in_flight=False) from exc
        if not is_lock_timeout(exc) or self.gatekeeper is None:
            raise _failure(self.workspace, record, exc, policy) from exc
        statement = _failed_statement(exc)
        if statement:
            # What actually blocked us beats what the offline SQL predicted.
            self.needs[revision] = {**self.needs.get(revision, {}), **lock_needs(statement)}
        needs = self.needs.get(revision, {})
        blockers = (self.monitor.blockers if self.monitor else []) or self.gatekeeper.holders(needs)
        attempt = self.attempts[revision]
        if attempt > policy.lock_retries:
            raise _lock_failure(self.workspace, record, attempt, blockers) from exc
        delay = min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2 ** (attempt - 1))
        delay = random.uniform(delay / 2, delay)
        if self.observer:
            self.observer(
                LockRetry(
                    revision=revision,
                    attempt=attempt,
                    of=policy.lock_retries + 1,
                    delay_s=round(delay, 2),
                    lock_timeout_ms=policy.lock_timeout_ms,
                    statement=" ".join((statement or "").split())[:160],
                    blockers=blockers,
                )
            )
        time.sleep(delay)


def _where(workspace: Workspace) -> tuple[list[str], str]:
    try:
        now = read_version_rows(workspace.url, workspace.project.version_table) or []
        return now, ", ".join(now) or "no revision (empty)"
    except AbmigrateError:
        return [], "unknown (the database could not be read)"


def _lock_failure(
    workspace: Workspace, record: Step, attempts: int, blockers: list[dict[str, Any]]
) -> MigrationFailed:
    now, where = _where(workspace)
    who = "; ".join(
        f"pid {b.get('pid')} ({b.get('state')}, {b.get('transaction_s')}s: {b.get('query')})"
        for b in blockers[:3]
    )
    return MigrationFailed(
        f"{record.direction} of revision {record.revision} could not take its locks in"
        f" {attempts} attempts (lock_timeout reached each time)"
        + (f"; blocked by {who}" if who else ""),
        hint=f"the database still records {where}. End or wait out the blocking session(s),"
        f" then run `abmigrate {record.direction}` again",
        revision=record.revision,
        current=now,
    )


def _failure(
    workspace: Workspace,
    record: Step | None,
    exc: BaseException,
    policy: Policy,
    *,
    in_flight: bool = True,
) -> MigrationFailed:
    lines = str(exc).strip().splitlines()
    detail = scrub(f"{type(exc).__name__}: {lines[0] if lines else ''}", workspace.url)
    if _sqlstate(exc) == QUERY_CANCELED and policy.statement_timeout_ms is not None:
        detail += f" (statement_timeout is {policy.statement_timeout_ms / 1000:g}s)"
    now, where = _where(workspace)
    if record is None or not in_flight:
        # env.py itself failed between revisions (or before the first one).
        return MigrationFailed(
            f"env.py failed before the next revision could start: {detail}",
            hint=f"the database now records {where}. Fix env.py, then run"
            f" `abmigrate {record.direction if record else 'upgrade'}` again",
            revision=None,
            current=now,
        )
    partial = ""
    if not dialect_for(workspace.environment.dialect).transactional_ddl:
        partial = (
            f" {workspace.environment.dialect} cannot roll back DDL: part of {record.revision}"
            " may have been applied."
        )
    return MigrationFailed(
        f"{record.direction} of revision {record.revision} ({record.message}) failed: {detail}",
        hint=f"the database now records {where}.{partial} Fix the migration, then run"
        f" `abmigrate {record.direction}` again",
        revision=record.revision,
        current=now,
    )
