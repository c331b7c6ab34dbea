"""Executes a Plan, one revision per run of ``env.py`` (one transaction each where the
dialect has transactional DDL), reporting progress between revisions."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from abmigrate.database import read_version_rows, scrub
from abmigrate.errors import AbmigrateError, MigrationFailed
from abmigrate.plan import heads_after
from abmigrate.results import AppliedStep, Plan, RunResult, Step

if TYPE_CHECKING:
    from alembic.runtime.migration import RevisionStep

    from abmigrate.workspace import Workspace

__all__ = ["ProgressCallback", "apply_plan", "script_sha256"]

# Called with ("start", step, None) before a revision and ("done", step, seconds) after it.
ProgressCallback = Callable[[str, Step, float | None], None]


def script_sha256(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def apply_plan(
    workspace: Workspace,
    plan: Plan,
    steps: Sequence[RevisionStep],
    *,
    progress: ProgressCallback | None = None,
) -> RunResult:
    """Apply ``steps`` in order; on failure raise MigrationFailed saying where the DB stands."""
    project = workspace.project
    started = time.monotonic()
    applied: list[AppliedStep] = []
    current = list(plan.current)
    for record, step in zip(plan.steps, steps, strict=True):
        if progress:
            progress("start", record, None)
        step_started = time.monotonic()
        try:
            project.run_steps([step], expected_current=current)
        except AbmigrateError:
            raise
        except Exception as exc:
            raise _failure(workspace, record, exc) from exc
        elapsed = time.monotonic() - step_started
        current = heads_after(project, current, [step])
        applied.append(
            AppliedStep(
                revision=record.revision,
                message=record.message,
                direction=plan.direction,
                elapsed_s=round(elapsed, 4),
                script_sha256=script_sha256(step.revision.path),
            )
        )
        if progress:
            progress("done", record, elapsed)
    return RunResult(
        environment=plan.environment,
        database=plan.database,
        direction=plan.direction,
        from_revisions=list(plan.current),
        to_revisions=read_version_rows(workspace.url) or [],
        applied=applied,
        elapsed_s=round(time.monotonic() - started, 4),
    )


def _failure(workspace: Workspace, record: Step, exc: BaseException) -> MigrationFailed:
    lines = str(exc).strip().splitlines()
    detail = scrub(f"{type(exc).__name__}: {lines[0] if lines else ''}", workspace.url)
    try:
        now = read_version_rows(workspace.url) or []
        where = ", ".join(now) or "no revision (empty)"
    except AbmigrateError:
        now, where = [], "unknown (the database could not be read)"
    partial = ""
    if workspace.environment.dialect in ("sqlite", "mysql", "mariadb"):
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
