"""The guarded pipeline behind ``upgrade`` and ``downgrade``, in every environment.

Under the migration lock, one run is a short sequence of named stages (:class:`_Run`):

check_state → make_plan → analyse → gate → confirm → open_journal → backup → apply →
verify → finish (or dry_run after confirm), and on failure an incident report.

The gates are declared in :mod:`abmigrate.apply.gates`. The policy decides which bite. An
environment is *guarded* when its policy requires confirmation or forbids destructive
changes (production and staging by default): there, lint errors, changed scripts and
partially applied revisions refuse the run instead of warning. Every refusal can be
overridden with ``override=REASON``, which is recorded in the journal and the result.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from abmigrate.apply.gates import (
    GateContext,
    changed_script,
    guarded,
    overrides_for,
    run_gates,
)
from abmigrate.apply.verify import verify
from abmigrate.bridge.plan import build_plan
from abmigrate.db.database import read_version_rows, scrub
from abmigrate.db.dialects import dialect_for
from abmigrate.errors import (
    AbmigrateError,
    GraphError,
    GuardRefused,
    MigrationFailed,
)
from abmigrate.events import (
    BackupFinished,
    BackupStarted,
    DowngradeSql,
    Event,
    GatesOverridden,
    LockTaken,
    LockWaiting,
    ModelsPredicted,
    Observer,
    TargetChosen,
)
from abmigrate.results import (
    AppliedStep,
    Direction,
    Plan,
    RunRecord,
    RunResult,
    Step,
    Verification,
)

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from abmigrate.apply.journal import Journal
    from abmigrate.apply.runner import StepCallback
    from abmigrate.bridge.types import RevisionStep
    from abmigrate.config.workspace import Workspace
    from abmigrate.lint.model import Finding

__all__ = ["ConfirmCallback", "RunOptions", "run_pipeline"]

# Asked before a guarded change; returns True to go on. None means "nobody to ask".
ConfirmCallback = Callable[[Plan], bool]

_BLOCKING_GRAPH_PROBLEMS = frozenset({"dangling_parent", "id_too_long", "graph_broken"})


@dataclass
class RunOptions:
    dry_run: bool = False
    override: str | None = None  # the reason: overrides every refusal of the policy gate
    no_backup: bool = False
    lock_wait_ms: int | None = None
    confirm: ConfirmCallback | None = None
    observer: Observer | None = None  # progress: abmigrate.events, rendered by the CLI
    warnings: list[str] = field(default_factory=list)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("abmigrate", "alembic", "sqlalchemy"):
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


def _ignore(event: Event) -> None:
    pass


def run_pipeline(
    workspace: Workspace, direction: Direction, target: str, options: RunOptions
) -> RunResult:

    from abmigrate.db.lock import MigrationLock

    if options.lock_wait_ms is not None:
        # --lock-wait bounds every wait for a lock: the migration lock and the table locks.
        policy = replace(workspace.environment.policy, lock_wait_ms=options.lock_wait_ms)
        workspace = replace(workspace, environment=replace(workspace.environment, policy=policy))
    environment = workspace.environment
    observe: Observer = options.observer or _ignore
    if environment.policy.require_confirmation and options.confirm is None and not options.dry_run:
        # Refused before anything else: a run nobody can confirm must not even take the lock.
        raise _nobody_to_confirm(direction, environment.name)
    wait_ms = (
        options.lock_wait_ms
        if options.lock_wait_ms is not None
        else environment.policy.lock_wait_ms
    )

    def waiting(holder: dict[str, Any]) -> None:
        observe(LockWaiting(holder=holder, wait_s=wait_ms / 1000))

    with MigrationLock(workspace.url, wait_ms=wait_ms, on_wait=waiting) as lock:
        observe(LockTaken(waited_s=round(lock.waited_s, 2)))
        return _Run(workspace, direction, target, options, observe).stages()


class _Run:
    """One run under the migration lock: the stages in order, and what each hands on."""

    plan: Plan
    steps: list[RevisionStep]
    book: Journal
    record: RunRecord  # the journal's row for this run
    rows: _JournalRows
    started: float  # when the journal's row was written
    schema_before: list[str] | None
    result: RunResult
    verification: Verification

    def __init__(
        self,
        workspace: Workspace,
        direction: Direction,
        target: str,
        options: RunOptions,
        observe: Observer,
    ) -> None:
        self.workspace = workspace
        self.environment = workspace.environment
        self.policy = workspace.environment.policy
        self.direction = direction
        self.target = target
        self.options = options
        self.observe = observe
        self.warnings = list(options.warnings)
        self.current: list[str] = []
        self.changed: list[str] = []
        self.partial: str | None = None
        self.nothing_to_lose = False
        self.analysis_failures: list[str] = []
        self.findings: list[Finding] = []
        self.drift_before: list[str] | None = None
        self.overrides: list[dict[str, str]] = []
        self.overridden_drift: list[str] = []

    def stages(self) -> RunResult:
        self.check_state()
        self.make_plan()
        if not self.plan.steps:
            return self.nothing_to_do()
        # Announced once there is something to do: an error (bad target, no connection)
        # stays the first line a user reads.
        self.observe(
            TargetChosen(
                environment=self.environment.name,
                database=self.environment.masked_url,
                policy=self.policy,
            )
        )
        self.analyse()
        self.gate()
        self.confirm()
        if self.options.dry_run:
            return self.dry_run()
        self.open_journal()
        try:
            self.backup()
            self.apply()
            self.verify()
        except BaseException as exc:
            self.record_failure(exc)
            raise
        return self.finish()

    # -- graph and state checks ------------------------------------------------------------

    def check_state(self) -> None:
        """The graph must load; env.py must reach this database; the journal says which
        scripts changed after they were applied and whether a run stopped half way."""
        from abmigrate.apply import journal
        from abmigrate.db.database import sqlite_path

        workspace, project = self.workspace, self.workspace.project
        problems = project.graph_problems()
        blocking = [p for p in problems if p.code in _BLOCKING_GRAPH_PROBLEMS]
        if blocking:
            raise GraphError(
                f"the revision graph is broken: {blocking[0].message}",
                hint="run `abmigrate status` for every problem; fix the scripts first",
                heads=project.heads(),
            )
        sqlite_file = sqlite_path(workspace.url)
        # A SQLite database that does not exist yet holds nothing to lose (and nothing to
        # dump).
        self.nothing_to_lose = sqlite_file is not None and not sqlite_file.exists()
        if not self.nothing_to_lose:
            # env.py runs once without executing anything: it must reach this database (else
            # WrongDatabase, exit 2, before any backup or revision), and it says where it
            # records revisions. A missing SQLite file is not created by looking.
            project.probe()
        self.current = read_version_rows(workspace.url, project.version_table) or []
        runs = journal.read_runs(workspace.url, schema=project.version_table.schema)
        known = [revision for revision in self.current if project.known(revision)]
        applied_set = project.applied_set(known)
        self.changed = sorted(journal.checksum_mismatches(workspace, runs, applied_set))
        self.warnings.extend(changed_script(revision) for revision in self.changed)
        self.partial = journal.interrupted_or_partial(runs, self.environment.dialect, applied_set)
        if self.partial:
            self.warnings.append(self.partial)

    # -- plan ------------------------------------------------------------------------------

    def make_plan(self) -> None:
        self.plan, self.steps = build_plan(
            self.workspace, self.direction, self.target, current=self.current, with_sql=True
        )

    def nothing_to_do(self) -> RunResult:
        return RunResult(
            environment=self.environment.name,
            database=self.environment.masked_url,
            direction=self.direction,
            from_revisions=self.current,
            to_revisions=self.current,
            applied=[],
            elapsed_s=0.0,
            dry_run=self.options.dry_run,
            target=self.target,
            warnings=self.warnings,
        )

    # -- analysis: lint, preflight, data loss, models ------------------------------------

    def analyse(self) -> None:
        workspace, plan = self.workspace, self.plan
        # An analysis that cannot run must not let a guarded run through unguarded: there it
        # is a refusal (gate `analysis`, overridable), in development a warning.
        self.analysis_failures = _analyse(workspace, plan, self.steps)
        if self.direction == "downgrade":
            from abmigrate.apply.data_loss import estimate_data_loss

            try:
                plan.data_loss = estimate_data_loss(workspace, plan)
            except AbmigrateError:
                raise
            except Exception as exc:
                self.analysis_failures.append(
                    _analysis_failure("the data-loss estimate", plan, exc, workspace)
                )
        self.warnings.extend(self.analysis_failures)
        if self.direction == "downgrade":
            # What a rollback will run is shown before anything else is decided about it.
            self.observe(
                DowngradeSql(
                    steps=[
                        {
                            "revision": step.revision,
                            "message": step.message,
                            "sql": step.sql,
                            "error": step.sql_error,
                        }
                        for step in plan.steps
                    ],
                    data_loss=plan.data_loss,
                )
            )
        self.findings = [
            replace(finding, revision=finding.revision or step.revision)
            for step in plan.steps
            for finding in step.findings
        ]
        # Will the schema at the target match the models? Guarded environments (and
        # verify_models = "fail", which gates on it) replay the revisions when the cache
        # lacks the answer; elsewhere a prediction not cached is only reported as such.
        from abmigrate.apply.model_prediction import predict_models

        plan.models = predict_models(
            workspace, plan, replay=guarded(self.policy) or self.policy.verify_models == "fail"
        )
        if plan.models is not None and not plan.models.get("not_cached"):
            # A development run that may not replay does not nag about it: the verification
            # after the run compares the models with the database anyway.
            self.observe(ModelsPredicted(models=plan.models))
        # Model differences already there before the run never fail it (read from the live
        # database now, before anything changes).
        self.drift_before = _drift_before(workspace, self.direction, self.target)

    # -- gates -----------------------------------------------------------------------------

    def gate(self) -> None:
        """Every gate of abmigrate.apply.gates; refused unless overridden."""
        refusals = run_gates(
            GateContext(
                environment=self.environment,
                plan=self.plan,
                direction=self.direction,
                no_backup=self.options.no_backup,
                findings=self.findings,
                changed_scripts=self.changed,
                partial=self.partial,
                analysis_failures=self.analysis_failures,
                drift_before=self.drift_before,
                nothing_to_lose=self.nothing_to_lose,
            )
        )
        self.overrides = overrides_for(
            refusals, self.options.override, self.direction, self.environment.name
        )
        if self.overrides:
            self.observe(GatesOverridden(overrides=self.overrides))
        # Overriding the predicted models' differences accepts them: the verification after
        # the run warns about them instead of failing a run whose revisions are in.
        if any(refused.gate == "models" for refused in refusals):
            self.overridden_drift = list((self.plan.models or {}).get("differences") or [])

    # -- confirmation ----------------------------------------------------------------------

    def confirm(self) -> None:
        # Destroying data asks first in every environment; an empty table is no loss.
        needs_confirmation = self.policy.require_confirmation or any(
            loss.loses_data for loss in self.plan.data_loss
        )
        if needs_confirmation and not self.options.dry_run:
            if self.options.confirm is None:
                raise _nobody_to_confirm(self.direction, self.environment.name)
            if not self.options.confirm(self.plan):
                raise GuardRefused("not confirmed; nothing was changed", reasons=["not confirmed"])

    def dry_run(self) -> RunResult:
        return _dry_run(
            self.workspace,
            self.plan,
            self.steps,
            self.options,
            self.observe,
            self.target,
            self.overrides,
            self.findings,
            self.warnings,
            {"drift_before": self.drift_before, "drift_overridden": self.overridden_drift},
        )

    # -- journal, backup, apply, verify, finish --------------------------------------------

    def open_journal(self) -> None:
        from abmigrate.apply import journal
        from abmigrate.db.lock import actor

        environment, plan = self.environment, self.plan
        self.record = RunRecord(
            run_id=journal.new_run_id(),
            environment=environment.name,
            database=environment.masked_url,
            dialect=environment.dialect,
            direction=self.direction,
            target=self.target,
            from_revisions=self.current,
            to_revisions=self.current,
            planned=[step.revision for step in plan.steps],
            started_at=journal.now_iso(),
            actor=actor(),
            versions=_versions(),
            overrides=self.overrides,
            warnings=self.warnings,
            data_loss=plan.data_loss,
            models_prediction=plan.models,
        )
        self.book = journal.Journal(self.workspace)
        self.book.start(self.record)
        self.started = time.monotonic()
        self.rows = _JournalRows(self.book, self.record, plan, environment.dialect)

    def backup(self) -> None:
        take_backup = (
            self.policy.require_backup
            and not self.options.dry_run
            and not self.options.no_backup  # refused at the gate unless overridden
            and not self.nothing_to_lose
        )
        if take_backup:
            self.observe(BackupStarted())
            self.record.backup = _backup(self.workspace, self.direction)
            self.observe(BackupFinished(backup=self.record.backup))
            self.book.update(self.record)

    def apply(self) -> None:
        # The hand changes (with verify_schema = "replay") the run must not be blamed for.
        self.schema_before = _schema_before(self.workspace, self.plan)
        self.record.in_flight = self.rows.order[0]
        self.book.update(self.record)
        self.result = _apply(
            self.workspace,
            self.plan,
            self.steps,
            self.options,
            self.observe,
            self.rows.applied,
            self.rows.on_step,
        )

    def verify(self) -> None:
        self.verification = verification = verify(
            self.workspace,
            self.plan,
            self.observe,
            drift_before=self.drift_before,
            schema_before=self.schema_before,
            drift_overridden=self.overridden_drift,
        )
        self.record.verification = verification
        self.warnings.extend(verification.warnings)
        if not verification.ok:
            raise MigrationFailed(
                f"{self.direction} applied, but verification failed: "
                + _problems_line(verification.problems),
                hint="see the incident report for the rollback command and the backup",
                current=self.result.to_revisions,
            )

    def record_failure(self, exc: BaseException) -> None:
        _record_failure(
            self.workspace,
            self.record,
            self.book,
            self.rows.applied,
            exc,
            self.rows.failed_revision,
        )

    def finish(self) -> RunResult:
        from abmigrate.apply import journal

        result = self.result

        record = self.record
        record.outcome, record.finished_at = "succeeded", journal.now_iso()
        record.to_revisions, record.in_flight = result.to_revisions, None
        self.book.finish(record)
        self.warnings.extend(self.book.errors)
        result.elapsed_s = round(time.monotonic() - self.started, 4)
        result.run_id = record.run_id
        result.backup = record.backup
        result.warnings = self.warnings
        result.verification = self.verification
        result.target = self.target
        result.overrides = self.overrides
        result.findings = self.findings
        result.data_loss = self.plan.data_loss
        result.models_prediction = self.plan.models
        result.journal = str(self.workspace.settings.journal_log)
        return result


class _JournalRows:
    """Keeps the journal's row in step with the revisions as they are applied.

    The row is rewritten inside each revision's own transaction (it commits with the
    revision, at no extra commit), naming the next revision as in flight: if the process dies
    during it, the journal already says which one may be half applied. It is rewritten at
    most once a second (and at the last revision): rewriting the whole record at every
    revision of a long plan cost more than the migrations. Where DDL is transactional a
    revision killed half way is rolled back, so the row may lag the version table; elsewhere
    it must name the revision in flight exactly, so in between only its in_flight column is
    updated.
    """

    def __init__(self, book: Journal, record: RunRecord, plan: Plan, dialect: str) -> None:
        self.book = book
        self.record = record
        self.order = [step.revision for step in plan.steps]
        # The runner appends each applied step here; the record shares the list.
        self.applied: list[AppliedStep] = record.applied
        self.failed_revision: str | None = None
        self.transactional = dialect_for(dialect).transactional_ddl
        self.last_written = time.monotonic()

    def on_step(self, event: str, step: Step, connection: Connection | None) -> None:
        run, order = self.record, self.order
        if event == "start":
            run.in_flight = self.failed_revision = step.revision
            return
        self.failed_revision = None
        position = order.index(step.revision) + 1 if step.revision in order else len(order)
        run.in_flight = order[position] if position < len(order) else None
        last = position >= len(order)
        if not last and time.monotonic() - self.last_written < 1.0:
            if not self.transactional:
                self.book.mark_in_flight(run, within=connection)
            return
        self.book.update(run, within=connection)
        self.last_written = time.monotonic()


def _dry_run(
    workspace: Workspace,
    plan: Plan,
    steps: list[RevisionStep],
    options: RunOptions,
    observe: Observer,
    target: str,
    overrides: list[dict[str, str]],
    findings: list[Finding],
    warnings: list[str],
    known_drift: dict[str, Any],
) -> RunResult:
    """Apply and undo (abmigrate.apply.dry_run); the local journal log records the attempt."""
    from abmigrate.apply import journal
    from abmigrate.apply.dry_run import dry_run
    from abmigrate.db.lock import actor

    record = RunRecord(
        run_id=journal.new_run_id(),
        dry_run=True,
        environment=workspace.environment.name,
        database=workspace.environment.masked_url,
        dialect=workspace.environment.dialect,
        direction=plan.direction,
        target=target,
        from_revisions=plan.current,
        to_revisions=plan.current,
        planned=[step.revision for step in plan.steps],
        started_at=journal.now_iso(),
        actor=actor(),
        versions=_versions(),
        overrides=overrides,
    )
    book = journal.Journal(workspace)
    try:
        result = dry_run(workspace, plan, steps, observer=observe, **known_drift)
        verification = result.verification
        if verification is not None and not verification.ok:
            raise MigrationFailed(
                f"dry run: the {plan.direction} applied, but verification would fail: "
                + _problems_line(verification.problems),
                hint="nothing was changed (the dry run undid its work); fix the migration or"
                " the models first",
                current=plan.current,
            )
    except AbmigrateError as exc:
        record.outcome, record.error = "dry run failed", exc.message
        record.finished_at = journal.now_iso()
        book.log_only(record)
        raise
    record.outcome, record.finished_at = "dry run succeeded", journal.now_iso()
    record.applied, record.skipped = result.applied, result.skipped
    record.method = result.dry_run_method
    book.log_only(record)
    result.warnings = [
        *warnings,
        *result.warnings,
        *(result.verification.warnings if result.verification else []),
        *book.errors,
    ]
    result.target = target
    result.overrides = overrides
    result.findings = findings
    result.data_loss = plan.data_loss
    result.models_prediction = plan.models
    result.run_id = record.run_id
    result.journal = str(workspace.settings.journal_log)
    return result


def _problems_line(problems: list[str]) -> str:
    return problems[0] + (f" (+{len(problems) - 1} more problem(s))" if len(problems) > 1 else "")


def _drift_before(workspace: Workspace, direction: Direction, target: str) -> list[str] | None:
    """With ``verify_models = "fail"``: the model differences before an upgrade to head."""
    from abmigrate.apply.verify import models_drift

    if workspace.environment.policy.verify_models != "fail" or direction != "upgrade":
        return None
    try:
        return models_drift(workspace)
    except AbmigrateError:
        return None


def _schema_before(workspace: Workspace, plan: Plan) -> list[str] | None:
    """With ``verify_schema = "replay"``: how the schema differs, before the run, from what
    the revisions produce at the revision it records (hand changes the run must not be
    blamed for)."""
    from abmigrate.apply.verify import schema_differences

    if workspace.environment.policy.verify_schema != "replay":
        return None
    try:
        return schema_differences(workspace, plan.current)
    except AbmigrateError:
        return None


def _nobody_to_confirm(direction: str, environment: str) -> GuardRefused:
    return GuardRefused(
        f"{direction} of {environment} requires confirmation and nobody can confirm",
        hint="run it in a terminal and type the environment's name, or pass --yes",
        reasons=["confirmation required"],
    )


def _analyse(workspace: Workspace, plan: Plan, steps: list[RevisionStep]) -> list[str]:
    """Lint findings per step and data preflight against live data (abmigrate.lint);
    returns what could not be analysed."""
    from abmigrate.lint import analyse_plan

    try:
        analyse_plan(workspace, plan, steps)
    except AbmigrateError:
        raise
    except Exception as exc:
        return [_analysis_failure("lint/preflight", plan, exc, workspace)]
    return []


def _analysis_failure(what: str, plan: Plan, exc: Exception, workspace: Workspace) -> str:
    revisions = [step.revision for step in plan.steps]
    revision = _revision_in_traceback(exc, workspace, revisions)
    where = f" on revision {revision}" if revision else f" on {', '.join(revisions[:3])}"
    where += "" if revision or len(revisions) <= 3 else f" (+{len(revisions) - 3} more)"
    detail = str(exc).strip().splitlines()
    message = f"{what} could not run{where}: {type(exc).__name__}: {detail[0] if detail else ''}"
    return scrub(message, workspace.url)


def _revision_in_traceback(
    exc: BaseException, workspace: Workspace, revisions: list[str]
) -> str | None:
    """The revision whose script the exception went through, if any (the innermost)."""
    import traceback
    from pathlib import Path

    paths: dict[str, str] = {}
    for revision in revisions:
        with contextlib.suppress(AbmigrateError):
            path = workspace.project.get(revision).path
            if path:
                paths[str(Path(path).resolve())] = revision
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        found = paths.get(str(Path(frame.filename).resolve()), found)
    return found


def _backup(workspace: Workspace, direction: Direction) -> dict[str, Any]:
    from abmigrate.backup.operations import backup_for_pipeline

    # A backup that cannot be taken or does not verify raises BackupError: nothing changed.
    return backup_for_pipeline(workspace, reason=f"pre-{direction}").to_record()


def _apply(
    workspace: Workspace,
    plan: Plan,
    steps: list[RevisionStep],
    options: RunOptions,
    observe: Observer,
    applied: list[AppliedStep],
    on_step: StepCallback,
) -> RunResult:
    from abmigrate.apply.runner import apply_plan

    return apply_plan(
        workspace,
        plan,
        steps,
        observer=observe,
        applied=applied,
        on_step=on_step,
    )


def _record_failure(
    workspace: Workspace,
    run: RunRecord,
    book: Journal,
    applied: list[AppliedStep],
    exc: BaseException,
    failed_revision: str | None,
) -> None:
    from abmigrate.apply import journal
    from abmigrate.apply.incident import write_incident

    if isinstance(exc, AbmigrateError):
        error = exc.message + (f"\nhint: {exc.hint}" if exc.hint else "")
    elif isinstance(exc, KeyboardInterrupt):
        error = "interrupted (Ctrl-C)"
    else:
        error = scrub(f"{type(exc).__name__}: {exc}", workspace.url)
    if isinstance(exc, MigrationFailed) and exc.revision:
        failed_revision = exc.revision
    try:
        current: list[str] | None = (
            read_version_rows(workspace.url, workspace.project.version_table) or []
        )
    except AbmigrateError:
        current = None
    dialect = workspace.environment.dialect
    if failed_revision is None:
        partial = "no revision was in flight: nothing was half applied"
    elif not dialect_for(dialect).transactional_ddl:
        partial = (
            f"partially applied: {dialect} runs DDL outside transactions, so part of"
            f" {failed_revision} may be in the database"
        )
    else:
        partial = (
            f"{failed_revision} was rolled back with its transaction (unless it used an"
            " autocommit block, whose statements committed on their own)"
        )
    run.outcome, run.finished_at = "failed", journal.now_iso()
    run.error = error.splitlines()[0] if error else None
    run.applied, run.to_revisions, run.in_flight = list(applied), current or [], failed_revision
    path = None
    try:
        path = write_incident(
            workspace,
            run,
            error=error,
            failed_revision=failed_revision,
            current=current,
            partial=partial,
        )
        run.incident_path = str(path)
    except OSError:
        pass
    book.finish(run)
    notes = []
    if run.backup:
        notes.append(f"backup taken before the run: {run.backup.get('id')}")
    if path is not None:
        notes.append(f"incident report: {path}")
    if isinstance(exc, MigrationFailed) and path is not None:
        exc.incident_path = str(path)
    if isinstance(exc, AbmigrateError) and notes:
        exc.hint = (exc.hint + " " if exc.hint else "") + "(" + "; ".join(notes) + ")"
