"""Rehearsal: run the pending revisions on a scratch copy of the data and measure them.

"Test with production-like data volumes" as one command. A scratch database of the
target's dialect (:mod:`abmigrate.db.scratch`) is filled with

- the given backup (``from_backup``: an id, or ``latest``) restored with abmigrate's backup
  tools; by default the latest backup of the environment when there is one;
- otherwise a fresh copy of the database (dumped and restored with the same tools);
- or, with ``scale_rows=N``, the schema at the database's revision (replayed) plus N
  synthetic rows per table (:mod:`abmigrate.db.synthetic`);

then every pending revision is applied there, one at a time, and measured:

- duration;
- the strongest lock taken on each table — PostgreSQL's ``pg_locks`` sampled by a second
  connection while the revision runs, and once more when its ``upgrade()`` has returned and
  its transaction still holds every lock it took;
- tables rewritten: ``relfilenode`` changed (PostgreSQL), ``rootpage`` changed (SQLite);
- rows touched per table: the revision's own transaction counters (PostgreSQL
  ``pg_stat_get_xact_tuples_*``; the rows an ``abmigrate.ops.backfill`` updated in its own
  committed batches, from its progress reports), or the connection's ``total_changes()``
  (SQLite);

then downgraded back to where it started and upgraded again, to prove reversibility on real
data. The scratch database is dropped at the end, on failure, and on Ctrl-C or SIGTERM.
Nothing is written to the target database.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from abmigrate.db.dialects import Dialect, dialect_for
from abmigrate.db.pg_locks import LOCK_MODES
from abmigrate.errors import AbmigrateError, GuardRefused
from abmigrate.events import BackfillBatch, Event, Observer, StepFinished, StepStarted
from abmigrate.results import Record

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from abmigrate.bridge.project import AlembicProject
    from abmigrate.bridge.types import RevisionStep
    from abmigrate.config.workspace import Workspace

__all__ = ["LOCK_MODES", "Rehearsal", "RehearsalStep", "rehearse"]

_SAMPLE_EVERY_S = 0.003


@dataclass
class RehearsalStep(Record):
    revision: str
    message: str
    direction: str  # upgrade, downgrade, re-upgrade
    elapsed_s: float
    ok: bool
    locks: dict[str, str] = field(default_factory=dict)
    rewritten: list[str] = field(default_factory=list)
    rows_touched: dict[str, int] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Rehearsal(Record):
    environment: str
    database: str
    dialect: str
    source: str
    scratch_database: str
    start: list[str]
    target: str
    steps: list[RehearsalStep]
    elapsed_s: float
    ok: bool
    warnings: list[str] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        record = super().to_record()
        record["steps"] = [step.to_record() for step in self.steps]
        return record


def rehearse(
    workspace: Workspace,
    target: str = "head",
    *,
    from_backup: str | None = None,
    clone: bool = False,
    scale_rows: int | None = None,
    observer: Observer | None = None,
) -> Rehearsal:
    """Rehearse the upgrade to ``target`` on a scratch copy; see the module docstring."""
    from abmigrate.bridge.plan import unknown_revisions
    from abmigrate.db.database import read_version_rows
    from abmigrate.state.replay import isolated_scratch

    started = time.monotonic()
    environment = workspace.environment
    current = read_version_rows(workspace.url, workspace.project.version_table) or []
    unknown = unknown_revisions(workspace.project, current)
    if unknown:
        raise GuardRefused(
            f"the database records {', '.join(unknown)}, which no script defines",
            hint="run `abmigrate diagnose` first",
            reasons=[f"unknown revision {revision}" for revision in unknown],
        )
    warnings: list[str] = []
    with isolated_scratch(workspace.url, "rehearse") as scratch:
        source = _populate(workspace, scratch.url, current, from_backup, clone, scale_rows)
        project = workspace.project.for_url(scratch.url)
        start = read_version_rows(scratch.url) or []
        if sorted(start) != sorted(current):
            warnings.append(
                f"the copy is at {', '.join(start) or 'no revision'}, the database at"
                f" {', '.join(current) or 'no revision'}: the rehearsal starts from the copy"
            )
        if dialect_for(scratch.dialect).storage_ids_query() is None:
            warnings.append(
                f"locks, rewrites and rows touched are measured on PostgreSQL (and rewrites"
                f" and rows on SQLite), not on {scratch.dialect}: only durations are reported"
            )
        steps: list[RehearsalStep] = []
        ok = _run_phase(project, scratch.url, target, "upgrade", steps, observer)
        if ok and steps:
            # Back to where the copy started, then up again: reversible on this data?
            down_target = start[0] if len(start) == 1 else "base"
            ok = _run_phase(project, scratch.url, down_target, "downgrade", steps, observer)
            if ok:
                ok = _run_phase(project, scratch.url, target, "re-upgrade", steps, observer)
        scratch_name = scratch.name
    return Rehearsal(
        environment=environment.name,
        database=environment.masked_url,
        dialect=environment.dialect,
        source=source,
        scratch_database=scratch_name,
        start=start,
        target=target,
        steps=steps,
        elapsed_s=round(time.monotonic() - started, 3),
        ok=ok,
        warnings=warnings,
    )


# --------------------------------------------------------------------------- populating


def _populate(
    workspace: Workspace,
    scratch_url: str,
    current: list[str],
    from_backup: str | None,
    clone: bool,
    scale_rows: int | None,
) -> str:
    if scale_rows is not None:
        return _synthetic(workspace, scratch_url, current, scale_rows)
    if from_backup is None and not clone:
        latest = _latest_backup(workspace)
        if latest is not None:
            from_backup = latest
    if from_backup is not None:
        from abmigrate.backup.operations import restore

        restored = restore(workspace, from_backup, target_url=scratch_url)
        return f"backup {restored.id}"
    from abmigrate.backup.operations import copy_database

    copy_database(workspace.url, scratch_url)
    return "a fresh copy of the database"


def _latest_backup(workspace: Workspace) -> str | None:
    try:
        from abmigrate.backup.manifest import list_manifests
    except ImportError:  # pragma: no cover - the backup package ships with abmigrate
        return None
    manifests = list_manifests(workspace.settings.backup_dir.absolute(), workspace.environment.name)
    if not manifests:
        return None
    return max(manifests, key=lambda manifest: manifest.created_at).id


def _synthetic(workspace: Workspace, scratch_url: str, current: list[str], rows: int) -> str:
    from abmigrate.db.synthetic import fill

    if rows < 1:
        raise AbmigrateError("--scale-rows needs a positive number of rows")
    project = workspace.project.for_url(scratch_url)
    baseline = workspace.settings.baseline
    if baseline is not None:
        # Replayed from where the history starts (the copy or backup paths bring their own).
        baseline.apply(scratch_url)
    if current:
        # The schema the database has: its revisions replayed from the start.
        target = current[0] if len(current) == 1 else "heads"
        # One env.py run, as `alembic upgrade` would build it.
        project.run_steps(project.upgrade_steps(target, []))
    report = fill(scratch_url, rows)
    skipped = f"; not filled: {', '.join(sorted(report.skipped))}" if report.skipped else ""
    at = ", ".join(current) or "an empty schema"
    return f"{rows} synthetic rows per table at {at}{skipped}"


# --------------------------------------------------------------------------- running


def _run_phase(
    project: AlembicProject,
    scratch_url: str,
    target: str,
    direction: str,
    steps: list[RehearsalStep],
    observer: Observer | None,
) -> bool:
    from abmigrate.bridge.plan import message_of
    from abmigrate.db.database import read_version_rows

    now = read_version_rows(scratch_url) or []
    if direction == "downgrade":
        planned = project.downgrade_steps(target, now)
    else:
        planned = project.upgrade_steps(target, now)
    for step in planned:
        revision = str(step.revision.revision)
        message = message_of(step.revision.doc)
        if observer:
            observer(StepStarted(revision=revision, direction=direction, message=message))
        record = _measure(project, scratch_url, step, direction, message)
        steps.append(record)
        if observer:
            observer(
                StepFinished(
                    revision=revision,
                    direction=direction,
                    elapsed_s=record.elapsed_s,
                    ok=record.ok,
                )
            )
        if not record.ok:
            return False
    return True


def _measure(
    project: AlembicProject, scratch_url: str, step: RevisionStep, direction: str, message: str
) -> RehearsalStep:
    from sqlalchemy.engine import make_url

    from abmigrate.bridge.env_run import WrongDatabase

    dialect = dialect_for(make_url(scratch_url))
    record = RehearsalStep(str(step.revision.revision), message, direction, 0.0, True)
    with _observer(scratch_url, dialect) as observer:
        before = observer.storage()
        original = step.migration_fn

        @functools.wraps(original)
        def measured(*args: Any, **kwargs: Any) -> Any:
            returned = original(*args, **kwargs)
            # The revision's transaction is still open: it holds every lock it took, and
            # its own row counters say what it changed.
            from abmigrate.bridge.project import migration_op

            bind = migration_op().get_bind()
            observer.sample(dialect.backend_pid(bind))
            record.rows_touched = dialect.rows_touched(bind)
            return returned

        step.migration_fn = measured
        observer.start()
        started = time.monotonic()
        try:
            with _backfilled_rows() as backfilled:
                project.run_steps([step])
        except WrongDatabase:
            raise  # env.py reaches another database than the scratch copy: nothing to measure
        except AbmigrateError as exc:
            record.ok, record.error = False, exc.message
        except Exception as exc:
            lines = str(exc).strip().splitlines()
            record.ok = False
            record.error = f"{type(exc).__name__}: {lines[0] if lines else ''}"
        finally:
            record.elapsed_s = round(time.monotonic() - started, 4)
            step.migration_fn = original
            observer.stop()
        record.locks = observer.strongest()
        after = observer.storage()
    if dialect.rows_touched_by_transaction:
        # Batches committed before the end are gone from the transaction counters (or are
        # still in them, while the backend has not flushed its statistics): at least this many.
        for table, rows in backfilled.items():
            record.rows_touched[table] = max(record.rows_touched.get(table, 0), rows)
    record.rewritten = sorted(
        name for key, (name, node) in after.items() if key in before and before[key][1] != node
    )
    return record


@contextmanager
def _backfilled_rows() -> Iterator[dict[str, int]]:
    """Rows per table that ``abmigrate.ops.backfill`` calls report while the block runs."""
    from abmigrate import ops

    runs: list[tuple[str, int]] = []  # one entry per backfill() call: (table, rows so far)
    totals: dict[str, int] = {}
    previous = ops.progress_hook

    def hook(event: Event) -> None:
        if isinstance(event, BackfillBatch):
            entry = (event.table, event.rows)
            if event.batch == 1:
                runs.append(entry)
            elif runs:
                runs[-1] = entry
        if previous is not None:
            previous(event)

    ops.progress_hook = hook
    try:
        yield totals
    finally:
        ops.progress_hook = previous
        for table, rows in runs:
            totals[table] = totals.get(table, 0) + rows


# --------------------------------------------------------------------------- observing


class _Observer:
    """A second connection to the scratch database: storage ids, and pg_locks sampling."""

    def __init__(self, connection: Connection | None, dialect: Dialect) -> None:
        self.connection = connection
        self.dialect = dialect
        self.seen: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def storage(self) -> dict[Any, tuple[str, Any]]:
        """Table id -> (name, storage id): a rewrite gives a table new storage."""
        from sqlalchemy import text

        if self.connection is None:
            return {}
        with self._lock:
            query = self.dialect.storage_ids_query()
            rows = self.connection.execute(text(query)).all() if query else []
        return {key: (str(name), node) for key, name, node in rows if name != "alembic_version"}

    def sample(self, pid: int | None = None) -> None:
        from sqlalchemy import text

        if self.connection is None or not self.dialect.monitors_locks:
            return
        query = (
            "SELECT coalesce(t.relname, c.relname), l.mode FROM pg_locks l"
            " JOIN pg_class c ON c.oid = l.relation"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " LEFT JOIN pg_index i ON i.indexrelid = c.oid"
            " LEFT JOIN pg_class t ON t.oid = i.indrelid"
            " WHERE l.locktype = 'relation' AND l.granted"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND l.pid <> pg_backend_pid()"
            " AND n.nspname = current_schema()"
            " AND c.relkind IN ('r', 'p', 'i', 'm')"
        )
        parameters: dict[str, Any] = {}
        if pid is not None:
            query += " AND l.pid = :pid"
            parameters["pid"] = pid
        with self._lock:
            rows = self.connection.execute(text(query), parameters).all()
        for table, mode in rows:
            name = str(table)
            if name == "alembic_version" or mode not in LOCK_MODES:
                continue
            known = self.seen.get(name)
            if known is None or LOCK_MODES.index(mode) > LOCK_MODES.index(known):
                self.seen[name] = str(mode)

    def strongest(self) -> dict[str, str]:
        return dict(sorted(self.seen.items()))

    def start(self) -> None:
        if self.connection is None or not self.dialect.monitors_locks:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="pg-locks-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception:
                return  # sampling is best effort; the end-of-revision sample still runs
            self._stop.wait(_SAMPLE_EVERY_S)


@contextmanager
def _observer(scratch_url: str, dialect: Dialect) -> Iterator[_Observer]:
    from abmigrate.db.database import connect

    if dialect.storage_ids_query() is None:
        yield _Observer(None, dialect)
        return
    with connect(scratch_url) as connection:
        # Autocommit: every sample sees the catalog as it is now, and holds no locks.
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        observer = _Observer(autocommit, dialect)
        try:
            yield observer
        finally:
            observer.stop()
