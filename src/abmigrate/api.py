"""One function per command. Each returns a result record and never prints.

The CLI is a thin layer over these; a Python user calls the same functions::

    from abmigrate import Workspace, api
    workspace = Workspace.open(env="development")
    print(api.status(workspace).state)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from abmigrate.checks import CheckContext, CheckReport, run_checks
from abmigrate.database import read_version_rows, sqlite_path
from abmigrate.errors import AbmigrateError, GuardRefused, RevisionError
from abmigrate.plan import build_plan, message_of, unknown_revisions
from abmigrate.results import (
    CurrentResult,
    Direction,
    HeadsResult,
    HistoryEntry,
    HistoryResult,
    PendingRevision,
    Plan,
    RevisionCreated,
    RunResult,
    StampResult,
    Status,
)
from abmigrate.runner import ProgressCallback, apply_plan
from abmigrate.workspace import Workspace

if TYPE_CHECKING:
    from alembic.runtime.migration import RevisionStep

    from abmigrate.diagnose import Diagnosis
    from abmigrate.drift import DriftReport
    from abmigrate.lint import LintResult
    from abmigrate.rehearse import Rehearsal, StepProgress

__all__ = [
    "ConfirmCallback",
    "capture",
    "check",
    "current",
    "diagnose",
    "downgrade",
    "drift",
    "heads",
    "history",
    "lint",
    "merge",
    "plan",
    "rehearse",
    "revision",
    "stamp",
    "status",
    "upgrade",
]

# Asked before a guarded change; returns True to go on. None means "nobody to ask".
ConfirmCallback = Callable[[Plan], bool]


def current(workspace: Workspace) -> CurrentResult:
    rows = read_version_rows(workspace.url)
    return CurrentResult(
        environment=workspace.environment.name,
        database=workspace.environment.masked_url,
        dialect=workspace.environment.dialect,
        current=rows or [],
        initialized=rows is not None and bool(rows),
        unknown=unknown_revisions(workspace.project, rows or []),
    )


def status(workspace: Workspace) -> Status:
    project = workspace.project
    rows = read_version_rows(workspace.url)
    current_revisions = rows or []
    heads = project.heads()
    unknown = unknown_revisions(project, current_revisions)
    pending: list[PendingRevision] = []
    if unknown:
        state = "unknown_revision"
    else:
        steps = project.upgrade_steps("heads", current_revisions)
        pending = [
            PendingRevision(step.revision.revision, message_of(step.revision.doc)) for step in steps
        ]
        if not current_revisions:
            state = "uninitialized"
        elif pending:
            state = "behind"
        else:
            state = "up_to_date"
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
        last_backup=_last_backup(workspace),
    )


def _last_backup(workspace: Workspace) -> dict[str, object] | None:
    from abmigrate.backup import last_backup

    return last_backup(workspace.settings, workspace.environment.name)


def history(workspace: Workspace, *, with_database: bool = True) -> HistoryResult:
    project = workspace.project
    applied: set[str] | None = None
    if with_database:
        rows = read_version_rows(workspace.url) or []
        known_rows = [row for row in rows if project.known(row)]
        applied = project.applied_set(known_rows)
    entries = [
        HistoryEntry(
            revision=script.revision,
            down_revisions=list(script._normalized_down_revisions),
            message=message_of(script.doc),
            is_head=script.is_head,
            is_merge=script.is_merge_point,
            applied=None if applied is None else script.revision in applied,
            path=script.path,
        )
        for script in project.revisions()
    ]
    return HistoryResult(
        environment=workspace.environment.name if with_database else None,
        database=workspace.environment.masked_url if with_database else None,
        entries=entries,
    )


def heads(workspace: Workspace) -> HeadsResult:
    project = workspace.project
    revisions = [
        PendingRevision(head, message_of(project.get(head).doc)) for head in project.heads()
    ]
    return HeadsResult(heads=revisions, multiple=len(revisions) > 1)


def plan(
    workspace: Workspace,
    target: str | None = None,
    *,
    direction: Direction = "upgrade",
    sql: bool = False,
) -> Plan:
    if target is None:
        if direction == "downgrade":
            raise RevisionError("downgrade needs a target", hint="e.g. -1, a revision id, or base")
        target = "head"
    built, steps = build_plan(workspace, direction, target, with_sql=sql)
    _analyse(workspace, built, steps)
    return built


def _analyse(workspace: Workspace, built: Plan, steps: list[RevisionStep]) -> None:
    """Findings per step, and data preflight when the database answers (read-only)."""
    from abmigrate.lint import analyse_plan

    analyse_plan(workspace, built, steps)


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
    return lint_workspace(workspace, selected, graph=True)


def upgrade(
    workspace: Workspace,
    target: str = "head",
    *,
    confirm: ConfirmCallback | None = None,
    progress: ProgressCallback | None = None,
    no_backup: bool = False,
) -> RunResult:
    return _migrate(
        workspace, "upgrade", target, confirm=confirm, progress=progress, no_backup=no_backup
    )


def downgrade(
    workspace: Workspace,
    target: str,
    *,
    confirm: ConfirmCallback | None = None,
    progress: ProgressCallback | None = None,
    no_backup: bool = False,
) -> RunResult:
    return _migrate(
        workspace, "downgrade", target, confirm=confirm, progress=progress, no_backup=no_backup
    )


def _migrate(
    workspace: Workspace,
    direction: Direction,
    target: str,
    *,
    confirm: ConfirmCallback | None,
    progress: ProgressCallback | None,
    no_backup: bool = False,
) -> RunResult:
    # The SQL is rendered only where someone will be shown it before confirming.
    needs_review = workspace.environment.policy.require_confirmation
    built, steps = build_plan(workspace, direction, target, with_sql=needs_review)
    if built.steps and workspace.environment.policy.require_confirmation:
        if confirm is None:
            raise GuardRefused(
                f"{workspace.environment.name} requires confirmation and nobody can confirm",
                hint="pass --yes to confirm non-interactively",
                reasons=["confirmation required"],
            )
        if not confirm(built):
            raise GuardRefused("not confirmed; nothing was changed", reasons=["not confirmed"])
    backup_record = None
    sqlite_file = sqlite_path(workspace.url)
    # A SQLite database that does not exist yet holds nothing to lose (and nothing to dump).
    nothing_to_lose = sqlite_file is not None and not sqlite_file.exists()
    if built.steps and workspace.environment.policy.require_backup and not nothing_to_lose:
        if no_backup:
            raise GuardRefused(
                f"--no-backup refused: {workspace.environment.name}'s policy requires a backup"
                f" before {direction}",
                hint="drop --no-backup (or set require_backup = false for this environment)",
                reasons=["backup required by policy"],
            )
        from abmigrate.backup import backup_for_pipeline

        # A backup that cannot be taken or does not verify stops the run before any change.
        backup_record = backup_for_pipeline(workspace, reason=f"pre-{direction}")
    result = apply_plan(workspace, built, steps, progress=progress)
    if backup_record is not None:
        result.backup = backup_record.to_record()
    return result


def revision(workspace: Workspace, message: str, *, autogenerate: bool = False) -> RevisionCreated:
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
        findings=[finding.to_record() for finding in findings],
    )


def merge(workspace: Workspace, message: str | None = None) -> RevisionCreated:
    script = workspace.project.merge_heads(message or "merge heads")
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
    from abmigrate.stamp_guard import check_stamp, record_forced_stamp

    if force and not (reason and reason.strip()):
        raise AbmigrateError(
            "--force needs --reason: say why the schema differences are acceptable",
            hint="e.g. --force --reason 'index added by hand during incident 42'",
        )
    before = read_version_rows(workspace.url) or []
    revision = workspace.project.resolve_target(revision)
    differences = check_stamp(workspace, revision, force=force)
    # Rows naming revisions no script defines cannot be walked from: replace them outright.
    purge = bool(unknown_revisions(workspace.project, before))
    workspace.project.stamp(revision, purge=purge)
    result = StampResult(
        environment=workspace.environment.name,
        database=workspace.environment.masked_url,
        before=before,
        after=read_version_rows(workspace.url) or [],
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
    return run_checks(context, only, skip)


def diagnose(workspace: Workspace, *, with_models: bool = True) -> Diagnosis:
    """The database's real state, with evidence and the recommended command. Reads only."""
    from abmigrate.diagnose import diagnose as run_diagnosis

    return run_diagnosis(workspace, with_models=with_models)


def drift(workspace: Workspace, against: str = "models") -> DriftReport:
    """Live schema vs the models (``models``) or the schema at a revision. Reads only."""
    from abmigrate.drift import drift_report

    return drift_report(workspace, against)


def rehearse(
    workspace: Workspace,
    target: str = "head",
    *,
    from_backup: str | None = None,
    clone: bool = False,
    scale_rows: int | None = None,
    progress: StepProgress | None = None,
) -> Rehearsal:
    """Apply the pending revisions to a scratch copy, measure them, downgrade, re-upgrade."""
    from abmigrate.rehearse import rehearse as run_rehearsal

    return run_rehearsal(
        workspace,
        target,
        from_backup=from_backup,
        clone=clone,
        scale_rows=scale_rows,
        progress=progress,
    )


def capture(workspace: Workspace, message: str) -> RevisionCreated:
    """Write a revision capturing the objects made by hand on a database recorded at head."""
    from abmigrate.capture import write_capture_revision

    return write_capture_revision(workspace, message)
