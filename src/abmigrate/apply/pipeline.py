"""The guarded pipeline behind ``upgrade`` and ``downgrade``, in every environment:

resolve environment → show target and policy → migration lock → graph and state checks →
plan (lint findings and preflight where available; data-loss estimate for downgrades) →
policy gate → typed confirmation → backup → apply → verify → journal, and on failure an
incident report.

The policy decides which steps bite. An environment is *guarded* when its policy requires
confirmation or forbids destructive changes (production and staging by default): there,
lint errors, changed scripts and partially applied revisions refuse the run instead of
warning. Every refusal can be overridden with ``override=REASON``, which is recorded in the
journal and the result.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
from abmigrate.results import AppliedStep, Direction, Plan, RunResult, Step

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from abmigrate.apply.runner import Notify, ProgressCallback, StepCallback
    from abmigrate.bridge.types import RevisionStep
    from abmigrate.config.workspace import Workspace

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
    progress: ProgressCallback | None = None
    notify: Notify | None = None
    warnings: list[str] = field(default_factory=list)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("abmigrate", "alembic", "sqlalchemy"):
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


def guarded(workspace: Workspace) -> bool:
    policy = workspace.environment.policy
    return policy.require_confirmation or not policy.allow_destructive


def run_pipeline(
    workspace: Workspace, direction: Direction, target: str, options: RunOptions
) -> RunResult:
    from dataclasses import replace

    from abmigrate.db.lock import MigrationLock

    if options.lock_wait_ms is not None:
        # --lock-wait bounds every wait for a lock: the migration lock and the table locks.
        policy = replace(workspace.environment.policy, lock_wait_ms=options.lock_wait_ms)
        workspace = replace(workspace, environment=replace(workspace.environment, policy=policy))
    environment = workspace.environment
    notify = options.notify or (lambda event, details: None)
    if environment.policy.require_confirmation and options.confirm is None and not options.dry_run:
        # Refused before anything else: a run nobody can confirm must not even take the lock.
        raise _nobody_to_confirm(direction, environment.name)
    wait_ms = (
        options.lock_wait_ms
        if options.lock_wait_ms is not None
        else environment.policy.lock_wait_ms
    )

    def waiting(holder: dict[str, Any]) -> None:
        notify("lock_wait", {"holder": holder, "wait_s": wait_ms / 1000})

    with MigrationLock(workspace.url, wait_ms=wait_ms, on_wait=waiting) as lock:
        notify("locked", {"waited_s": round(lock.waited_s, 2)})
        return _locked(workspace, direction, target, options, notify)


def _locked(
    workspace: Workspace,
    direction: Direction,
    target: str,
    options: RunOptions,
    notify: Notify,
) -> RunResult:
    from abmigrate.apply import journal

    environment = workspace.environment
    policy = environment.policy
    project = workspace.project
    warnings = list(options.warnings)
    refusals: list[tuple[str, str]] = []
    strict = guarded(workspace)

    # -- graph and state checks ------------------------------------------------------
    problems = project.graph_problems()
    blocking = [p for p in problems if p.code in _BLOCKING_GRAPH_PROBLEMS]
    if blocking:
        raise GraphError(
            f"the revision graph is broken: {blocking[0].message}",
            hint="run `abmigrate status` for every problem; fix the scripts first",
            heads=project.heads(),
        )
    from abmigrate.db.database import sqlite_path

    sqlite_file = sqlite_path(workspace.url)
    # A SQLite database that does not exist yet holds nothing to lose (and nothing to dump).
    nothing_to_lose = sqlite_file is not None and not sqlite_file.exists()
    if not nothing_to_lose:
        # env.py runs once without executing anything: it must reach this database (else
        # WrongDatabase, exit 2, before any backup or revision), and it says where it
        # records revisions. A missing SQLite file is not created by looking.
        project.probe()
    current = read_version_rows(workspace.url, workspace.project.version_table) or []
    runs = journal.read_runs(workspace.url, schema=workspace.project.version_table.schema)
    known = [revision for revision in current if project.known(revision)]
    applied_set = project.applied_set(known)
    changed = journal.checksum_mismatches(workspace, runs, applied_set)
    for revision in sorted(changed):
        message = (
            f"revision {revision}'s script changed after it was applied"
            " (its sha256 differs from the journal's)"
        )
        warnings.append(message)
        if strict:
            refusals.append(("checksum", message))
    partial = journal.interrupted_or_partial(runs, environment.dialect, applied_set)
    if partial:
        warnings.append(partial)
        if strict and "partially applied" in partial:
            refusals.append(("partial", partial))

    # -- plan, lint, preflight, data loss ----------------------------------------------
    plan, steps = build_plan(workspace, direction, target, current=current, with_sql=True)
    if not plan.steps:
        return RunResult(
            environment=environment.name,
            database=environment.masked_url,
            direction=direction,
            from_revisions=current,
            to_revisions=current,
            applied=[],
            elapsed_s=0.0,
            dry_run=options.dry_run,
            target=target,
            warnings=warnings,
        )
    # Announced once there is something to do: an error (bad target, no connection) stays
    # the first line a user reads.
    notify("target", environment.to_record())
    # An analysis that cannot run must not let a guarded run through unguarded: there it is
    # a refusal (overridable), in development a warning.
    for failed in _analyse(workspace, plan, steps):
        warnings.append(failed)
        if strict:
            refusals.append(("analysis", failed))
    if direction == "downgrade":
        from abmigrate.apply.data_loss import estimate_data_loss

        try:
            plan.data_loss = estimate_data_loss(workspace, plan)
        except AbmigrateError:
            raise
        except Exception as exc:
            failed = _analysis_failure("the data-loss estimate", plan, exc, workspace)
            warnings.append(failed)
            if strict:
                refusals.append(("analysis", failed))
    if direction == "downgrade":
        # What a rollback will run is shown before anything else is decided about it.
        notify(
            "downgrade_sql",
            {
                "steps": [
                    {
                        "revision": step.revision,
                        "message": step.message,
                        "sql": step.sql,
                        "error": step.sql_error,
                    }
                    for step in plan.steps
                ],
                "data_loss": plan.data_loss,
            },
        )
    findings = [
        {**finding, "revision": finding.get("revision", step.revision)}
        for step in plan.steps
        for finding in step.findings
    ]
    # Will the schema at the target match the models? Guarded environments (and
    # verify_models = "fail", which gates on it) replay the revisions when the cache lacks
    # the answer; elsewhere a prediction not cached is only reported as such.
    from abmigrate.apply.model_prediction import predict_models

    plan.models = predict_models(workspace, plan, replay=strict or policy.verify_models == "fail")
    if plan.models is not None and not plan.models.get("not_cached"):
        # A development run that may not replay does not nag about it: the verification
        # after the run compares the models with the database anyway.
        notify("models_predicted", plan.models)
    # Model differences already there before the run never fail it (read from the live
    # database now, before anything changes).
    drift_before = _drift_before(workspace, direction, target)

    # -- policy gate ---------------------------------------------------------------------
    if direction == "upgrade" and policy.maintenance_window:
        from datetime import UTC, datetime

        from abmigrate.apply.window import in_window

        if not in_window(policy.maintenance_window):
            now = datetime.now(UTC).strftime("%a %H:%M UTC")
            refusals.append(
                (
                    "maintenance_window",
                    f"outside the maintenance window {policy.maintenance_window!r} (now {now})",
                )
            )
    errors = [f for f in findings if f.get("severity") == "error"]
    if errors and not policy.allow_destructive:
        refusals.append(
            (
                "lint",
                f"{len(errors)} error finding(s): "
                + "; ".join(
                    f"{f.get('revision')} {f.get('code')}"
                    + (
                        f" ({f['judged']['reason']})"
                        if (f.get("judged") or {}).get("reason")
                        else ""
                    )
                    for f in errors[:5]
                ),
            )
        )
    # Data preflight counted live rows a step would fail on (NULLs before NOT NULL,
    # duplicates before UNIQUE, orphans before a foreign key …): refuse before anything runs,
    # rather than fail half way (SQLite and MariaDB cannot roll DDL back).
    doomed = [
        f"{step.revision}: {check.get('message')}"
        for step in plan.steps
        for check in step.preflight
        if check.get("ok") is False
    ]
    if doomed:
        refusals.append(("preflight", "preflight predicts failure: " + "; ".join(doomed[:5])))
    destructive = [f for f in findings if f.get("destructive")]
    if not policy.allow_destructive:
        if destructive:
            refusals.append(
                (
                    "destructive",
                    f"{environment.name} forbids destructive changes: "
                    + "; ".join(
                        f"{f.get('revision')}: {f.get('message')}" for f in destructive[:5]
                    ),
                )
            )
        # A downgrade that drops tables or columns holding data destroys it; dropping
        # empty ones (or indexes, constraints) loses nothing a backup would be needed for.
        losing = [loss for loss in plan.data_loss if loss.get("rows") != 0]
        if losing:
            refusals.append(
                (
                    "destructive",
                    f"{environment.name} forbids destructive changes and this downgrade"
                    " destroys data: " + "; ".join(loss["message"] for loss in losing[:5]),
                )
            )
    refused_models = _predicted_failure(plan, drift_before, policy.verify_models)
    if refused_models:
        refusals.append(("models", refused_models))
    take_backup = policy.require_backup and not options.dry_run and not nothing_to_lose
    if options.no_backup and policy.require_backup and not nothing_to_lose:
        refusals.append(
            (
                "backup",
                f"--no-backup refused: {environment.name}'s policy requires a backup"
                f" before {direction}",
            )
        )
        take_backup = False
    overrides: list[dict[str, str]] = []
    if refusals:
        if not options.override:
            raise GuardRefused(
                f"{direction} of {environment.name} refused by its policy",
                hint="fix the causes, or pass --override REASON to go on (the reason is"
                " recorded in the journal)",
                reasons=[message for _, message in refusals],
            )
        overrides = [
            {"gate": gate, "refused": message, "reason": options.override}
            for gate, message in refusals
        ]
        notify("override", {"overrides": overrides})
    # Overriding the predicted models' differences accepts them: the verification after the
    # run warns about them instead of failing a run whose revisions are in.
    overridden_drift = (
        list((plan.models or {}).get("differences") or [])
        if any(gate == "models" for gate, _ in refusals)
        else []
    )

    # -- confirmation ------------------------------------------------------------------
    # Destroying data asks first in every environment; an empty table is no loss.
    needs_confirmation = policy.require_confirmation or any(
        loss.get("rows") != 0 for loss in plan.data_loss
    )
    if needs_confirmation and not options.dry_run:
        if options.confirm is None:
            raise _nobody_to_confirm(direction, environment.name)
        if not options.confirm(plan):
            raise GuardRefused("not confirmed; nothing was changed", reasons=["not confirmed"])

    if options.dry_run:
        return _dry_run(
            workspace,
            plan,
            steps,
            options,
            notify,
            target,
            overrides,
            findings,
            warnings,
            {"drift_before": drift_before, "drift_overridden": overridden_drift},
        )

    # -- journal, backup, apply, verify --------------------------------------------------
    from abmigrate.db.lock import actor

    run: dict[str, Any] = {
        "run_id": journal.new_run_id(),
        "environment": environment.name,
        "database": environment.masked_url,
        "dialect": environment.dialect,
        "direction": direction,
        "target": target,
        "from_revisions": current,
        "to_revisions": current,
        "planned": [step.revision for step in plan.steps],
        "applied": [],
        "in_flight": None,
        "started_at": journal.now_iso(),
        "finished_at": None,
        "outcome": "running",
        "error": None,
        "backup": None,
        "actor": actor(),
        "versions": _versions(),
        "overrides": overrides,
        "warnings": warnings,
        "data_loss": plan.data_loss,
        "models_prediction": plan.models,
    }
    book = journal.Journal(workspace)
    book.start(run)
    started = time.monotonic()
    applied: list[AppliedStep] = []
    failed_revision: str | None = None

    # The journal row is rewritten inside each revision's own transaction (it commits with
    # the revision, at no extra commit), naming the next revision as in flight: if the
    # process dies during it, the journal already says which one may be half applied.
    order = [step.revision for step in plan.steps]
    applied_records: list[dict[str, Any]] = []
    # The run's row is rewritten at most once a second (and at the last revision): rewriting
    # the whole record at every revision of a long plan cost more than the migrations.
    # Where DDL is transactional a revision killed half way is rolled back, so the row may
    # lag the version table; elsewhere it must name the revision in flight exactly, so in
    # between only its in_flight column is updated.
    transactional = dialect_for(environment.dialect).transactional_ddl
    last_written = [time.monotonic()]

    def on_step(event: str, step: Step, connection: Connection | None) -> None:
        nonlocal failed_revision
        if event == "start":
            run["in_flight"] = failed_revision = step.revision
            return
        failed_revision = None
        position = order.index(step.revision) + 1 if step.revision in order else len(order)
        run["in_flight"] = order[position] if position < len(order) else None
        # Only the new steps are serialised: re-serialising the whole list at every step
        # made a long plan quadratic.
        applied_records.extend(item.to_record() for item in applied[len(applied_records) :])
        run["applied"] = applied_records
        last = position >= len(order)
        if not last and time.monotonic() - last_written[0] < 1.0:
            if not transactional:
                book.mark_in_flight(run, within=connection)
            return
        book.update(run, within=connection)
        last_written[0] = time.monotonic()

    try:
        if take_backup:
            notify("backup_start", {})
            run["backup"] = _backup(workspace, direction)
            notify("backup_done", {"backup": run["backup"]})
            book.update(run)
        schema_before = _schema_before(workspace, plan)
        run["in_flight"] = order[0]
        book.update(run)
        result = _apply(workspace, plan, steps, options, notify, applied, on_step)
        applied_records.extend(item.to_record() for item in applied[len(applied_records) :])
        run["applied"] = applied_records
        verification = verify(
            workspace,
            plan,
            notify,
            drift_before=drift_before,
            schema_before=schema_before,
            drift_overridden=overridden_drift,
        )
        run["verification"] = verification
        warnings.extend(verification["warnings"])
        if not verification["ok"]:
            raise MigrationFailed(
                f"{direction} applied, but verification failed: "
                + _problems_line(verification["problems"]),
                hint="see the incident report for the rollback command and the backup",
                current=result.to_revisions,
            )
    except BaseException as exc:
        _record_failure(workspace, run, book, applied, exc, failed_revision)
        raise
    run.update(
        outcome="succeeded",
        finished_at=journal.now_iso(),
        to_revisions=result.to_revisions,
        in_flight=None,
    )
    book.finish(run)
    warnings.extend(book.errors)
    result.elapsed_s = round(time.monotonic() - started, 4)
    result.run_id = run["run_id"]
    result.backup = run["backup"]
    result.warnings = warnings
    result.verification = verification
    result.target = target
    result.overrides = overrides
    result.findings = findings
    result.data_loss = plan.data_loss
    result.models_prediction = plan.models
    result.journal = str(workspace.settings.journal_log)
    return result


def _dry_run(
    workspace: Workspace,
    plan: Plan,
    steps: list[RevisionStep],
    options: RunOptions,
    notify: Notify,
    target: str,
    overrides: list[dict[str, str]],
    findings: list[dict[str, Any]],
    warnings: list[str],
    known_drift: dict[str, Any],
) -> RunResult:
    """Apply and undo (abmigrate.apply.dry_run); the local journal log records the attempt."""
    from abmigrate.apply import journal
    from abmigrate.apply.dry_run import dry_run
    from abmigrate.db.lock import actor

    record: dict[str, Any] = {
        "run_id": journal.new_run_id(),
        "dry_run": True,
        "environment": workspace.environment.name,
        "database": workspace.environment.masked_url,
        "direction": plan.direction,
        "target": target,
        "from_revisions": plan.current,
        "to_revisions": plan.current,
        "planned": [step.revision for step in plan.steps],
        "started_at": journal.now_iso(),
        "actor": actor(),
        "versions": _versions(),
        "overrides": overrides,
    }
    book = journal.Journal(workspace)
    try:
        result = dry_run(
            workspace, plan, steps, progress=options.progress, notify=notify, **known_drift
        )
        if not result.verification["ok"]:
            raise MigrationFailed(
                f"dry run: the {plan.direction} applied, but verification would fail: "
                + _problems_line(result.verification["problems"]),
                hint="nothing was changed (the dry run undid its work); fix the migration or"
                " the models first",
                current=plan.current,
            )
    except AbmigrateError as exc:
        record.update(outcome="dry run failed", error=exc.message, finished_at=journal.now_iso())
        book.log_only(record)
        raise
    record.update(
        outcome="dry run succeeded",
        finished_at=journal.now_iso(),
        applied=[step.to_record() for step in result.applied],
        skipped=result.skipped,
        method=result.dry_run_method,
    )
    book.log_only(record)
    result.warnings = [
        *warnings,
        *result.warnings,
        *result.verification.get("warnings", []),
        *book.errors,
    ]
    result.target = target
    result.overrides = overrides
    result.findings = findings
    result.data_loss = plan.data_loss
    result.models_prediction = plan.models
    result.run_id = record["run_id"]
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


def _predicted_failure(
    plan: Plan, drift_before: list[str] | None, verify_models: str
) -> str | None:
    """With ``verify_models = "fail"``: the refusal when the models' differences predicted
    at the target would fail the verification after the run (those already in the database
    before it would not, so they do not refuse it either)."""
    from abmigrate.apply.verify import counted

    prediction = plan.models or {}
    if verify_models != "fail" or prediction.get("status") != "differ":
        return None
    earlier = set(drift_before or ())
    new = [d for d in prediction.get("differences") or [] if d not in earlier]
    if not new:
        return None
    return (
        counted(
            "predicted: the schema at"
            f" {', '.join(plan.target_revisions)} will differ from the models",
            new,
            str(prediction.get("command")),
        )
        + '; verify_models = "fail" would fail the run after the revisions are in'
    )


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
    from abmigrate.backup import backup_for_pipeline

    # A backup that cannot be taken or does not verify raises BackupError: nothing changed.
    return backup_for_pipeline(workspace, reason=f"pre-{direction}").to_record()


def _apply(
    workspace: Workspace,
    plan: Plan,
    steps: list[RevisionStep],
    options: RunOptions,
    notify: Notify,
    applied: list[AppliedStep],
    on_step: StepCallback,
) -> RunResult:
    from abmigrate.apply.runner import apply_plan

    return apply_plan(
        workspace,
        plan,
        steps,
        progress=options.progress,
        notify=notify,
        applied=applied,
        on_step=on_step,
    )


def _record_failure(
    workspace: Workspace,
    run: dict[str, Any],
    book: Any,
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
    run.update(
        outcome="failed",
        finished_at=journal.now_iso(),
        error=error.splitlines()[0] if error else None,
        applied=[item.to_record() for item in applied],
        to_revisions=current or [],
        in_flight=failed_revision,
    )
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
        run["incident_path"] = str(path)
    except OSError:
        pass
    book.finish(run)
    notes = []
    if run.get("backup"):
        notes.append(f"backup taken before the run: {run['backup'].get('id')}")
    if path is not None:
        notes.append(f"incident report: {path}")
    if isinstance(exc, MigrationFailed) and path is not None:
        exc.incident_path = str(path)
    if isinstance(exc, AbmigrateError) and notes:
        exc.hint = (exc.hint + " " if exc.hint else "") + "(" + "; ".join(notes) + ")"
