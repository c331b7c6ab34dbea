"""One function per command. Each returns a result record and never prints.

The CLI is a thin layer over these; a Python user calls the same functions::

    from abmigrate import Workspace, api
    workspace = Workspace.open(env="development")
    print(api.status(workspace).state)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abmigrate.bridge.plan import build_plan, message_of, plan_from_cache, unknown_revisions
from abmigrate.config.workspace import Workspace
from abmigrate.db.database import read_version_rows
from abmigrate.errors import AbmigrateError, GuardRefused, RevisionError
from abmigrate.results import (
    BackupList,
    BackupRecord,
    BackupVerification,
    CurrentResult,
    Direction,
    HeadsResult,
    HistoryEntry,
    HistoryResult,
    JournalResult,
    JournalRun,
    MigrationReport,
    PendingRevision,
    Plan,
    RestoreResult,
    RevisionCreated,
    RunResult,
    StampResult,
    Status,
)

if TYPE_CHECKING:
    # The pipeline and the checks are imported where they run: `status`, `heads` and
    # `history` import neither (nor what they import: asyncio, SQLAlchemy).
    from abmigrate.apply.pipeline import ConfirmCallback, RunOptions
    from abmigrate.backup.operations import RestoreConfirm
    from abmigrate.bridge.project import AlembicProject
    from abmigrate.check.checks import CheckContext, CheckReport
    from abmigrate.events import Observer
    from abmigrate.lint import LintResult
    from abmigrate.rehearse.rehearsal import Rehearsal
    from abmigrate.state.diagnose import Diagnosis
    from abmigrate.state.drift import DriftReport
    from abmigrate.state.graph import RevisionGraph

__all__ = [
    "ConfirmCallback",
    "acknowledge_checksums",
    "backup",
    "backups",
    "capture",
    "check",
    "current",
    "diagnose",
    "downgrade",
    "drift",
    "graph",
    "heads",
    "history",
    "journal",
    "journal_run",
    "lint",
    "merge",
    "plan",
    "rehearse",
    "report",
    "restore",
    "revision",
    "stamp",
    "status",
    "upgrade",
    "verify_backup",
]


def current(workspace: Workspace) -> CurrentResult:
    """The revisions the database records (`alembic current`); read-only."""
    rows = workspace.recorded_revisions()
    return CurrentResult(
        environment=workspace.environment.name,
        database=workspace.environment.masked_url,
        dialect=workspace.environment.dialect,
        current=rows or [],
        initialized=rows is not None and bool(rows),
        unknown=unknown_revisions(workspace.project, rows or []),
    )


def status(workspace: Workspace) -> Status:
    """Where the database stands: its revisions, the heads, what is pending, the state
    (uninitialized, behind, up_to_date, unknown_revision), the last run and last backup; read-only."""
    project = workspace.project
    heads = project.heads()  # the graph first: the database may still be read ahead
    rows = workspace.recorded_revisions()
    current_revisions = rows or []
    unknown = unknown_revisions(project, current_revisions)
    pending: list[PendingRevision] = []
    if unknown:
        state = "unknown_revision"
    else:
        pending = [
            PendingRevision(revision.revision, message_of(revision.doc))
            for revision in project.pending(current_revisions)
        ]
        if not current_revisions:
            state = "uninitialized"
        elif pending:
            state = "behind"
        else:
            state = "up_to_date"
    last_run, warnings = _journal_view(workspace, current_revisions, unknown)
    return Status(
        environment=workspace.environment.name,
        database=workspace.environment.masked_url,
        dialect=workspace.environment.dialect,
        current=current_revisions,
        heads=heads,
        pending=pending,
        state=state,  # type: ignore[arg-type]
        unknown=unknown,
        graph_problems=[problem.to_record() for problem in project.graph_problems()],
        branches=_branches(project),
        last_run=last_run,
        warnings=warnings,
        last_backup=_last_backup(workspace),
    )


def _last_backup(workspace: Workspace) -> dict[str, object] | None:
    if not workspace.settings.backup_dir.absolute().is_dir():
        return None  # no backup yet; the backup package (and SQLAlchemy) stays unimported
    from abmigrate.backup.manifest import last_backup

    return last_backup(workspace.settings.backup_dir, workspace.environment.name)


def _journal_view(
    workspace: Workspace, current: list[str], unknown: list[str]
) -> tuple[dict[str, Any] | None, list[str]]:
    """The last run (summary) and the journal's warnings: changed scripts, partial runs."""
    from abmigrate.apply import journal_view

    schema = workspace.journal_schema()
    # Through the driver alone where it can (no SQLAlchemy): see abmigrate.apply.journal_view.
    runs = journal_view.peek_runs(workspace.url, schema)
    if runs is None:
        from abmigrate.apply import journal as journal_module

        runs = journal_module.read_runs(workspace.url, schema=schema)
    last = next((run for run in runs if run.is_migration), None)
    last_run = None
    if last is not None:
        last_run = {
            "run_id": last.run_id,
            "direction": last.direction,
            "outcome": last.outcome,
            "started_at": last.started_at,
            "finished_at": last.finished_at,
            "in_flight": last.in_flight,
            "error": last.error,
            "by": last.actor.get("user"),
            "revisions": len(last.applied),
            "planned": len(last.planned),
        }
    applied = workspace.project.applied_set([r for r in current if r not in unknown])
    warnings = [
        f"revision {revision}'s script changed after it was applied (journal sha256"
        f" {recorded[:12]}, file {(now or 'missing')[:12]}); review it, then"
        " `abmigrate journal --acknowledge-checksums --reason ...`"
        for revision, (recorded, now) in sorted(
            journal_view.checksum_mismatches(workspace, runs, applied).items()
        )
    ]
    partial = journal_view.interrupted_or_partial(runs, workspace.environment.dialect, applied)
    if partial:
        warnings.append(partial)
    return last_run, warnings


def history(workspace: Workspace, *, with_database: bool = True) -> HistoryResult:
    """Every revision, newest first (`alembic history`), marked applied or not when
    ``with_database``; read-only."""
    project = workspace.project
    scripts = project.history()  # the graph first: the database may still be read ahead
    applied: set[str] | None = None
    if with_database:
        rows = read_version_rows(workspace.url, workspace.project.version_table) or []
        known_rows = [row for row in rows if project.known(row)]
        applied = project.applied_set(known_rows)
    entries = [
        HistoryEntry(
            revision=script.revision,
            down_revisions=list(script.down_revisions),
            message=message_of(script.doc),
            is_head=script.is_head,
            is_merge=script.is_merge_point,
            applied=None if applied is None else script.revision in applied,
            path=script.path,
        )
        for script in scripts
    ]
    return HistoryResult(
        environment=workspace.environment.name if with_database else None,
        database=workspace.environment.masked_url if with_database else None,
        entries=entries,
    )


def graph(workspace: Workspace, *, with_database: bool = True) -> RevisionGraph:
    """The revision graph, newest first: heads, roots, merges, branch labels, the graph's
    problems and, ``with_database``, which revisions are applied, pending or unknown;
    read-only."""
    from abmigrate.state.graph import revision_graph

    environment = workspace.environment
    if not with_database:
        return revision_graph(workspace.project, None)
    return revision_graph(
        workspace.project,
        workspace.recorded_revisions() or [],
        environment=environment.name,
        database=environment.masked_url,
    )


def heads(workspace: Workspace) -> HeadsResult:
    """The head revisions, whether there are several (`alembic heads`) and, when they are
    several by design, each one's branch labels."""
    project = workspace.project
    revisions = [
        PendingRevision(head, message_of(project.describe(head).doc)) for head in project.heads()
    ]
    return HeadsResult(heads=revisions, multiple=len(revisions) > 1, branches=_branches(project))


def _branches(project: AlembicProject) -> dict[str, list[str]]:
    """Each head's branch labels when the history has several heads by design."""
    return {head: list(labels) for head, labels in (project.labelled_heads() or {}).items()}


def plan(
    workspace: Workspace,
    target: str | None = None,
    *,
    direction: Direction = "upgrade",
    sql: bool = False,
    models: bool = False,
) -> Plan:
    """The plan to ``target``, with lint findings, data preflight, the data-loss estimate
    of a downgrade and, for an upgrade to the head, whether the schema there will match the
    models: from the cache, or (``models=True``) replaying the revisions on a scratch
    database when the cache does not have it."""
    if target is None:
        if direction == "downgrade":
            raise RevisionError("downgrade needs a target", hint="e.g. -1, a revision id, or base")
        target = workspace.project.default_target()
    current = read_version_rows(workspace.url, workspace.project.version_table) or []
    cached = None
    if direction == "upgrade":
        cached = plan_from_cache(workspace, target, current, with_sql=sql)
    built = cached or build_plan(workspace, direction, target, current=current, with_sql=sql)[0]
    _analyse(workspace, built)
    if direction == "downgrade":
        from abmigrate.apply.data_loss import estimate_data_loss

        # The same estimate `downgrade` gates on, so the preview says what would be lost.
        built.data_loss = estimate_data_loss(workspace, built)
    from abmigrate.apply.model_prediction import predict_models

    built.models = predict_models(workspace, built, replay=models)
    return built


def _analyse(workspace: Workspace, built: Plan) -> None:
    """Findings per step, and data preflight when the database answers (read-only)."""
    from abmigrate.lint import analyse_plan

    analyse_plan(workspace, built, [])


def lint(
    workspace: Workspace,
    revisions: Sequence[str] = (),
    *,
    since: str | None = None,
    changed_from: str | None = None,
) -> LintResult:
    """Lint revisions (default: all), each on its own; reads no database."""
    from abmigrate.lint import lint_workspace
    from abmigrate.lint.selection import select_revisions

    selected = select_revisions(
        workspace.project, revisions, since=since, changed_from=changed_from
    )
    # The command's own lint (what it returns has no parse trees to keep): the one a cold
    # checkout waits for, so a long walk may use a second core.
    return lint_workspace(workspace, selected, graph=True, parallel=True)


def upgrade(
    workspace: Workspace,
    target: str | None = None,
    *,
    confirm: ConfirmCallback | None = None,
    observer: Observer | None = None,
    dry_run: bool = False,
    override: str | None = None,
    no_backup: bool = False,
    lock_wait_ms: int | None = None,
) -> RunResult:
    """The guarded pipeline (see abmigrate.apply.pipeline) up to ``target``; without one,
    to the head, or to every head when the history has several by design (labelled
    branches: ``AlembicProject.default_target``)."""
    from abmigrate.apply.pipeline import RunOptions

    return _migrate(
        workspace,
        "upgrade",
        target or workspace.project.default_target(),
        RunOptions(
            dry_run=dry_run,
            override=override,
            no_backup=no_backup,
            lock_wait_ms=lock_wait_ms,
            confirm=confirm,
            observer=observer,
        ),
    )


def downgrade(
    workspace: Workspace,
    target: str,
    *,
    confirm: ConfirmCallback | None = None,
    observer: Observer | None = None,
    dry_run: bool = False,
    override: str | None = None,
    no_backup: bool = False,
    lock_wait_ms: int | None = None,
) -> RunResult:
    """The guarded pipeline down to ``target``, with a data-loss estimate first."""
    from abmigrate.apply.pipeline import RunOptions

    return _migrate(
        workspace,
        "downgrade",
        target,
        RunOptions(
            dry_run=dry_run,
            override=override,
            no_backup=no_backup,
            lock_wait_ms=lock_wait_ms,
            confirm=confirm,
            observer=observer,
        ),
    )


def _migrate(
    workspace: Workspace, direction: Direction, target: str, options: RunOptions
) -> RunResult:
    if options.override is not None and not options.override.strip():
        raise GuardRefused(
            "an override needs a reason", hint="--override 'why this is safe'", reasons=[]
        )
    from abmigrate.apply.pipeline import run_pipeline

    return run_pipeline(workspace, direction, target, options)


def journal(workspace: Workspace, *, limit: int = 20, local: bool = False) -> JournalResult:
    """The runs recorded for the environment (newest first)."""
    from abmigrate.apply import journal as journal_module

    if local:
        runs = journal_module.read_local_log(workspace.settings.journal_log, limit=limit)
        source = str(workspace.settings.journal_log)
    else:
        runs = journal_module.read_runs(
            workspace.url, limit=limit, schema=workspace.journal_schema()
        )
        source = journal_module.JOURNAL_TABLE
    return JournalResult(
        environment=workspace.environment.name,
        database=workspace.environment.masked_url,
        source=source,
        runs=runs,
    )


def journal_run(workspace: Workspace, run_id: str, *, local: bool = False) -> JournalRun:
    """One run of the journal, whole: ``run_id`` is the id, a unique prefix of it, or of
    the random part after the date that `journal` shows (``5505b2ad``)."""
    from abmigrate.apply import journal as journal_module

    if local:
        runs = [
            run
            for run in journal_module.read_local_log(workspace.settings.journal_log)
            if journal_module.matches_run_id(run.run_id, run_id)
        ]
        source = str(workspace.settings.journal_log)
    else:
        runs = journal_module.find_runs(workspace.url, run_id, schema=workspace.journal_schema())
        source = journal_module.JOURNAL_TABLE
    if not runs:
        raise AbmigrateError(
            f"no run {run_id!r} in the journal of {workspace.environment.name} ({source})",
            hint="`abmigrate journal` lists the runs"
            + ("" if local else "; --local reads the local log"),
        )
    if len(runs) > 1:
        raise AbmigrateError(
            f"{run_id!r} matches {len(runs)} runs: "
            + ", ".join(run.run_id for run in runs[:10])
            + (" …" if len(runs) > 10 else ""),
            hint="give more of the run id",
        )
    return JournalRun(
        environment=workspace.environment.name,
        database=workspace.environment.masked_url,
        source=source,
        run=runs[0],
    )


def acknowledge_checksums(workspace: Workspace, reason: str) -> JournalResult:
    """Accept the current scripts of applied revisions whose checksum changed (recorded)."""
    from abmigrate.apply import journal as journal_module
    from abmigrate.apply.journal_view import script_sha256

    if not reason.strip():
        raise GuardRefused("acknowledging changed scripts needs a reason", reasons=[])
    runs = journal_module.read_runs(workspace.url, schema=workspace.journal_schema())
    rows = read_version_rows(workspace.url, workspace.project.version_table) or []
    applied = workspace.project.applied_set([r for r in rows if workspace.project.known(r)])
    changed = journal_module.checksum_mismatches(workspace, runs, applied)
    record = None
    if changed:
        digests = {
            revision: script_sha256(workspace.project.get(revision).path) for revision in changed
        }
        record = journal_module.Journal(workspace).acknowledge(workspace, digests, reason)
    return JournalResult(
        environment=workspace.environment.name,
        database=workspace.environment.masked_url,
        source=journal_module.JOURNAL_TABLE,
        runs=[record] if record else [],
    )


def revision(workspace: Workspace, message: str, *, autogenerate: bool = False) -> RevisionCreated:
    """A new revision file (`alembic revision [--autogenerate]`), linted at once."""
    created = workspace.project.new_revision(message, autogenerate=autogenerate)
    if not created:
        raise RevisionError("alembic created no revision file")
    script = created[0]
    from abmigrate.lint import lint_workspace

    # The new file is linted at once, so autogenerate's drop+add "renames" show up now.
    findings = lint_workspace(workspace, {script.revision}, graph=False).findings
    return RevisionCreated(
        revision=script.revision,
        message=message_of(script.doc),
        path=str(Path(script.path)),
        down_revisions=list(script._normalized_down_revisions),
        findings=list(findings),
    )


def merge(
    workspace: Workspace, message: str | None = None, revisions: Sequence[str] = ()
) -> RevisionCreated:
    """A merge revision of ``revisions``, or of the heads to merge (`alembic merge heads`,
    but for heads in labelled branches: see ``AlembicProject.heads_to_merge``)."""
    script = workspace.project.merge_heads(message or "merge heads", revisions)
    return RevisionCreated(
        revision=script.revision,
        message=message_of(script.doc),
        path=str(Path(script.path)),
        down_revisions=list(script._normalized_down_revisions),
    )


def stamp(
    workspace: Workspace,
    revision: str,
    *,
    force: bool = False,
    reason: str | None = None,
) -> StampResult:
    """Record ``revision`` without running migrations — only if the live schema matches it.

    The live schema's fingerprint is compared with the one the migrations produce at
    ``revision``; any difference refuses the stamp (GuardRefused listing them) unless
    ``force`` is given with a ``reason``, which is recorded in the journal.
    """
    from abmigrate.apply.stamp_guard import check_stamp, record_forced_stamp

    if force and not (reason and reason.strip()):
        raise AbmigrateError(
            "--force needs --reason: say why the schema differences are acceptable",
            hint="e.g. --force --reason 'index added by hand during incident 42'",
        )
    before = workspace.recorded_revisions() or []
    revision = workspace.project.resolve_target(revision)
    differences = check_stamp(workspace, revision, force=force)
    # Rows naming revisions no script defines cannot be walked from: replace them outright.
    purge = bool(unknown_revisions(workspace.project, before))
    workspace.project.stamp(revision, purge=purge)
    result = StampResult(
        environment=workspace.environment.name,
        database=workspace.environment.masked_url,
        before=before,
        after=read_version_rows(workspace.url, workspace.project.version_table) or [],
        forced=force,
        reason=reason if force else None,
        differences=differences,
    )
    if force:
        record_forced_stamp(workspace, result)
    return result


def check(
    context: CheckContext, only: Sequence[str] | None = None, skip: Sequence[str] = ()
) -> CheckReport:
    """Run the named checks (default: every default check) and report each outcome."""
    from abmigrate.check.checks import run_checks

    return run_checks(context, only, skip)


def backup(workspace: Workspace) -> BackupRecord:
    """A verified backup of the environment's database (see abmigrate.backup)."""
    from abmigrate.backup.operations import take_backup

    return take_backup(workspace)


def backups(workspace: Workspace) -> BackupList:
    """The environment's backups, newest first. Needs no database: open the workspace with
    ``require_url=False`` to list them where the database is out of reach."""
    from abmigrate.backup.operations import list_backups

    return list_backups(workspace.settings, workspace.environment.name)


def verify_backup(
    workspace: Workspace,
    reference: str,
    *,
    restore_test: bool = False,
    scratch_url: str | None = None,
) -> BackupVerification:
    """Check a backup's checksums and archive; with ``restore_test``, restore it into a
    scratch database on ``scratch_url``'s server (default: the environment's server, or a
    temporary file for SQLite) and compare per-table figures. Needs no database otherwise."""
    from abmigrate.backup.operations import verify_backup as verify

    restore_url = (scratch_url or workspace.url or None) if restore_test else None
    return verify(
        workspace.settings,
        workspace.environment.name,
        reference,
        restore_test=restore_test,
        restore_url=restore_url,
    )


def restore(
    workspace: Workspace,
    reference: str,
    *,
    target_url: str | None = None,
    confirm: RestoreConfirm | None = None,
) -> RestoreResult:
    """Restore a backup into the environment's database (or ``target_url``); a database
    that is not empty is replaced only when ``confirm`` says so."""
    from abmigrate.backup.operations import restore as restore_backup

    return restore_backup(workspace, reference, target_url=target_url, confirm=confirm)


def diagnose(workspace: Workspace, *, with_models: bool = True) -> Diagnosis:
    """The database's real state, with evidence and the recommended command. Reads only."""
    from abmigrate.state.diagnose import diagnose as run_diagnosis

    return run_diagnosis(workspace, with_models=with_models)


def drift(workspace: Workspace, against: str = "models") -> DriftReport:
    """Live schema vs the models (``models``) or the schema at a revision. Reads only."""
    from abmigrate.state.drift import drift_report

    return drift_report(workspace, against)


def rehearse(
    workspace: Workspace,
    target: str | None = None,
    *,
    from_backup: str | None = None,
    clone: bool = False,
    scale_rows: int | None = None,
    observer: Observer | None = None,
) -> Rehearsal:
    """Apply the pending revisions to a scratch copy, measure them, downgrade, re-upgrade
    (``target``: as for :func:`upgrade`). The result is kept as the environment's last rehearsal, which ``report`` shows."""
    from abmigrate.rehearse.rehearsal import rehearse as run_rehearsal
    from abmigrate.rehearse.saved import save_rehearsal

    rehearsal = run_rehearsal(
        workspace,
        target or workspace.project.default_target(),
        from_backup=from_backup,
        clone=clone,
        scale_rows=scale_rows,
        observer=observer,
    )
    # Kept for `abmigrate report`, which shows the environment's last rehearsal.
    problem = save_rehearsal(workspace, rehearsal)
    if problem:
        rehearsal.warnings.append(problem)
    return rehearsal


def capture(workspace: Workspace, message: str) -> RevisionCreated:
    """Write a revision capturing the objects made by hand on a database recorded at head."""
    from abmigrate.state.capture import write_capture_revision

    return write_capture_revision(workspace, message)


def report(
    workspace: Workspace,
    *,
    rollback: str | None = "-1",
    rehearsal: dict[str, Any] | None = None,
    journal_limit: int = 30,
) -> MigrationReport:
    """Every part of a migration review, each from the record its own command returns: the
    status, the graph, the plan to the head with SQL, lint and preflight, the data-loss
    estimate of rolling back to ``rollback`` (None: none), the journal, the backups and a
    rehearsal: ``rehearsal`` (a record ``rehearse --format json`` printed), else the
    environment's last (``rehearse/saved.py``). Reads only; a part that fails is reported in
    ``errors`` instead."""
    from datetime import UTC, datetime
    from importlib.metadata import version

    environment = workspace.environment
    errors: dict[str, str] = {}

    def gather(part: str, produce: Callable[[], Any]) -> Any:
        try:
            return produce()
        except AbmigrateError as exc:
            errors[part] = exc.message + (f" (hint: {exc.hint})" if exc.hint else "")
            return None

    state = gather("status", lambda: status(workspace).to_record())
    current = (state or {}).get("current") or []
    if rehearsal is None:
        from abmigrate.rehearse.saved import last_rehearsal

        rehearsal = last_rehearsal(workspace)
        if rehearsal is not None and sorted(rehearsal.get("start") or []) != sorted(current):
            started = ", ".join(rehearsal.get("start") or []) or "an empty database"
            now = ", ".join(current) or "nothing"
            rehearsal["stale"] = (
                f"rehearsed from {started}; the database records {now} now: rehearse again"
                " for figures of the plan above"
            )
    target = "heads" if len(workspace.project.heads()) > 1 else "head"
    rollback_plan = None
    if rollback is not None and current and not (state or {}).get("unknown"):
        rollback_plan = gather(
            "rollback",
            lambda: plan(workspace, rollback, direction="downgrade").to_record(),
        )
    return MigrationReport(
        environment=environment.name,
        database=environment.masked_url,
        dialect=environment.dialect,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        version=version("abmigrate"),
        status=state,
        graph=gather("graph", lambda: graph(workspace).to_record()),
        plan=gather("plan", lambda: plan(workspace, target, sql=True).to_record()),
        rollback=rollback_plan,
        journal=gather(
            "journal", lambda: journal(workspace, limit=journal_limit).to_record()["runs"]
        ),
        backups=gather("backups", lambda: backups(workspace).to_record()["backups"]),
        rehearsal=rehearsal,
        errors=errors,
    )


def __getattr__(name: str) -> Any:
    # api.ConfirmCallback, resolved on first use (it lives with the pipeline).
    if name == "ConfirmCallback":
        from abmigrate.apply.pipeline import ConfirmCallback

        return ConfirmCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
